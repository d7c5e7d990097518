"""The candidate-search SQL rules, evaluated on hand-made pairs in DuckDB."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from lastknown.engines import DuckDBEngine
from lastknown.engines.base import Numbering, SqlStep
from lastknown.match.candidates import names_can_agree_sql
from lastknown.match.decide import address_confirmed_sql
from lastknown.match.index import RECORD_KEY_COLUMNS
from lastknown.normalize.address import normalised_address_sql


@pytest.fixture()
def engine() -> Iterator[DuckDBEngine]:
    with DuckDBEngine() as e:
        yield e  # type: ignore[misc]


_ADDRESS = ("house_number VARCHAR, street_name VARCHAR, zip5 VARCHAR, city_n VARCHAR, "
            "state_n VARCHAR, unit_n VARCHAR, predir VARCHAR")


def _confirms(engine: DuckDBEngine, q: tuple[str | None, ...], r: tuple[str | None, ...]) -> object:
    """Confirmation on normalised columns given by hand (lines without a street type)."""
    for name, row in (("q", q), ("r", r)):
        engine.execute(f"CREATE OR REPLACE TABLE {name} ({_ADDRESS})")
        engine.execute(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?)", list(row))
        engine.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT *, "
                       f"replace(street_name, ' ', '') AS street_line, "
                       f"CAST(NULL AS VARCHAR) AS street_type FROM {name}")
    return engine.fetchall(f"SELECT {address_confirmed_sql()} FROM q, r")[0][0]


def _confirms_raw(engine: DuckDBEngine, q: tuple[str, ...], r: tuple[str, ...]) -> object:
    """Confirmation of two raw (street, unit, city, state, zip) lines, normalised as usual."""
    for name, row in (("q_raw", q), ("r_raw", r)):
        engine.execute(f"CREATE OR REPLACE TABLE {name} (street VARCHAR, unit VARCHAR, "
                       "city VARCHAR, state VARCHAR, zip VARCHAR)")
        engine.execute(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?)", list(row))
    engine.run_steps([
        SqlStep(sql=normalised_address_sql("q_raw", keep=["street"]), output_table_name="q"),
        SqlStep(sql=normalised_address_sql("r_raw", keep=["street"]), output_table_name="r")])
    return engine.fetchall(f"SELECT {address_confirmed_sql()} FROM q, r")[0][0]


_FILED = ("117 Parker Street", "", "Brighton", "MA", "02135")


@pytest.mark.parametrize(("supplied", "expected"), [
    (("117 parker tsreet", "", "Brighton", "MA", "02135"), True),   # type transposed
    (("117 Parker Streeet", "", "Brighton", "MA", "02135"), True),  # type with a doubled letter
    (("117 Par ker St", "", "Brighton", "MA", "02135"), True),      # a space in the name
    (("117 Parker St", "", "brigthon", "MA", "02136"), True),       # city typo and a zip digit
    (("117 Parker St", "", "Brighton", "MA", "02136"), True),       # one zip digit, city right
    (("117 Parker St", "", "brigthon", "MA", ""), True),            # city typo, no zip
    (("117 Parker Ave", "", "Brighton", "MA", "02135"), True),      # type wrong, name equal
    (("117 Barker St", "", "Brighton", "MA", "02135"), True),       # one typo in 6 letters
    (("117 Parks St", "", "Brighton", "MA", "02135"), False),       # another street
    (("117 Parkr e St", "", "Brighton", "MA", "02135"), True),      # a space and a typo
    (("119 Parker St", "", "Brighton", "MA", "02135"), False),      # another house
    (("117 Parker St", "", "Boston", "MA", "02118"), False),        # another place
    (("117 Parker St", "", "brigthon", "MA", "02153"), False),      # zip two digits off
    (("117 Parker St", "", "brigthon", "NH", "02136"), False),      # state differs
])
def test_confirmation_tolerates_keying_errors(engine: DuckDBEngine, supplied: tuple[str, ...],
                                              expected: bool) -> None:
    assert _confirms_raw(engine, supplied, _FILED) is expected


@pytest.mark.parametrize(("supplied", "filed", "expected"), [
    ("12 franc p lace", "12 Franc Place", True),       # a type split in two
    ("12 hallen clise", "12 Hallen Close", True),      # a non-USPS type word with a typo
    ("12 Main St", "12 Mail St", False),               # short names: one letter is a street
    ("12 Mainstreet", "12 Main St", True),             # merged name and type
    ("12 Oak Plaza", "12 Oak Place", True),            # types are never compared
    ("12 Oakk Plaza", "12 Oak Place", False),          # a typo'd short name stays a typo
    ("12 Elm Age", "12 Elm Ave", True),                # a keyed-wrong type
    ("12 Ocean Cri", "12 Ocean Cir", True),
    ("12 Wellingtonst", "12 Wellington St", True),     # a type run into the name
    ("12 Pacificdr", "12 Pacifica Dr", True),          # ... and a typo in the name
    ("12 Oakwood", "12 Oak St", False),                # a longer name is another street
    ("12 Elm Baker", "12 Elm Ave", False),             # a word, not a keyed-wrong type
    ("12 17ht St", "12 17th St", True),                # an ordinal's suffix keyed wrong
    ("12 Frank1in St", "12 Franklin St", True),        # a scanned digit in a name
    ("1074 W 350 N", "1074 W 350 S", False),           # grid streets: numbers are exact
])
def test_street_line_rule(engine: DuckDBEngine, supplied: str, filed: str,
                          expected: bool) -> None:
    place = ("", "Austin", "TX", "78701")
    assert _confirms_raw(engine, (supplied, *place), (filed, *place)) is expected


_HOME = ("12", "MAPLE", "78701", "AUSTIN", "TX", None, None)


@pytest.mark.parametrize(("record", "expected"), [
    (_HOME, True),
    (("12", "MAPEL", "78701", "AUSTIN", "TX", None, None), True),   # one transposition
    (("12", "MAPLES", "78701", "AUSTIN", "TX", None, None), True),  # one insertion
    (("12", "MA PLE", "78701", "AUSTIN", "TX", None, None), True),  # spaces ignored
    (("12", "MAPLEWOOD", "78701", "AUSTIN", "TX", None, None), False),  # 4 letters longer
    (("12", "MAPLE", "78745", "AUSTIN", "TX", None, None), True),   # zip moved, same city
    (("12", "MAPLE", "78745", "ROUND ROCK", "TX", None, None), False),
    (("14", "MAPLE", "78701", "AUSTIN", "TX", None, None), False),
    (("12", "MAPLE", "78701", "AUSTIN", "TX", "3", None), True),    # unit on one side only
    (("12", "MAPLE", "78701", "AUSTIN", "TX", None, "N"), True),
    (("12", "MAPLE", None, None, "TX", None, None), False),  # cannot compare zip or city
    ((None, "MAPLE", "78701", "AUSTIN", "TX", None, None), False),
])
def test_address_confirmation_rule(engine: DuckDBEngine, record: tuple[str | None, ...],
                                   expected: bool) -> None:
    got = _confirms(engine, _HOME, record)
    assert got is expected  # TRUE or FALSE, never NULL: unknown is not confirmed


def test_one_typo_counts_in_the_longer_name(engine: DuckDBEngine) -> None:
    place = ("", "Austin", "TX", "78701")
    assert _confirms_raw(engine, ("2307 N Iver St", *place), ("2307 N River St", *place))
    assert not _confirms_raw(engine, ("12 Mai St", *place), ("12 Main St", *place))


@pytest.mark.parametrize(("supplied", "filed", "expected"), [
    ("3104 N Martin Luther", "3104 N Martin Luther King Jr Ln", True),  # cut at 20 letters
    ("1788 Crestview Parkw", "1788 Crestview Parkway", True),
    ("16 N El Camino Real Boule", "16 N El Camino Real Boulevard", True),
    ("12 Maple", "12 Maplewood Dr", False),  # short: another street as often as not
    ("3104 N Martin Luther", "3106 N Martin Luther King Jr Ln", False),  # another house
    ("3104 N Martin Luther St", "3104 N Martin Luther King Jr Ln", False),  # typed: whole
])
def test_a_street_line_cut_short_confirms(engine: DuckDBEngine, supplied: str, filed: str,
                                          expected: bool) -> None:
    place = ("", "Austin", "TX", "78701")
    assert _confirms_raw(engine, (supplied, *place), (filed, *place)) is expected


def test_contradicting_unit_or_predirectional_never_confirms(engine: DuckDBEngine) -> None:
    q = ("12", "MAPLE", "78701", "AUSTIN", "TX", "3", "N")
    assert _confirms(engine, q, ("12", "MAPLE", "78701", "AUSTIN", "TX", "3", "N")) is True
    assert _confirms(engine, q, ("12", "MAPLE", "78701", "AUSTIN", "TX", "4", "N")) is False
    assert _confirms(engine, q, ("12", "MAPLE", "78701", "AUSTIN", "TX", "3", "S")) is False


_EXACT = {"comparisons": [
    {"output_column_name": name, "comparison_levels": [
        {"sql_condition": f'"{col}_l" IS NULL', "is_null_level": True},
        {"sql_condition": f'"{col}_l" = "{col}_r"', "m_probability": 0.9,
         "u_probability": 0.01},
        {"sql_condition": "ELSE", "m_probability": 0.1, "u_probability": 0.99},
    ]} for name, col in (("first_name", "first_n"), ("surname", "surname_n"))]}


@pytest.mark.parametrize(("request_name", "record_name", "expected"), [
    (("JOHN", "SMITH"), ("JOHN", "SMITH"), True),
    (("PETER", "SMITH"), ("JOHN", "SMITH"), False),
    (("GARCIA", "MARIA"), ("MARIA", "GARCIA"), True),        # given/surname swapped
    (("GARCIA", "MARIA LOPEZ"), ("MARIA", "GARCIA LOPEZ"), False),  # shares LOPEZ: not swapped
    (("JOHN", "SMITH"), ("SMITH", "JOHN"), True),
])
def test_names_can_agree_reads_swapped_names_once(
        engine: DuckDBEngine, request_name: tuple[str, str], record_name: tuple[str, str],
        expected: bool) -> None:
    for table, (first, surname) in (("q", request_name), ("r", record_name)):
        engine.execute(f"""CREATE OR REPLACE TABLE {table} AS SELECT '{first}' AS first_n,
            left('{first}', 1) AS first_initial, ['{first}'] AS first_groups,
            string_split('{surname}', ' ') AS surname_tokens, '{surname}' AS surname_n""")
    got = engine.fetchall(f"SELECT {names_can_agree_sql(_EXACT)} FROM q, r")[0][0]
    assert got is expected


def test_joins_as_written_is_a_hint_that_is_undone(engine: DuckDBEngine) -> None:
    engine.execute("CREATE TABLE a AS SELECT range AS id FROM range(100)")
    engine.execute("CREATE TABLE b AS SELECT range AS id, range * 2 AS v FROM range(50)")
    engine.execute("SET disabled_optimizers = 'compressed_materialization'")
    sql = "SELECT a.id, b.v FROM a JOIN b ON b.id = a.id"
    engine.run_steps([SqlStep(sql=sql, output_table_name="plain"),
                      SqlStep(sql=sql, output_table_name="hinted", joins_as_written=True)])
    assert engine.fetchall("SELECT count(*), sum(v) FROM hinted") == [(50, 2450)]
    assert engine.fetchall("SELECT * FROM plain EXCEPT SELECT * FROM hinted") == []
    setting = "SELECT current_setting('disabled_optimizers')"
    assert engine.fetchall(setting) == [("compressed_materialization",)]
    with engine.joins_as_written():
        assert "join_order" in str(engine.fetchall(setting)[0][0])
    with pytest.raises(RuntimeError), engine.joins_as_written():
        raise RuntimeError("a failing step")
    assert engine.fetchall(setting) == [("compressed_materialization",)]


def _all_generated_steps() -> list[SqlStep]:
    from lastknown.match.index import index_steps
    from lastknown.match.score import pair_steps

    return [*index_steps(master_table="m", tin_count=100, cuts=["3", "6"]),
            *pair_steps(requests="q", records="r", candidates="c")]


def test_no_step_numbers_a_whole_table_with_a_window() -> None:
    # a window with no PARTITION BY is one partition on Spark: numbering is the engine's
    # (SqlStep.numbering) or a key built from the row itself
    global_window = re.compile(r"OVER\s*\(\s*ORDER\s+BY", re.IGNORECASE)
    steps = _all_generated_steps()
    assert not [s.output_table_name for s in steps if global_window.search(s.sql)]
    numbered = {s.output_table_name: s.numbering.order_by for s in steps
                if s.numbering is not None}
    # in a total order: TIN, year, then every column that makes a record (so a record's
    # number is the same on every engine and in every build)
    assert numbered == {"lkidx.idx_record": ("tin", "year_min", *RECORD_KEY_COLUMNS),
                        "lk_training": ("tin", "tax_year", *RECORD_KEY_COLUMNS)}
    assert {"first_n", "surname_n", "house_number", "street_name", "zip5"} <= set(
        RECORD_KEY_COLUMNS)


def test_a_numbered_step_on_duckdb_is_the_window_it_replaces(engine: DuckDBEngine) -> None:
    engine.execute("CREATE TABLE n_src AS SELECT * FROM (VALUES ('b', 2, 'x'), ('a', 9, 'y'), "
                   "('b', 1, 'z'), (NULL, 0, 'w')) t(tin, tax_year, v)")
    step = SqlStep(sql="SELECT tin, tax_year, v FROM n_src", output_table_name="n_out",
                   numbering=Numbering(column="unique_id", order_by=("tin", "tax_year"),
                                       keep=("v",), as_text=True))
    engine.run_steps([step])
    assert engine.column_types("n_out") == {"unique_id": "VARCHAR", "v": "VARCHAR"}
    assert engine.fetchall("SELECT * FROM n_out ORDER BY unique_id") == [
        ("1", "y"), ("2", "z"), ("3", "x"), ("4", "w")]
    assert engine.fetchall(
        "SELECT CAST(row_number() OVER (ORDER BY tin, tax_year) AS VARCHAR), v FROM n_src "
        "ORDER BY 1") == engine.fetchall("SELECT * FROM n_out ORDER BY unique_id")


def test_a_pair_id_is_its_request_row_and_record(engine: DuckDBEngine) -> None:
    from lastknown.match.score import PAIR_ID_SQL

    ids = engine.fetchall(f"SELECT {PAIR_ID_SQL} FROM (VALUES (1, 23), (12, 3)) c(source_row, "
                          "record_id)")
    assert ids == [("q1_23",), ("q12_3",)]
