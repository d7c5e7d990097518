"""bench/corrupt_field, the keying-and-export error model: each operator does what it says."""

from __future__ import annotations

import random
import re

import pytest
from bench.corrupt_field import OPERATORS, corrupt_rows, ops

ROW = {"request_row_id": "R1", "first_name": "MARIA", "middle_name": "ELENA",
       "last_name": "GARCIA LOPEZ", "street": "12 N 1ST ST", "unit": "APT 5",
       "city": "SAINT PAUL", "state": "MA", "zip": "02134"}


def _all(op: ops.Operator, row: dict[str, str] = ROW, n: int = 60) -> list[dict[str, str]]:
    got = [op(dict(row), random.Random(i)) for i in range(n)]
    return [g for g in got if g is not None]


def _changes(new: dict[str, str]) -> set[str]:
    return {c for c in ROW if new[c] != ROW[c]}


def test_zip_leading_zero_is_lost_as_a_number_would_lose_it() -> None:
    assert ops.zip_leading_zero(dict(ROW), random.Random(0)) == dict(ROW, zip="2134")
    assert ops.zip_leading_zero(dict(ROW, zip="021341234"), random.Random(0))["zip"] == "21341234"
    assert ops.zip_leading_zero(dict(ROW, zip="60614"), random.Random(0)) is None


def test_zip_plus4_forms() -> None:
    zips = {g["zip"] for g in _all(ops.zip_plus4)}
    assert all(re.fullmatch(r"02134([- ]?\d{4})", z) for z in zips)
    assert {len(z) for z in zips} == {9, 10}
    assert "02134" in {g["zip"] for g in _all(ops.zip_plus4, dict(ROW, zip="02134-1234"))}


def test_state_form_writes_the_same_state_another_way() -> None:
    assert {g["state"] for g in _all(ops.state_form)} == {
        "Massachusetts", "MASSACHUSETTS", "ma", "Mass."}
    assert ops.state_form(dict(ROW, state="ZZ"), random.Random(0)) is None


def test_name_one_column_puts_the_whole_name_in_one_field() -> None:
    for g in _all(ops.name_one_column):
        full, empty = ((g["last_name"], g["first_name"]) if g["last_name"]
                       else (g["first_name"], g["last_name"]))
        assert empty == "" and "MARIA" in full and "GARCIA LOPEZ" in full
    assert any(g["last_name"].startswith("GARCIA LOPEZ, MARIA") for g in _all(ops.name_one_column))


def test_names_swapped_and_middle_in_given() -> None:
    swapped = ops.names_swapped(dict(ROW), random.Random(0))
    assert swapped is not None
    assert (swapped["first_name"], swapped["last_name"]) == ("GARCIA LOPEZ", "MARIA")
    given = {g["first_name"] for g in _all(ops.middle_in_given)}
    assert given == {"MARIA ELENA", "MARIA E", "MARIA E."}
    assert all(g["middle_name"] == "" for g in _all(ops.middle_in_given))
    assert ops.middle_in_given(dict(ROW, middle_name=""), random.Random(0)) is None


def test_double_surname_keys_one_part_or_joins_them() -> None:
    assert {g["last_name"] for g in _all(ops.double_surname)} == {
        "GARCIA", "LOPEZ", "GARCIA-LOPEZ", "GARCIALOPEZ"}
    assert ops.double_surname(dict(ROW, last_name="SMITH"), random.Random(0)) is None


def test_diacritics_apostrophes_and_mc() -> None:
    accented = {g["first_name"] for g in _all(ops.diacritics_apostrophe)} - {"MARIA"}
    assert "MARÍA" in accented
    assert any("Ã" in a for a in accented)  # UTF-8 read as Windows-1252
    obrien = dict(ROW, last_name="O'BRIEN", first_name="JOSÉ")
    names = {v for g in _all(ops.diacritics_apostrophe, obrien) for v in
             (g["first_name"], g["last_name"])}
    assert {"OBRIEN", "O BRIEN", "O’BRIEN", "JOSE"} <= names
    mc = _all(ops.diacritics_apostrophe, dict(ROW, first_name="A", last_name="MCDONALD"))
    assert "MC DONALD" in {g["last_name"] for g in mc}


def test_suffix_in_surname() -> None:
    for g in _all(ops.suffix_in_surname):
        assert re.fullmatch(r"GARCIA LOPEZ,? (JR\.?|SR|II|III|IV)", g["last_name"])


def test_unit_form_rewrites_moves_or_drops_the_unit() -> None:
    got = _all(ops.unit_form, n=120)
    assert all("5" in g["unit"] + g["street"] or (g["unit"] == "" and g["street"] == ROW["street"])
               for g in got)
    assert any(g["street"] in ("12 N 1ST ST #5", "12 N 1ST ST, #5") for g in got)
    assert any(g["unit"] == "" and g["street"] == ROW["street"] for g in got)  # left out
    assert any(g["unit"] in ("#5", "UNIT 5", "5") for g in got)
    assert ops.unit_form(dict(ROW, unit=""), random.Random(0)) is None


def test_street_words_in_other_forms() -> None:
    assert {g["street"] for g in _all(ops.directional_form)} == {
        "12 NORTH 1ST ST", "12 N. 1ST ST"}
    assert {g["street"] for g in _all(ops.ordinal_form)} == {"12 N FIRST ST"}
    assert {g["street"] for g in _all(ops.street_type_form)} == {
        "12 N 1ST STREET", "12 N 1ST STR", "12 N 1ST ST."}
    assert {g["city"] for g in _all(ops.place_word_form)} == {"ST PAUL"}
    city = {g["street"] for g in _all(ops.street_with_city)}
    assert "12 N 1ST ST, SAINT PAUL, MA 02134" in city
    assert all(c.startswith("12 N 1ST ST") and "SAINT PAUL" in c for c in city)


def test_case_punctuation_and_fixed_width() -> None:
    styles = {g["first_name"] + "|" + g["street"] for g in _all(ops.case_style)}
    assert styles == {"maria|12 n 1st st", "Maria|12 N 1St St"}
    for g in _all(ops.punctuation_spacing):
        assert {re.sub(r"[\s.,;]+", "", g[c]) for c in _changes(g)} == {
            re.sub(r"[\s.,;]+", "", ROW[c]) for c in _changes(g)}
    long = dict(ROW, first_name="MARIA GUADALUPE", last_name="FERNANDEZ-CASTELLANOS")
    for g in _all(ops.fixed_width, long):
        assert long["first_name"].startswith(g["first_name"])
        assert long["last_name"].startswith(g["last_name"]) and len(g["last_name"]) <= 15


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5])
def test_corrupt_rows_is_seeded_nested_and_keeps_the_row_ids(rate: float) -> None:
    rows = [dict(ROW, request_row_id=f"R{i}") for i in range(400)]
    out, applied = corrupt_rows(rows, rate, seed=5)
    assert [r["request_row_id"] for r in out] == [r["request_row_id"] for r in rows]
    assert len(applied) == round(rate * len(rows))
    assert corrupt_rows(rows, rate, seed=5) == (out, applied)
    more, more_applied = corrupt_rows(rows, 0.6, seed=5)
    for rid, names in applied.items():  # nested: the same rows, the same errors
        assert more_applied[rid] == names
    assert all(1 <= len(v) <= 3 and len(set(v)) == len(v) and set(v) <= set(OPERATORS)
               for v in applied.values())
    for row, new in zip(rows, out, strict=True):
        assert (row != new) == (row["request_row_id"] in applied)
