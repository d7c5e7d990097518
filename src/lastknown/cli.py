"""The command line: a thin shell over documented library functions.

Every command calls one function of the library; errors are lastknown errors
whose messages say how to fix the problem, printed without a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from lastknown import __version__
from lastknown.errors import LastknownError

F = TypeVar("F", bound=Callable[..., Any])


def _friendly_errors(func: F) -> F:
    """Turn a LastknownError into `Error: ...` on stderr and its exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LastknownError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _engine_limits(func: F) -> F:
    """The `--threads` and `--memory-limit` options shared by engine-heavy commands."""
    func = click.option("--memory-limit", default=None, metavar="SIZE",
                        help="Engine memory cap, e.g. 6GB (DuckDB default: 80% of RAM; "
                             "it spills to disk beyond it).")(func)
    func = click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="Engine worker threads [default: all cores].")(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lastknown")
def cli() -> None:
    """lastknown: answer bulk last-known-address requests precisely, minimally, accountably."""


@cli.command()
@click.option("--persons", type=click.IntRange(min=10), default=10_000, show_default=True,
              help="People in the synthetic population.")
@click.option("--requests", type=click.IntRange(min=1), default=1_000, show_default=True,
              help="Rows in the synthetic request.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write master/, request.csv, request.xlsx, batch.toml, truth.csv.")
@_friendly_errors
def synth(persons: int, requests: int, seed: int, out: Path) -> None:
    """Generate a synthetic master, request, batch metadata and ground truth.

    Example:

        lastknown synth --persons 200000 --requests 20000 --seed 7 --out data/s7
    """
    from lastknown.synth import generate

    result = generate(persons=persons, requests=requests, seed=seed, out=out,
                      progress=sys.stderr.isatty())
    click.echo(f"Wrote {out}: {result}")


@cli.command()
@click.argument("request", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--master", type=click.Path(exists=True, path_type=Path), required=True,
              help="Master Parquet file/folder, or an index built by `lastknown master index`.")
@click.option("--batch", "batch_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), required=True, help="Batch metadata (TOML or JSON).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Response package folder to create (must not exist).")
@click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb",
              show_default=True, help="Execution engine.")
@click.option("--ledger", default=None,
              help="Ledger: a SQLite path or SQLAlchemy URL [default: .lastknown/ledger.sqlite].")
@click.option("--encoding", default=None, help="Request CSV encoding (detected if omitted).")
@click.option("--sheet", default=None, help="XLSX sheet name (first sheet if omitted).")
@click.option("--config", "match_config", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None, help="Matching thresholds (TOML).")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Disclosure policy (TOML).")
@click.option("--today", default=None, help="Treat this ISO date as today (for replays).")
@_engine_limits
@_friendly_errors
def process(request: Path, master: Path, batch_path: Path, out: Path, engine: str,
            ledger: str | None, encoding: str | None, sheet: str | None,
            match_config: Path | None, policy: Path | None, today: str | None,
            threads: int | None, memory_limit: str | None) -> None:
    """Answer a request: validate, match, write the response package, record the ledger.

    Example:

        lastknown process request.csv --master master/ --batch batch.toml --out response/
    """
    from lastknown.pipeline import ProcessOptions, process_request

    options = ProcessOptions(engine=engine, ledger=ledger, encoding=encoding, sheet=sheet,
                             match_config=match_config, policy=policy, today=_date(today),
                             progress=sys.stderr.isatty(), threads=threads,
                             memory_limit=memory_limit)
    result = process_request(request, master=master, batch_path=batch_path, out=out,
                             options=options)
    click.echo(result.describe())


@cli.command()
@click.option("--result", "result_dir", type=click.Path(exists=True, file_okay=False,
              path_type=Path), required=True, help="A response package folder.")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="truth.csv from `lastknown synth`.")
@_friendly_errors
def evaluate(result_dir: Path, truth: Path) -> None:
    """Score a response package against synthetic truth; prints JSON.

    Example:

        lastknown evaluate --result response/ --truth data/s7/truth.csv
    """
    from lastknown.evaluate import evaluate as run_evaluate

    click.echo(json.dumps(run_evaluate(result_dir, truth), indent=2, sort_keys=True))


@cli.command()
@click.option("--persons", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--requests", type=click.IntRange(min=10), default=2_000, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Keep the demo's files here (a temporary folder otherwise).")
@_friendly_errors
def demo(persons: int, requests: int, seed: int, out: Path | None) -> None:
    """Synthesise a small population, process its request, evaluate, and summarise.

    Example:

        lastknown demo --persons 20000 --requests 2000
    """
    from lastknown.demo import run_demo

    report = run_demo(persons=persons, requests=requests, seed=seed, out=out,
                      progress=sys.stderr.isatty())
    click.echo(report)


@cli.group()
def master() -> None:
    """Work with the master (return records)."""


@master.command("check")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@_friendly_errors
def master_check(path: Path) -> None:
    """Check a master Parquet file/folder against the master contract.

    Rows lacking a usable name or address are counted and shown by file and row
    (never a TIN or name); they are quarantined by `master index`. Exit 2 only when
    the master is structurally unusable (columns missing or mistyped, most rows broken).

    Example:

        lastknown master check data/s7/master
    """
    from lastknown.engines import make_engine
    from lastknown.master import load_master

    with make_engine() as engine:
        click.echo(load_master(engine, path).text())


@master.command("index")
@click.option("--master", "master_path", type=click.Path(exists=True, path_type=Path),
              required=True, help="Master Parquet file or folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Index folder to create.")
@_engine_limits
@_friendly_errors
def master_index(master_path: Path, out: Path, threads: int | None,
                 memory_limit: str | None) -> None:
    """Build the matching index and model for one master snapshot.

    Example:

        lastknown master index --master data/s7/master --out data/s7/index
    """
    from lastknown.pipeline import build_master_index

    info = build_master_index(master_path, out=out, progress=sys.stderr.isatty(),
                              threads=threads, memory_limit=memory_limit,
                              on_report=lambda report: click.echo(report.text()))
    click.echo(f"Index written to {out} (model {info.model_id})")
    if info.quarantined_rows:
        click.echo(f"{info.quarantined_rows:,} quarantined row(s) written to "
                   f"{out / 'quarantine.parquet'}")


@cli.group()
def ledger() -> None:
    """Verify and report on the disclosure ledger."""


_LEDGER_OPTION = click.option(
    "--ledger", "ledger_url", default=None,
    help="A SQLite path or SQLAlchemy URL [default: .lastknown/ledger.sqlite].")


@ledger.command("verify")
@_LEDGER_OPTION
@_friendly_errors
def ledger_verify(ledger_url: str | None) -> None:
    """Recompute the hash chain; exit non-zero naming the first bad entry.

    Example:

        lastknown ledger verify --ledger postgresql+psycopg://lk@db/ledger
    """
    from lastknown.disclose.ledger import open_ledger

    result = open_ledger(ledger_url).verify()
    click.echo(str(result))


@ledger.command("report")
@_LEDGER_OPTION
@click.option("--year", type=int, required=True, help="Calendar year of disclosures.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Also write the report as CSV here.")
@_friendly_errors
def ledger_report(ledger_url: str | None, year: int, csv_path: Path | None) -> None:
    """Per-agency counts for one year: the 6103(p)(3)(C) figures.

    Example:

        lastknown ledger report --year 2026 --csv report-2026.csv
    """
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.ledger.reports import render_report, report, write_report_csv

    rows = report(open_ledger(ledger_url), year=year)
    if csv_path is not None:
        write_report_csv(rows, csv_path)
    click.echo(render_report(rows))


@ledger.command("taxpayer")
@_LEDGER_OPTION
@click.argument("tin")
@_friendly_errors
def ledger_taxpayer(ledger_url: str | None, tin: str) -> None:
    """Every disclosure of one TIN: to whom, when, under which authority.

    Example:

        lastknown ledger taxpayer 123456789
    """
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.ledger.reports import render_taxpayer, taxpayer_disclosures

    click.echo(render_taxpayer(taxpayer_disclosures(open_ledger(ledger_url), tin)))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
