"""The command line: a thin shell over documented library functions.

Every command calls one function of the library; errors are lastknown errors
whose messages say how to fix the problem, printed without a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from collections.abc import Callable
from datetime import date
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lastknown import __version__
from lastknown.errors import InputError, LastknownError, PipelineError

if TYPE_CHECKING:
    from lastknown.config import Deployment, SparkSettings

F = TypeVar("F", bound=Callable[..., Any])


#: Exit code of an unexpected failure: a bug in lastknown (README "Exit codes").
EXIT_INTERNAL = 70


def _friendly_errors(func: F) -> F:
    """Turn every failure into `Error: ...` on stderr and a documented exit code.

    A LastknownError carries its own code; a file-system error (OSError) is the
    person's path or permissions (2); anything else is a bug (70). No traceback is
    shown unless LASTKNOWN_DEBUG is set, and an unexpected error's message is not
    printed (it could quote a cell of a request or return).
    """

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except PipelineError as exc:
            _debug_traceback()
            click.echo(f"Error: internal error: {_without_values(str(exc))}\n{_REPORT}", err=True)
            sys.exit(exc.exit_code)
        except LastknownError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:
            _debug_traceback()
            where = exc.filename if exc.filename is not None else "a file"
            click.echo(f"Error: cannot use {where}: {exc.strerror or exc}; check that the "
                       "path exists and that you may read and write there", err=True)
            sys.exit(InputError.exit_code)
        except Exception as exc:
            _debug_traceback()
            click.echo(f"Error: internal error ({type(exc).__name__} {_origin(exc)}); "
                       f"{_REPORT}", err=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper  # type: ignore[return-value]


_REPORT = ("this is a bug in lastknown: please report it with the command you ran "
           "(LASTKNOWN_DEBUG=1 shows the traceback)")


def _without_values(text: str) -> str:
    """An engine's message with every quoted literal blanked: it could quote a cell."""
    return re.sub(r"'[^'\n]*'", "'…'", text)[:3000]


def _debug_traceback() -> None:
    if os.environ.get("LASTKNOWN_DEBUG"):
        traceback.print_exc()


def _origin(exc: BaseException) -> str:
    """``at module.py:LINE``: the innermost lastknown frame, no values."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "lastknown" in f.filename]
    return f"at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


def _iso_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """A ``--today``-style option's value as a date; a usage error (exit 2) otherwise."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; give it as YYYY-MM-DD, "
                                 "e.g. 2026-11-01") from None


def _engine_limits(func: F) -> F:
    """The `--threads` and `--memory-limit` options shared by engine-heavy commands."""
    func = click.option("--memory-limit", default=None, metavar="SIZE",
                        help="Engine memory cap, e.g. 6GB (DuckDB default: 80% of RAM; "
                             "it spills to disk beyond it).")(func)
    func = click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="Engine worker threads [default: all cores].")(func)
    return func


def _engine_option(help_text: str) -> Callable[[F], F]:
    """The `--engine` option (duckdb or spark), with what it means for the command."""
    return click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb",
                        show_default=True, help=help_text)


def _spark_master_option(func: F) -> F:
    """The `--spark-master` option of the commands that take `--engine`."""
    return click.option(
        "--spark-master", default=None, metavar="URL",
        help="With --engine spark: the Spark master, e.g. spark://head:7077 [default: the "
             "[spark] master of lastknown.toml, else local[N], N = --threads or 2].")(func)


def _spark_master_needs_spark(engine: str, spark_master: str | None) -> None:
    if spark_master and engine != "spark":
        raise click.UsageError("--spark-master is for --engine spark")


def _spark_settings(engine: str, spark_master: str | None) -> SparkSettings | None:
    """With --engine spark: the deployment's ``[spark]`` settings, --spark-master over them
    (read without saying which ledger: a command that uses one says so itself)."""
    _spark_master_needs_spark(engine, spark_master)
    if engine != "spark":
        return None
    from lastknown.config import load_deployment

    config_file = (click.get_current_context().find_root().obj or {}).get("config_file")
    return load_deployment(config_file).spark.with_master(spark_master)


def _deployment(ledger: str | None) -> Deployment:
    """The deployment of this run (``--config-file``, ``--ledger`` overriding), said on stderr."""
    from lastknown.config import load_deployment

    ctx = click.get_current_context()
    config_file = (ctx.find_root().obj or {}).get("config_file")
    deployment = load_deployment(config_file)
    if ledger:
        deployment = deployment.with_ledger(ledger)
    click.echo(deployment.describe(), err=True)
    return deployment


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lastknown")
@click.option("--config-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Deployment config (lastknown.toml: ledger, archive, anchors) "
                   "[default: $LASTKNOWN_CONFIG, then lastknown.toml in the user config dir].")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """lastknown: answer bulk last-known-address requests precisely, minimally, accountably.

    Commands that use the ledger print which one on stderr.

    Example:

        lastknown --config-file /etc/lastknown/lastknown.toml ledger verify
    """
    ctx.ensure_object(dict)["config_file"] = config_file


@cli.command()
@click.option("--persons", type=click.IntRange(min=10), default=10_000, show_default=True,
              help="People in the synthetic population.")
@click.option("--requests", type=click.IntRange(min=1), default=1_000, show_default=True,
              help="Rows in the synthetic request.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write master/, request.csv, request.xlsx, batch.toml, truth.csv "
                   "(new or empty, unless --force).")
@click.option("--force", is_flag=True, default=False,
              help="Replace those files in a non-empty --out (only once the new ones are "
                   "written).")
@_friendly_errors
def synth(persons: int, requests: int, seed: int, out: Path, force: bool) -> None:
    """Generate a synthetic master, request, batch metadata and ground truth.

    Example:

        lastknown synth --persons 200000 --requests 20000 --seed 7 --out data/s7
    """
    from lastknown.synth import generate

    result = generate(persons=persons, requests=requests, seed=seed, out=out, force=force,
                      progress=sys.stderr.isatty())
    click.echo(f"Wrote {out}: {result}")


@cli.command()
@click.argument("request", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--master", type=click.Path(exists=True, path_type=Path), required=True,
              help="Master Parquet file/folder, or an index built by `lastknown master index`.")
@click.option("--batch", "batch_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), required=True, help="Batch metadata (TOML or JSON).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Response package folder to create (must not exist); required unless "
                   "--hold.")
@click.option("--hold", is_flag=True, default=False,
              help="Prepare only: match and hold the package for review; another person "
                   "releases it (`lastknown release`). Nothing is disclosed.")
@click.option("--submitted-by", default=None, metavar="NAME",
              help="With --hold: who submits the batch (recorded; may not approve it) "
                   "[default: your user name].")
@_engine_option("Execution engine. spark needs the extra lastknown[spark] and Java 17, "
                "and reads an index built with --engine spark.")
@_spark_master_option
@click.option("--ledger", default=None,
              help="Ledger: a SQLite path or SQLAlchemy URL [default: the deployment's, "
                   "see --config-file].")
@click.option("--encoding", default=None, help="Request CSV encoding (detected if omitted).")
@click.option("--sheet", default=None,
              help="XLSX sheet to read [default: the one visible sheet with request columns; "
                   "hidden sheets only when named].")
@click.option("--header-row", type=click.IntRange(min=1), default=None, metavar="N",
              help="The row that holds the headers, when title rows come first (CSV, XLSX).")
@click.option("--config", "match_config", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None, help="Matching thresholds (TOML).")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Disclosure policy (TOML).")
@click.option("--today", callback=_iso_date, default=None, metavar="YYYY-MM-DD",
              help="Treat this date (YYYY-MM-DD) as today (for replays).")
@_engine_limits
@_friendly_errors
def process(request: Path, master: Path, batch_path: Path, out: Path | None, hold: bool,
            submitted_by: str | None, engine: str, spark_master: str | None,
            ledger: str | None, encoding: str | None,
            sheet: str | None, header_row: int | None, match_config: Path | None,
            policy: Path | None, today: date | None, threads: int | None,
            memory_limit: str | None) -> None:
    """Answer a request: validate, match, write the response package, record the ledger.

    With --hold, stop before anything is disclosed: the package is held for a disclosure
    officer (`lastknown review`, then `release` or `deny` by another person). Without
    it, the operator releases the batch at once, where the policy allows one person to
    (single_operator_release; else exit 3).

    Example:

        lastknown process request.csv --master master/ --batch batch.toml --out response/
    """
    from lastknown.pipeline import ProcessOptions, process_request

    if hold == (out is not None):
        raise click.UsageError("give --out DIR (prepare and release now) or --hold (prepare "
                               "and hold for review), not both")
    _spark_master_needs_spark(engine, spark_master)
    options = ProcessOptions(engine=engine, spark_master=spark_master,
                             deployment=_deployment(ledger), encoding=encoding,
                             sheet=sheet, header_row=header_row,
                             match_config=match_config, policy=policy, today=today,
                             progress=sys.stderr.isatty(), threads=threads,
                             memory_limit=memory_limit)
    if hold:
        from lastknown.workflow import default_user, prepare

        state = prepare(request, master=master, batch_path=batch_path,
                        submitted_by=submitted_by or default_user(), options=options)
        click.echo(describe_held(state))
        return
    assert out is not None
    result = process_request(request, master=master, batch_path=batch_path, out=out,
                             options=options)
    click.echo(result.describe())


def describe_held(state: Any) -> str:
    """What `process --hold` says: the batch, its counts and the next commands."""
    b = state.batch_id
    return (f"Batch {b} held for review: {state.rows_total:,} rows — {state.rows_matched:,} "
            f"matched, {state.rows_unmatched:,} unmatched, {state.rows_rejected:,} rejected. "
            "Nothing is disclosed until another person approves it.\n"
            f"Next: lastknown review {b}, then lastknown release {b} --approver NAME "
            f"--out DIR (or lastknown deny {b} --officer NAME --reason TEXT)")


@cli.command()
@click.option("--status", type=click.Choice(["held", "released", "denied"]), default=None,
              help="Only batches in this state.")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON.")
@click.option("--ledger", "ledger_url", default=None,
              help="Ledger: a SQLite path or SQLAlchemy URL [default: the deployment's].")
@_friendly_errors
def batches(status: str | None, as_json: bool, ledger_url: str | None) -> None:
    """List the prepared batches: held for review, released or denied.

    Example:

        lastknown batches --status held
    """
    from lastknown.disclose.review import render_state
    from lastknown.workflow import list_batches

    found = list_batches(_deployment(ledger_url), status=status)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in found], indent=2, sort_keys=True))
    else:
        click.echo("\n".join(render_state(s) for s in found) or "No prepared batches.")


@cli.command()
@click.argument("batch_id", metavar="BATCH")
@click.option("--sample", type=click.IntRange(0, 1000), default=20, show_default=True,
              help="Matched rows to show with their explanation (the same rows every time).")
@click.option("--json", "as_json", is_flag=True, default=False, help="Print JSON.")
@click.option("--ledger", "ledger_url", default=None,
              help="Ledger: a SQLite path or SQLAlchemy URL [default: the deployment's].")
@_friendly_errors
def review(batch_id: str, sample: int, as_json: bool, ledger_url: str | None) -> None:
    """Show a held batch to the disclosure officer: counts, policy, sample; never a TIN.

    Example:

        lastknown review 2026-0142 --sample 30
    """
    from lastknown.disclose.review import render_review
    from lastknown.workflow import review as run_review

    found = run_review(batch_id, _deployment(ledger_url), sample=sample)
    click.echo(json.dumps(found.as_dict(), indent=2, sort_keys=True) if as_json
               else render_review(found))


@cli.command()
@click.argument("batch_id", metavar="BATCH")
@click.option("--approver", required=True, metavar="NAME",
              help="Who approves the release (recorded; not the submitter).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Response package folder to create (must not exist).")
@click.option("--ledger", "ledger_url", default=None,
              help="Ledger: a SQLite path or SQLAlchemy URL [default: the deployment's].")
@_friendly_errors
def release(batch_id: str, approver: str, out: Path, ledger_url: str | None) -> None:
    """Release a held batch: record its disclosures and deliver its package (exit 3 if the
    approver submitted it, or it is not held).

    Example:

        lastknown release 2026-0142 --approver "Jane Roe" --out response/
    """
    from lastknown.workflow import release as run_release

    result = run_release(batch_id, approver=approver, out=out,
                         deployment=_deployment(ledger_url))
    click.echo(result.describe())


@cli.command()
@click.argument("batch_id", metavar="BATCH")
@click.option("--officer", required=True, metavar="NAME", help="Who denies it (recorded).")
@click.option("--reason", required=True, metavar="TEXT",
              help="Why (recorded in the ledger and shown with the batch).")
@click.option("--ledger", "ledger_url", default=None,
              help="Ledger: a SQLite path or SQLAlchemy URL [default: the deployment's].")
@_friendly_errors
def deny(batch_id: str, officer: str, reason: str, ledger_url: str | None) -> None:
    """Deny a held batch: nothing is disclosed, the held package is deleted (exit 3 if it
    is not held).

    Example:

        lastknown deny 2026-0142 --officer "Jane Roe" --reason "statute does not cover it"
    """
    from lastknown.workflow import deny as run_deny

    state = run_deny(batch_id, officer=officer, reason=reason,
                     deployment=_deployment(ledger_url))
    click.echo(f"Batch {state.batch_id} denied by {state.decided_by}: {state.deny_reason}. "
               "Nothing was disclosed; the held package is deleted.")


@cli.command()
@click.option("--ledger", default=None,
              help="Ledger: a SQLite path or SQLAlchemy URL [default: the deployment's].")
@click.option("--journal", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Publish journal folder [default: the deployment's, in its archive].")
@click.option("--out", "outs", multiple=True, type=click.Path(path_type=Path),
              help="Also settle the staging folder of this response folder (repeatable).")
@_friendly_errors
def recover(ledger: str | None, journal: Path | None, outs: tuple[Path, ...]) -> None:
    """Finish or undo every interrupted `process`: deliver committed packages, remove the rest.

    Example:

        lastknown recover --ledger ledger.sqlite
    """
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.publish import recover_interrupted
    from lastknown.pipeline import journal_of

    deployment = _deployment(ledger)
    done = recover_interrupted(open_ledger(deployment.ledger),
                               journal or journal_of(deployment), outs=outs,
                               anchors=deployment.anchors)
    for item in done:
        click.echo(item.describe())
    if not done:
        click.echo("Nothing to recover.")


@cli.command()
@click.option("--database", envvar="LASTKNOWN_DATABASE", default=None,
              help="The service's database (SQLAlchemy URL) holding the job table "
                   "[env LASTKNOWN_DATABASE; default: [service] app_db of lastknown.toml].")
@click.option("--queue", "queue_url", envvar="LASTKNOWN_QUEUE", default=None,
              help="redis://HOST:PORT/DB or sqlite:///PATH [env LASTKNOWN_QUEUE; default: "
                   "[service] queue of lastknown.toml].")
@click.option("--queue-name", default="lastknown", show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Jobs run at once [default: 2; with --engine spark 1, the most it takes: "
                   "a process has one Spark session].")
@click.option("--heartbeat", type=click.FloatRange(min=0.01), default=10.0, show_default=True,
              help="Seconds between a running job's heartbeats.")
@click.option("--stale-after", type=click.FloatRange(min=0.02), default=60.0,
              show_default=True, help="Seconds without a heartbeat before a job's worker "
                                      "counts as dead and the job is re-queued.")
@click.option("--sweep", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
              help="Seconds between looks for such jobs.")
@click.option("--failed-input-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Days a failed submission keeps its uploaded file (it can be retried until "
                   "then) [default: [service] failed_input_days, else 30].")
@_engine_option("Execution engine of the matching (prepare jobs). spark needs the extra "
                "lastknown[spark] and Java 17, and reads an index built with --engine spark.")
@_spark_master_option
@_engine_limits
@_friendly_errors
def worker(database: str | None, queue_url: str | None, queue_name: str, workers: int | None,
           heartbeat: float, stale_after: float, sweep: float, failed_input_days: float | None,
           engine: str, spark_master: str | None, threads: int | None,
           memory_limit: str | None) -> None:
    """Run the service's jobs (prepare, release) from the queue until Ctrl-C.

    SIGINT lets running jobs finish; SIGTERM or a kill stops at once, and their jobs
    are re-queued by the next worker's sweep (docs/JOBS.md). Prepare jobs match on
    --engine, as `process` does; on Spark one at a time (start more workers for more).

    Example:

    \b
        lastknown worker --database postgresql+psycopg://lk@db/lastknown --queue redis://127.0.0.1:6379/0
        lastknown --config-file /etc/lastknown/lastknown.toml worker   # both from [service]
        lastknown worker --engine spark --spark-master spark://head:7077   # match on Spark
    """
    import logging

    from lastknown.pipeline import EngineChoice
    from lastknown.service.jobs import JobQueue, JobStore, QueueSettings, Worker
    from lastknown.service.settings import ServiceSettings

    choice = EngineChoice(engine=engine, spark=_spark_settings(engine, spark_master),
                          threads=threads, memory_limit=memory_limit)
    if engine == "spark" and (workers or 1) > 1:
        # jobs of one process share its Spark session: their tables would collide
        raise click.UsageError("--engine spark runs one job at a time (a worker process has "
                               "one Spark session): give --workers 1 and start more "
                               "workers for more at once")
    if database is None or queue_url is None or failed_input_days is None:
        service = ServiceSettings.from_deployment(_deployment(None))
        failed_input_days = failed_input_days or service.failed_input_days
        if database is None or queue_url is None:
            configured = service.worker_targets()
            database, queue_url = database or configured[0], queue_url or configured[1]

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = QueueSettings(url=queue_url, name=queue_name,
                             workers=workers or (1 if engine == "spark" else 2),
                             heartbeat_seconds=heartbeat, stale_seconds=stale_after,
                             sweep_seconds=sweep, failed_input_days=failed_input_days)
    Worker(JobQueue(JobStore(database), settings, engine=choice), embedded=False).run()


@cli.command()
@click.option("--result", "result_dir", type=click.Path(exists=True, file_okay=False,
              path_type=Path), required=True, help="A response package folder.")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="truth.csv from `lastknown synth`.")
@click.option("--record", "record_dir", type=click.Path(exists=True, file_okay=False,
              path_type=Path), default=None,
              help="The batch's internal record (default: found in the deployment's archive "
                   "by the batch id in the package's receipt.json).")
@_friendly_errors
def evaluate(result_dir: Path, truth: Path, record_dir: Path | None) -> None:
    """Score a response package against synthetic truth; prints JSON.

    The outcome codes of unanswered rows come from the batch's internal record.

    Example:

        lastknown evaluate --result response/ --truth data/s7/truth.csv
    """
    from lastknown.evaluate import evaluate as run_evaluate

    metrics = run_evaluate(result_dir, truth, record_dir=record_dir)
    click.echo(json.dumps(metrics, indent=2, sort_keys=True))


@cli.command()
@click.option("--persons", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--requests", type=click.IntRange(min=10), default=2_000, show_default=True)
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Keep the demo's files here (a temporary folder otherwise).")
@_engine_option("Execution engine of the index and the matching (spark: the extra "
                "lastknown[spark] and Java 17).")
@_spark_master_option
@_friendly_errors
def demo(persons: int, requests: int, seed: int, out: Path | None, engine: str,
         spark_master: str | None) -> None:
    """Synthesise a small population, process its request, evaluate, and summarise.

    Example:

        lastknown demo --persons 20000 --requests 2000
    """
    from lastknown.demo import run_demo

    report = run_demo(persons=persons, requests=requests, seed=seed, out=out,
                      progress=sys.stderr.isatty(), engine=engine,
                      spark=_spark_settings(engine, spark_master))
    click.echo(report)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put a TLS-terminating proxy in front for others).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--demo", is_flag=True, default=False,
              help="A private demo deployment in the user data folder, with one user per "
                   "role (printed); loopback only, cookies without Secure.")
@click.option("--db", "app_db", default=None, metavar="URL",
              help="App database (users, sessions, access log): SQLite path or "
                   "postgresql+psycopg:// URL [default: [service] app_db, then "
                   "service.sqlite beside the archive].")
@_friendly_errors
def serve(host: str, port: int, demo: bool, app_db: str | None) -> None:
    """The web service: pages and a JSON API (OpenAPI at /openapi.json).

    Example:

        lastknown serve --demo
    """
    from lastknown.service.serve import describe, prepare, run

    settings, folder = prepare(None if demo else _deployment(None), demo=demo, host=host,
                               app_db=app_db)
    if folder is not None:
        from lastknown.service.demo import login_help

        click.echo(login_help(f"http://{host}:{port}", folder))
    click.echo(describe(settings), err=True)
    run(settings, host=host, port=port)


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
@_engine_option("Execution engine: duckdb writes the index as one database file, spark "
                "as Parquet tables (which --engine duckdb reads too).")
@_spark_master_option
@_engine_limits
@_friendly_errors
def master_index(master_path: Path, out: Path, engine: str, spark_master: str | None,
                 threads: int | None, memory_limit: str | None) -> None:
    """Build the matching index and model for one master snapshot.

    Example:

        lastknown master index --master data/s7/master --out data/s7/index
    """
    from lastknown.pipeline import build_master_index

    spark = _spark_settings(engine, spark_master)
    info = build_master_index(master_path, out=out, progress=sys.stderr.isatty(),
                              threads=threads, memory_limit=memory_limit,
                              on_report=lambda report: click.echo(report.text()),
                              engine=engine, spark=spark)
    click.echo(f"Index written to {out} (model {info.model_id})")
    click.echo(f"Model: {info.training}")
    if info.quarantined_rows:
        click.echo(f"{info.quarantined_rows:,} quarantined row(s) written to "
                   f"{out / 'quarantine.parquet'}")


@cli.group()
def ledger() -> None:
    """Verify and report on the disclosure ledger."""


_LEDGER_OPTION = click.option(
    "--ledger", "ledger_url", default=None,
    help="A SQLite path or SQLAlchemy URL [default: the deployment's, see --config-file]; "
         "never created here.")


@ledger.command("verify")
@_LEDGER_OPTION
@click.option("--anchor", "anchor_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="An anchor file, or a delivered receipt.json/summary.json (repeatable): "
                   "each ledger head in it must still be in the chain [default: the "
                   "deployment's anchor file, when it exists].")
@_friendly_errors
def ledger_verify(ledger_url: str | None, anchor_files: tuple[Path, ...]) -> None:
    """Recompute the hash chain and check anchors; exit 5 naming the first bad entry.

    Example:

        lastknown ledger verify --anchor anchors.jsonl --anchor response/receipt.json
    """
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.ledger.verify import deployment_anchors, verify_anchored

    deployment = _deployment(ledger_url)
    opened = open_ledger(deployment.ledger)
    if anchor_files:
        result = verify_anchored(opened, list(anchor_files))
    else:
        anchors, which = deployment_anchors(opened, deployment.anchors)
        click.echo(which)
        result = opened.verify(anchors=anchors)
    click.echo(str(result))


@ledger.command("grant")
@_LEDGER_OPTION
@click.option("--role", required=True,
              help="The PostgreSQL role the application connects as (must exist).")
@_friendly_errors
def ledger_grant(ledger_url: str | None, role: str) -> None:
    """Leave a PostgreSQL role only SELECT and INSERT on the ledger (run as the owner).

    Example:

        lastknown ledger grant --ledger postgresql+psycopg://owner@db/ledger --role lk_app
    """
    from lastknown.disclose.ledger import open_ledger
    from lastknown.disclose.ledger.grants import grant_append_only

    statements = grant_append_only(open_ledger(_deployment(ledger_url).ledger), role)
    click.echo(f"Role {role} may now only SELECT and INSERT ledger rows "
               f"({len(statements)} statements run).")


@ledger.command("report")
@_LEDGER_OPTION
@click.option("--year", type=click.IntRange(1900, 9998), required=True,
              help="Calendar year of disclosures.")
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

    rows = report(open_ledger(_deployment(ledger_url).ledger), year=year)
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

    ledger = open_ledger(_deployment(ledger_url).ledger)
    click.echo(render_taxpayer(taxpayer_disclosures(ledger, tin)))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
