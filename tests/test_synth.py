"""The synthetic generator: realism that matching depends on, and exact truth.

Everything is checked on the files `generate` writes (small N), the way a user sees them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from unidecode import unidecode

from lastknown.engines.duckdb import DuckDBEngine
from lastknown.master import load_master
from lastknown.synth import generate
from lastknown.synth.defects import DEFECT_CODES, DUPLICATE_ROW_ID

REQUEST_COLUMNS = [
    "request_row_id", "first_name", "middle_name", "last_name", "street", "unit", "city",
    "state", "zip", "removal_order_date", "removal_order_case_number", "statute",
    "tax_periods", "tin",
]
TRUTH_COLUMNS = [
    "request_row_id", "true_tin", "expected_outcome", "expected_street", "expected_unit",
    "expected_city", "expected_state", "expected_zip", "expected_tax_year", "expected_reason",
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(persons=6_000, requests=1_200, seed=11, out=out)
    return out


@pytest.fixture(scope="module")
def master(synth: Path) -> pl.DataFrame:
    return pl.read_parquet(synth / "master")


def _read_text_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False).fill_null("")


@pytest.fixture(scope="module")
def requests(synth: Path) -> pl.DataFrame:
    return _read_text_csv(synth / "request.csv")


@pytest.fixture(scope="module")
def truth(synth: Path) -> pl.DataFrame:
    return _read_text_csv(synth / "truth.csv")


def _plain(col: str) -> pl.Expr:
    return pl.col(col).map_elements(lambda s: unidecode(s).upper(), return_dtype=pl.Utf8)


def _persons(master: pl.DataFrame) -> pl.DataFrame:
    """One row per TIN with its name (names do not change across years)."""
    return master.group_by("tin").agg(pl.col("first_name", "last_name").first()).with_columns(
        first=_plain("first_name"),
        surname=_plain("last_name").str.split(by=" ").list.first().str.split(by="-").list.first(),
    )


def test_files_and_columns(synth: Path, requests: pl.DataFrame, truth: pl.DataFrame) -> None:
    assert requests.columns == REQUEST_COLUMNS
    assert truth.columns == TRUTH_COLUMNS
    assert requests.height == 1_200
    assert len(list((synth / "master").glob("*.parquet"))) >= 2
    batch = (synth / "batch.toml").read_text()
    assert 'authorised_statutes = [\n    "8 U.S.C. 1253(a)(1)",\n]' in batch
    assert "certified = true" in batch


def test_master_meets_the_contract(synth: Path) -> None:
    with DuckDBEngine() as engine:
        report = load_master(engine, synth / "master")  # raises if structurally unusable
        assert report.quarantined == 0 and report.problems == ()
        assert engine.count("master") > 6_000


def test_xlsx_holds_the_same_rows(synth: Path, requests: pl.DataFrame) -> None:
    book = openpyxl.load_workbook(synth / "request.xlsx", read_only=True)
    rows = [tuple("" if v is None else str(v) for v in r) for r in book.active.iter_rows(
        values_only=True)]
    book.close()
    assert list(rows[0]) == REQUEST_COLUMNS
    assert rows[1:] == list(requests.iter_rows())


def test_surnames_follow_real_frequencies(master: pl.DataFrame) -> None:
    counts = _persons(master)["surname"].value_counts().sort("count", descending=True)
    top = counts["surname"].head(12).to_list()
    assert "SMITH" in top and "GARCIA" in top
    median = counts["count"].median()
    assert counts["count"][0] >= 20 * median


def test_same_name_collisions_are_common_but_not_universal(master: pl.DataFrame) -> None:
    people = _persons(master)
    shared = people.group_by("first", "surname").len().filter(pl.col("len") >= 2)["len"].sum()
    share = shared / people.height
    assert 0.02 < share < 0.40, share


def test_yearly_move_rate(master: pl.DataFrame) -> None:
    key = master.sort("received_date").group_by("tin", "tax_year", maintain_order=True).first()
    key = key.select("tin", "tax_year", place=pl.col("street").str.extract(r"^(\d+)")
                     + pl.col("zip").str.slice(0, 5))
    nxt = key.with_columns(pl.col("tax_year") - 1)
    pairs = key.join(nxt, on=["tin", "tax_year"], suffix="_next")
    moved = (pairs["place"] != pairs["place_next"]).mean()
    assert 0.10 <= moved <= 0.15, moved


def test_joint_returns_share_the_address(master: pl.DataFrame) -> None:
    mfj = master.filter(pl.col("filing_status") == "mfj")
    keys = ["tax_year", "received_date", "street", "unit", "city", "state", "zip"]
    primary = mfj.filter(pl.col("role") == "primary")
    secondary = mfj.filter(pl.col("role") == "secondary")
    assert secondary.height > 500
    assert secondary.join(primary, on=keys, how="anti").height == 0


def test_junior_and_senior_share_name_and_address(master: pl.DataFrame) -> None:
    keys = ["tax_year", "first_name", "last_name", "street", "zip"]
    jr = master.filter(pl.col("name_suffix") == "JR")
    sr = master.filter(pl.col("name_suffix") == "SR")
    assert jr.join(sr, on=keys).height > 0


def test_some_itin_holders_later_file_with_an_ssn(master: pl.DataFrame) -> None:
    name = ["first_name", "middle_name", "last_name"]
    itin = master.filter(pl.col("tin").str.starts_with("9")).group_by("tin", *name).agg(
        last=pl.col("tax_year").max())
    ssn = master.filter(~pl.col("tin").str.starts_with("9")).group_by("tin", *name).agg(
        first=pl.col("tax_year").min())
    switched = itin.join(ssn, on=name).filter(pl.col("first") > pl.col("last"))
    assert switched.height > 0
    assert itin.height > 100


def test_spanish_naming_variants_present(master: pl.DataFrame, requests: pl.DataFrame) -> None:
    last = master["last_name"].unique()
    assert last.str.contains(r"^[A-ZÁÉÍÓÚÑ]+ [A-ZÁÉÍÓÚÑ]+$").any()  # GARCIA LOPEZ
    assert last.str.contains("-").any()
    both = pl.concat([master["last_name"], requests["last_name"]])
    assert both.str.contains("[ÁÉÍÓÚÑáéíóúñ]").any()
    assert requests["last_name"].str.contains(r"(?i) (jr|sr)\.?$").any()


def test_truth_covers_every_row_id_once(requests: pl.DataFrame, truth: pl.DataFrame) -> None:
    assert truth["request_row_id"].is_unique().all()
    assert set(truth["request_row_id"]) == set(requests["request_row_id"])
    outcomes = set(truth["expected_outcome"])
    assert outcomes == {"M", "U", "P", "N", "R"}


def test_every_bad_row_kind_present_once_per_row(requests: pl.DataFrame,
                                                 truth: pl.DataFrame) -> None:
    bad = truth.filter(pl.col("expected_outcome") == "R")
    assert set(bad["expected_reason"]) == {*DEFECT_CODES, DUPLICATE_ROW_ID}
    assert (truth.filter(pl.col("expected_outcome") != "R")["expected_reason"] == "").all()
    dup_ids = bad.filter(pl.col("expected_reason") == DUPLICATE_ROW_ID)["request_row_id"]
    per_id = requests.filter(pl.col("request_row_id").is_in(dup_ids.implode())).group_by(
        "request_row_id").len()
    assert (per_id["len"] == 2).all() and per_id.height == dup_ids.len()
    dup_in_file = requests.group_by("request_row_id").len().filter(pl.col("len") > 1)
    assert set(dup_in_file["request_row_id"]) == set(dup_ids)


def _years(text: str) -> set[int]:
    years: set[int] = set()
    for part in text.split(";"):
        lo, _, hi = part.partition("-")
        years.update(range(int(lo), int(hi or lo) + 1))
    return years


def test_matched_rows_expect_the_most_recent_return_in_the_periods(
        master: pl.DataFrame, requests: pl.DataFrame, truth: pl.DataFrame) -> None:
    m = truth.filter(pl.col("expected_outcome") == "M").join(
        requests.select("request_row_id", "tax_periods"), on="request_row_id")
    assert m.height > 500
    returns = master.with_columns(pl.col("tax_year").cast(pl.Utf8))
    by_tin = returns.partition_by("tin", as_dict=True)
    for row in m.iter_rows(named=True):
        years = _years(row["tax_periods"])
        filed = by_tin[(row["true_tin"],)].filter(
            pl.col("tax_year").cast(pl.Int64).is_in(sorted(years)))
        assert filed.height > 0
        best = filed.sort("tax_year", "received_date").row(-1, named=True)
        assert row["expected_tax_year"] == best["tax_year"]
        for col in ("street", "unit", "city", "state", "zip"):
            assert row[f"expected_{col}"] == best[col]


def test_unconfirmed_and_out_of_period_rows(master: pl.DataFrame, requests: pl.DataFrame,
                                            truth: pl.DataFrame) -> None:
    rows = truth.join(requests, on="request_row_id")
    # U: the person never filed from the supplied address (house number + ZIP).
    places = set(zip(master["tin"].to_list(), master["street"].str.extract(r"^(\d+)").to_list(),
                     master["zip"].str.slice(0, 5).to_list(), strict=True))
    u_rows = rows.filter(pl.col("expected_outcome") == "U")
    assert u_rows.height > 0
    for row in u_rows.iter_rows(named=True):
        number = row["street"].split(" ")[0]
        assert (row["true_tin"], number, row["zip"][:5]) not in places
    filed_years = master.group_by("tin").agg(pl.col("tax_year").unique())
    years_of = dict(zip(filed_years["tin"], filed_years["tax_year"].to_list(), strict=True))
    p_rows = rows.filter(pl.col("expected_outcome") == "P")
    assert p_rows.height > 0
    for row in p_rows.iter_rows(named=True):
        assert not _years(row["tax_periods"]) & set(years_of[row["true_tin"]])
    assert (rows.filter(pl.col("expected_outcome") == "N")["true_tin"] == "").all()


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 5), (b, 5), (c, 6)):
        generate(persons=1_500, requests=150, seed=seed, out=out)
    assert _digest(a) == _digest(b)
    differing = {k for k, v in _digest(a).items() if _digest(c)[k] != v}
    assert {"request.csv", "truth.csv"} <= differing


def test_sharded_generation_has_unique_ids_and_valid_files(tmp_path: Path) -> None:
    """A population drawn in shards (bounded memory) is one consistent dataset."""
    out = tmp_path / "sharded"
    result = generate(persons=9_000, requests=900, seed=7, out=out, shard_persons=2_500)
    parts = sorted(p.name for p in (out / "master").glob("*.parquet"))
    assert {p[:9] for p in parts} == {"part-s000", "part-s001", "part-s002", "part-s003"}
    assert result.persons == 9_000 and result.request_xlsx is None
    assert not (out / "request.xlsx").exists()
    with DuckDBEngine() as engine:
        report = load_master(engine, out / "master")  # raises if structurally unusable
        assert report.quarantined == 0
        assert engine.count("master") == result.master_rows == report.rows
        # TINs are unique across shards: a TIN is never two people (one name per TIN)
        assert engine.fetchall("SELECT count(*) FROM (SELECT tin FROM master GROUP BY tin "
                               "HAVING count(DISTINCT (first_name, last_name)) > 1)")[0][0] == 0
        shard_of_tin = engine.fetchall("""
            SELECT count(*) FROM (SELECT tin FROM master GROUP BY tin
                                  HAVING count(DISTINCT split_part(filename, '-', 2)) > 1)
        """.replace("FROM master", "FROM read_parquet('" + str(out / "master") +
                    "/*.parquet', filename = true)"))[0][0]
        assert shard_of_tin == 0
    requests, truth = _read_text_csv(out / "request.csv"), _read_text_csv(out / "truth.csv")
    assert requests.columns == REQUEST_COLUMNS and truth.columns == TRUTH_COLUMNS
    assert requests.height == result.request_rows == 900
    assert truth["request_row_id"].is_unique().all()
    assert set(truth["request_row_id"]) == set(requests["request_row_id"])
    ids = sorted(int(i[4:]) for i in truth["request_row_id"])
    assert ids[0] >= 1 and ids[-1] <= 900  # one range, no shard reusing another's ids
    # every shard contributed requests of every kind
    assert set(truth["expected_outcome"]) == {"M", "U", "P", "N", "R"}
    assert result.outcome_counts == {k: int(v) for k, v in
                                     truth["expected_outcome"].value_counts().iter_rows()}
    assert "certified = true" in (out / "batch.toml").read_text()


def test_one_shard_is_the_unsharded_generator(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate(persons=1_500, requests=150, seed=5, out=a)
    generate(persons=1_500, requests=150, seed=5, out=b, shard_persons=1_500)
    assert _digest(a) == _digest(b)
