"""The independent corruption model in bench/corrupt: each operator does what it says."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from bench.corrupt import (
    OPERATOR_WEIGHTS,
    OPERATORS,
    corrupt_rows,
    double_letter,
    drop_letter,
    insert_space,
    keyboard_neighbours,
    keyboard_substitute,
    near_names,
    ocr_confuse,
    remove_space,
    respell,
    respellings,
    transpose,
    truncate,
)
from bench.corrupt.strings import OCR_CONFUSIONS


def _rngs(n: int = 40) -> list[random.Random]:
    return [random.Random(i) for i in range(n)]


def test_keyboard_neighbours_follow_the_qwerty_layout() -> None:
    assert keyboard_neighbours("s") == frozenset("weadzx")
    assert keyboard_neighbours("q") == frozenset("wa")
    assert keyboard_neighbours("m") == frozenset("njk")
    assert keyboard_neighbours("1") == frozenset()


def test_keyboard_substitute_replaces_one_letter_by_a_neighbour_keeping_case() -> None:
    for rng in _rngs():
        out = keyboard_substitute("PARKER", rng)
        changed = [(a, b) for a, b in zip("PARKER", out, strict=True) if a != b]
        assert len(changed) == 1
        old, new = changed[0]
        assert new.isupper() and new.lower() in keyboard_neighbours(old)
    assert keyboard_substitute("123", random.Random(1)) == "123"


def test_ocr_confuse_applies_one_listed_confusion() -> None:
    seen = set()
    for rng in _rngs(80):
        out = ocr_confuse("CLARK", rng)
        assert out != "CLARK"
        seen.add(out)
    assert "DARK" in seen  # CL read as D
    assert seen == {"CLARK"[:i] + read + "CLARK"[i + len(s):] for s, read in OCR_CONFUSIONS
                    for i in range(5) if "CLARK".startswith(s, i)}
    assert {ocr_confuse("barn", rng) for rng in _rngs()} == {"bam", "harn"}
    assert ocr_confuse("###", random.Random(1)) == "###"


def test_transpose_swaps_two_adjacent_letters() -> None:
    for rng in _rngs():
        out = transpose("STREET", rng)
        assert sorted(out) == sorted("STREET") and out != "STREET"
        idx = [i for i in range(6) if out[i] != "STREET"[i]]
        assert len(idx) == 2 and idx[1] == idx[0] + 1
    assert transpose("AA", random.Random(1)) == "AA"


def test_double_and_drop_letter_change_length_by_one() -> None:
    for rng in _rngs():
        doubled = double_letter("EDWARD", rng)
        assert any(doubled == "EDWARD"[:i + 1] + "EDWARD"[i:] for i in range(6))
        dropped = drop_letter("BRIGHTON", rng)
        assert len(dropped) == 7
        assert any(dropped == "BRIGHTON"[:i] + "BRIGHTON"[i + 1:] for i in range(8))
    assert drop_letter("AB", random.Random(1)) == "AB"  # a word keeps two letters


def test_spaces_are_inserted_inside_a_word_or_removed_between_two() -> None:
    for rng in _rngs():
        out = insert_space("FRANCE PLACE", rng)
        assert out.replace(" ", "") == "FRANCEPLACE" and out.count(" ") == 2
        assert "  " not in out and not out.startswith(" ") and not out.endswith(" ")
        merged = remove_space("HALLEN CLOSE ROAD", rng)
        assert merged in ("HALLENCLOSE ROAD", "HALLEN CLOSEROAD")
    assert insert_space("ST", random.Random(1)) == "ST"
    assert remove_space("MAIN", random.Random(1)) == "MAIN"


def test_truncate_keeps_a_prefix_of_at_least_half() -> None:
    for rng in _rngs():
        out = truncate("WASHINGTON", rng)
        assert "WASHINGTON".startswith(out) and 5 <= len(out) <= 9
    assert truncate("LEE", random.Random(1)) == "LEE"


def test_respellings_follow_general_romanisation_rules() -> None:
    assert "KARIM" in respellings("KAREEM")  # ee/i
    assert "YEKATERINA" in respellings("EKATERINA")  # y glide on an initial vowel
    assert "MUSSA" in respellings("MOUSSA") and "MOUSA" in respellings("MOUSSA")
    assert "PAK" in respellings("PARK") and "BARK" in respellings("PARK")
    assert "Fillip" not in respellings("Philip") and "Filip" in respellings("Philip")
    assert "SCHMIDT" in respellings("SHMIDT") and "Wladimir" in respellings("Vladimir")
    assert all(v.isupper() for v in respellings("YUSUF"))
    rng = random.Random(5)
    two = respell("MOUSSA", rng, steps=2)
    assert two != "MOUSSA" and two.isupper()
    assert respellings("ZZ") == []  # no rule gives a name of two or more letters


def _row() -> dict[str, str]:
    return {"request_row_id": "R1", "first_name": "Edward", "middle_name": "J",
            "last_name": "Parker", "street": "12 PARKER STREET", "unit": "APT 2",
            "city": "BRIGHTON", "state": "MA", "zip": "02135-1234"}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_each_row_operator_changes_only_its_fields(name: str) -> None:
    fields = {"given_typo": {"first_name"}, "surname_typo": {"last_name"},
              "name_respelling": {"first_name", "last_name"},
              "name_truncation": {"first_name", "last_name"},
              "swapped_names": {"first_name", "last_name"}, "street_typo": {"street"},
              "street_spacing": {"street"}, "city_typo": {"city"}, "zip_digit": {"zip"},
              "missing_field": {"middle_name", "unit", "zip"}}[name]
    for rng in _rngs(20):
        row = _row()
        assert OPERATORS[name](row, rng)
        changed = {k for k in row if row[k] != _row()[k]}
        assert changed and changed <= fields
        if name.startswith("street"):
            assert row["street"].startswith("12 ")  # the house number is never touched
        if name == "zip_digit":
            diffs = [i for i in range(10) if row["zip"][i] != "02135-1234"[i]]
            assert len(diffs) == 1 and diffs[0] < 5
        if name == "missing_field":
            assert [k for k in changed if row[k] == ""] == list(changed)
        if name == "swapped_names":
            assert (row["first_name"], row["last_name"]) == ("Parker", "Edward")


def test_operators_that_cannot_apply_leave_the_row_alone() -> None:
    row = {"request_row_id": "R", "first_name": "Al", "last_name": "Al", "middle_name": "",
           "unit": "", "zip": "", "street": "", "city": ""}
    before = dict(row)
    for name in ("swapped_names", "missing_field", "zip_digit", "street_spacing"):
        assert not OPERATORS[name](row, random.Random(1))
    assert row == before


def test_corrupt_rows_is_deterministic_nested_and_puts_one_to_three_errors() -> None:
    rows = [dict(_row(), request_row_id=f"R{i}") for i in range(200)]
    low, low_ops = corrupt_rows(rows, 0.1, seed=101)
    high, high_ops = corrupt_rows(rows, 0.4, seed=101)
    again, _ = corrupt_rows(rows, 0.4, seed=101)
    other, _ = corrupt_rows(rows, 0.4, seed=102)
    assert (len(low_ops), len(high_ops)) == (20, 80)
    assert high == again and high != other
    assert set(low_ops) <= set(high_ops)
    assert all(low_ops[k] == high_ops[k] for k in low_ops)
    assert all(1 <= len(ops) <= 3 and len(set(ops)) == len(ops) for ops in high_ops.values())
    assert {len(ops) for ops in high_ops.values()} == {1, 2, 3}
    changed = {r["request_row_id"] for r, o in zip(high, rows, strict=True) if r != o}
    assert changed == set(high_ops)
    assert rows[0] == dict(_row(), request_row_id="R0")  # the input is not modified
    assert corrupt_rows(rows, 0.0, seed=101) == (rows, {})


def test_every_operator_is_documented_in_matching_md() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "MATCHING.md").read_text(
        encoding="utf-8")
    section = text[text.index("## Robustness (independent corruption)"):]
    for name, weight in OPERATOR_WEIGHTS.items():
        assert f"| `{name}` | {weight:g} |" in section, f"{name} missing from MATCHING.md"


def test_near_names_are_real_different_names_one_or_two_edits_away() -> None:
    import jellyfish
    from bench.corrupt import census_first_names

    names = census_first_names()
    for given in ("LOUIS", "RONALD", "KENNETH", "CHRISTOPHER", "JOHN", "DUANE"):
        near = near_names(given)
        assert near and given not in near
        assert all(n in names for n in near)
        assert all(1 <= jellyfish.damerau_levenshtein_distance(given, n) <= 2 for n in near)
    assert {"LOUISE", "LEWIS"} & set(near_names("LOUIS")) == {"LOUISE"}  # cross-sex kept
    assert "DONALD" in near_names("RONALD") and "DIANE" in near_names("DUANE")
    assert "KENNITH" not in near_names("KENNETH")  # same sound, same sex: maybe him
    assert "KRISTOPHER" not in near_names("CHRISTOPHER")  # a respelling
    assert "JON" not in near_names("JOHN")  # a nickname of the same sex
    assert near_names("louis") == near_names("LOUIS")
