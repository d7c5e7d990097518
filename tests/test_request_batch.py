"""Batch metadata: loading TOML/JSON, every problem at once, certification, statutes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lastknown.errors import BatchError
from lastknown.normalize.placeholders import statute_sql
from lastknown.request.batch import Batch, load_batch, normalise_statute

GOOD = {
    "batch_id": "2026-0142",
    "requesting_agency": "Example Agency",
    "requesting_official": "Dana Example",
    "official_title": "Special Agent in Charge",
    "reason": "Locate subjects of final orders of removal.",
    "authorised_statutes": ["8 U.S.C. 1253(a)(1)"],
    "certified": True,
    "certification": "Each row is the subject of an investigation.",
}

TOML = """
batch_id = "2026-0142"
requesting_agency = "Example Agency"
requesting_official = "Dana Example"
official_title = "Special Agent in Charge"
reason = "Locate subjects of final orders of removal."
authorised_statutes = ["8 U.S.C. 1253(a)(1)", "8 USC 1231"]
certified = true
certification = "Each row is the subject of an investigation."
certifying_officers = ["Officer A", "Officer B"]
"""


def test_toml_batch_loads_with_extra_keys(tmp_path: Path) -> None:
    path = tmp_path / "batch.toml"
    path.write_text(TOML, encoding="utf-8")
    batch = load_batch(path)
    assert isinstance(batch, Batch)
    assert batch.batch_id == "2026-0142"
    assert batch.authorised_statutes == ("8 U.S.C. 1253(a)(1)", "8 USC 1231")
    assert batch.certified is True
    assert batch.extra == {"certifying_officers": ["Officer A", "Officer B"]}
    assert batch.authorised_statutes_normalised == ("8 U.S.C. 1231", "8 U.S.C. 1253(A)(1)")


def test_json_batch_loads(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(GOOD), encoding="utf-8")
    assert load_batch(path).requesting_official == "Dana Example"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = dict(GOOD)
    del bad["batch_id"]
    bad["reason"] = "  "
    bad["authorised_statutes"] = []
    bad["official_title"] = 7
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(BatchError) as info:
        load_batch(path)
    message = str(info.value)
    assert str(path) in message
    for key in ("batch_id", "reason", "authorised_statutes", "official_title"):
        assert f"`{key}`" in message


def test_an_uncertified_batch_loads_for_the_policy_gate_to_refuse(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({**GOOD, "certified": False}), encoding="utf-8")
    assert load_batch(path).certified is False  # refused and recorded by refuse_uncertified


def test_unknown_keys_are_errors_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "batch.json"
    path.write_text(json.dumps({**GOOD, "max_rows_per_batch": 50000, "Reason": "x"}),
                    encoding="utf-8")
    with pytest.raises(BatchError) as info:
        load_batch(path)
    known = ("batch_id, requesting_agency, requesting_official, official_title, reason, "
             "authorised_statutes, certified, certification, certifying_officers, overrides")
    hint = ("(caps and settings to override go in the [overrides] table, with reason and "
            "approved_by)")
    assert str(info.value) == (
        f"batch file {path} cannot be used:\n"
        f"  - `max_rows_per_batch` is not a batch key; known keys: {known} {hint}\n"
        f"  - `Reason` is not a batch key; known keys: {known} {hint}")


def test_statutes_keep_their_spelling_and_compare_in_one_form(tmp_path: Path) -> None:
    path = tmp_path / "batch.toml"
    path.write_text(TOML, encoding="utf-8")
    assert load_batch(path).statute_spelling == {"8 U.S.C. 1253(A)(1)": "8 U.S.C. 1253(a)(1)",
                                                 "8 U.S.C. 1231": "8 USC 1231"}


@pytest.mark.parametrize("certified", ["true", None])
def test_uncertified_batch_is_rejected(tmp_path: Path, certified: object) -> None:
    bad = dict(GOOD)
    if certified is None:
        del bad["certified"]
    else:
        bad["certified"] = certified
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(BatchError, match="certified"):
        load_batch(path)


def test_missing_certification_text_is_rejected(tmp_path: Path) -> None:
    bad = {k: v for k, v in GOOD.items() if k != "certification"}
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(BatchError, match="`certification` is missing"):
        load_batch(path)


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("batch.yaml", "batch_id: 1", "extension"),
    ("batch.toml", "batch_id = ", "not valid TOML"),
    ("batch.json", "{", "not valid JSON"),
    ("batch.json", "[1, 2]", "top level"),
])
def test_unreadable_batch_files(tmp_path: Path, name: str, content: str, needle: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BatchError, match=needle):
        load_batch(path)


def test_missing_batch_file(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="cannot be read"):
        load_batch(tmp_path / "absent.toml")


@pytest.mark.parametrize("spelling", [
    "8 U.S.C. 1253(a)(1)", "8 USC 1253(a)(1)", "8 U.S.C 1253(a)(1)", "8 usc § 1253 (a) (1)",
    "8 U. S. C. §§1253(a)(1)", "  8 U.S.C.  Sec. 1253(A)(1) ", "8 U.S.C. section 1253(a)(1)",
])
def test_statute_spellings_agree(spelling: str) -> None:
    assert normalise_statute(spelling) == normalise_statute("8 U.S.C. 1253(a)(1)")


def test_different_statutes_stay_different() -> None:
    assert normalise_statute("8 U.S.C. 1253(a)(1)") != normalise_statute("8 U.S.C. 1231(a)(1)")
    assert normalise_statute("8 U.S.C. 1253(a)(1)") != normalise_statute("18 U.S.C. 1253(a)(1)")


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="8 USCusc.§()a1253\u00a0\t-", max_size=40))
def test_statute_sql_is_the_twin_of_python(text: str) -> None:
    con = duckdb.connect()
    sql_value = con.execute(f"SELECT {statute_sql('?')}", [text]).fetchone()
    assert sql_value is not None
    assert sql_value[0] == normalise_statute(text)
