"""Name and address cleaning rules (normalize/) on small in-memory tables."""

from __future__ import annotations

import duckdb
import pytest

from lastknown.normalize.address import normalised_address_sql
from lastknown.normalize.names import normalised_names_sql
from lastknown.normalize.nicknames import nickname_rows


def _names(first: str, last: str, middle: str = "", suffix: str = "") -> tuple[object, ...]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS id, ? AS first_name, ? AS middle_name, "
                "? AS last_name, ? AS name_suffix", [first, middle, last, suffix])
    row = con.execute(normalised_names_sql("t", keep=["id"])).fetchone()
    assert row is not None
    return row[1:]


def _address(street: str, unit: str = "", city: str = "X", state: str = "tx",
             zip_code: str = "78701") -> tuple[object, ...]:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1 AS id, ? AS street, ? AS unit, ? AS city, "
                "? AS state, ? AS zip", [street, unit, city, state, zip_code])
    row = con.execute(normalised_address_sql("t", keep=["id"])).fetchone()
    assert row is not None
    return row[1:]


def test_accents_hyphens_and_compound_surnames_become_tokens() -> None:
    first, initial, middle, _mi, tokens, surname, suffix = _names("María José", "García-López")
    assert (first, initial, middle) == ("MARIA", "M", "JOSE")
    assert tokens == ["GARCIA", "LOPEZ"] and surname == "GARCIA LOPEZ"
    assert suffix is None


def test_particles_apostrophes_and_trailing_suffix() -> None:
    *_, tokens, surname, suffix = _names("Sean", "de la Cruz Jr.")
    assert tokens == ["CRUZ"] and suffix == "JR"
    *_, tokens, _s, _x = _names("Sean", "O'Brien")
    assert tokens == ["OBRIEN"]


@pytest.mark.parametrize(("written", "canonical"), [("Junior", "JR"), ("3rd", "III"),
                                                    ("sr.", "SR")])
def test_suffix_field_is_canonicalised(written: str, canonical: str) -> None:
    assert _names("Ann", "Lee", suffix=written)[-1] == canonical


def test_usps_abbreviations_directionals_and_embedded_unit() -> None:
    house, predir, name, stype, unit, zip5, _city, state, line = _address(
        "1234 West Main Street Apt 4-B", zip_code="78701-1234")
    assert (house, predir, name, stype, unit, zip5, state, line) == (
        "1234", "W", "MAIN", "ST", "4B", "78701", "TX", "MAINSTREET")


def test_street_line_spells_the_type_out_and_keeps_unknown_types_in_the_name() -> None:
    assert _address("117 Parker Tsreet")[2:4] == ("PARKER TSREET", None)
    assert _address("117 Parker Tsreet")[-1] == "PARKERTSREET"
    assert _address("12 Franc P Lace")[-1] == "FRANCPLACE"
    assert _address("12 Franc Pl")[-1] == "FRANCPLACE"


def test_same_address_written_two_ways_normalises_alike() -> None:
    a = _address("77 N. Fifth Avenue", unit="#12", city="Fort Worth")
    b = _address("77 north 5th ave", unit="Unit 12", city="Ft. Worth")
    assert a == b


def test_placeholder_street_has_no_house_number() -> None:
    house, _p, name, *_ = _address("Failed to Provide")
    assert house is None and name is not None


def test_nickname_groups_include_english_pairs() -> None:
    rows = nickname_rows()
    assert ("BILL", "WILLIAM") in rows
    assert ("WILLIAM", "WILLIAM") in rows


def test_words_inside_a_street_name_keep_their_spelling() -> None:
    # Pub 28 abbreviates VALLEY/ORCHARD/SPRING as street *types*; inside a name they stay,
    # so a one-letter typo (VALEY) stays one letter away.
    assert _address("27 Valley Parkway")[2:4] == ("VALLEY", "PKWY")
    assert _address("27 VALEY PKWY")[2] == "VALEY"
    assert _address("12 Orchard")[2] == "ORCHARD"
    assert _address("9 Spring Valley Road")[2:4] == ("SPRING VALLEY", "RD")


def test_bare_unit_after_the_street_type() -> None:
    house, predir, name, stype, unit, *_ = _address("2528 S Sierra Pl 3D")
    assert (house, predir, name, stype, unit) == ("2528", "S", "SIERRA", "PL", "3D")


def test_a_directional_street_name_is_not_a_predirectional() -> None:
    _h, predir, name, stype, *_ = _address("5 North Street")
    assert (predir, name, stype) == (None, "N", "ST")


@pytest.mark.parametrize(("street", "zip_code", "house", "zip5"), [
    ("1O74 W 350 N", "O2I35", "1074", "02135"),    # scanned O and I for 0 and 1
    ("12B Main St", "02135-1234", "12", "02135"),  # a letter suffix stays a suffix
    ("1 Oak St", "0213S", "1", "02135"),           # OAK is a street name, not digits
    ("10 OIL Rd", "02135", "10", "02135"),
])
def test_letters_that_look_like_digits_in_numbers(street: str, zip_code: str, house: str,
                                                  zip5: str) -> None:
    got = _address(street, zip_code=zip_code)
    assert (got[0], got[5]) == (house, zip5)


@pytest.mark.parametrize("street", [
    "74 Cherry Ave, Anaheim, CA 92801-3221", "74 CHERRY AVE ANAHEIM CA", "74 Cherry Ave, Anaheim",
    "74 Cherry Ave Anaheim, California 92801", "74 Cherry Ave., Anaheim, Calif. 928013221",
])
def test_city_state_and_zip_pasted_after_the_street_are_cut(street: str) -> None:
    assert _address(street, city="Anaheim") == _address("74 Cherry Ave", city="Anaheim")


def test_a_street_named_like_the_city_is_not_cut() -> None:
    assert _address("45 W Boston", city="Boston")[2] == "BOSTON"
    assert _address("12 Main St Boston Harbor", city="Boston")[2:4] == ("MAIN ST BOSTON", "HBR")
    assert _address("12 Main St Apt 5 Boston MA", city="Boston")[2:5] == ("MAIN", "ST", "5")
    assert _address("74 Cherry Ave Fresno CA", city="Anaheim")[2] == "CHERRY AVE FRESNO CA"


@pytest.mark.parametrize(("spelled", "figures"), [
    ("914 Seventeenth Street", "914 17th St"), ("12 Thirteenth Ave", "12 13TH AVE"),
    ("5 W Twentieth St", "5 W 20th St"), ("8 Fortieth Rd", "8 40th Rd"),
])
def test_spelled_ordinals_are_numbered_streets(spelled: str, figures: str) -> None:
    assert _address(spelled) == _address(figures)


@pytest.mark.parametrize(("glued", "spaced"), [
    ("988 35THST", "988 35TH ST"), ("400 8thDr", "400 8th Dr"), ("1374 17thDrive", "1374 17th Dr"),
    ("27 35THLANE", "27 35TH LN"), ("12 W 1STST", "12 W 1ST ST"),
])
def test_a_numbered_street_run_into_its_type_is_split(glued: str, spaced: str) -> None:
    assert _address(glued) == _address(spaced)
    assert _address("12THOMAS ST")[0] is not None  # a house number is never split


@pytest.mark.parametrize(("keyed", "meant"), [
    ("20 S Z7th Ln", "20 S 27th Ln"), ("913 3lST ST", "913 31ST ST"),
    ("550 25TU LN", "550 25TH LN"), ("4935 5tb St", "4935 5th St"), ("1 1ST ST", "1 1ST ST"),
    ("12 101st Ave", "12 101ST AVE"),
])
def test_ordinals_read_through_keying_and_scanning_errors(keyed: str, meant: str) -> None:
    assert _address(keyed)[2] == _address(meant)[2]
    assert _address("12 W 1ST ST")[2] == "1ST" and _address("9 2ND AVE")[2] == "2ND"
