"""The one exception hierarchy of lastknown.

Every error a user can cause or meet is one of these, with a message that names
the file, row and column involved and says how to fix it. Errors raised by the
libraries underneath (DuckDB, openpyxl, SQLAlchemy ...) are mapped into this
hierarchy with ``raise ... from``.

    LastknownError
    ├── InputError                 bad input supplied by a person
    │   ├── RequestFileError       the request file cannot be read / mapped
    │   ├── BatchError             batch metadata missing, malformed or not certified
    │   ├── MasterError            the master does not meet the master contract
    │   ├── NotFoundError          a named batch, user, agency, token ... does not exist
    │   └── ConflictError          it exists already (a username, an agency name)
    ├── ConfigError                a settings / thresholds / policy file is wrong
    ├── PolicyError                the batch is over a policy cap and needs an override
    ├── LedgerError                the ledger cannot be written or read
    │   └── LedgerTamperedError    the hash chain does not verify
    └── PipelineError              an internal invariant failed (a bug, never silenced)

Exit codes (README, "Exit codes"): each class's ``exit_code``; the CLI maps an OSError
to 2 and any other unexpected exception, like PipelineError, to 70 ("internal error").
"""

from __future__ import annotations


class LastknownError(Exception):
    """Base class of every error lastknown raises on purpose."""

    exit_code = 1


class InputError(LastknownError):
    """Input supplied by a person is unusable; the message says how to fix it."""

    exit_code = 2


class RequestFileError(InputError):
    """The request file cannot be read, decoded or its columns mapped."""


class BatchError(InputError):
    """Batch metadata is missing, malformed, or the batch is not certified."""


class MasterError(InputError):
    """The master (return records) does not meet the master contract."""


class NotFoundError(InputError):
    """A named batch, user, agency or token does not exist (exit 2; the service's 404)."""


class ConflictError(InputError):
    """A name that must be unique is taken (the service's 409)."""


class ConfigError(LastknownError):
    """A configuration file (thresholds, policy) is malformed."""

    exit_code = 2


class PolicyError(LastknownError):
    """The batch exceeds a policy cap; it waits for an explicit, recorded override."""

    exit_code = 3


class LedgerError(LastknownError):
    """The disclosure ledger could not be written or read."""

    exit_code = 4


class LedgerTamperedError(LedgerError):
    """The ledger's hash chain does not verify: an entry was edited, removed or moved."""

    exit_code = 5


class PipelineError(LastknownError):
    """An internal invariant failed. This is a bug; it is never silenced."""

    exit_code = 70


class EngineError(PipelineError):
    """An engine refused a statement. ``detail`` is the engine's own message, for a
    caller that turns it into advice; no engine's exception type leaves ``engines/``."""

    def __init__(self, message: str, *, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class CsvReadError(EngineError):
    """An engine could not read a CSV file. What it found, in engine-neutral terms:
    ``line`` (1-based file line, if known), ``fields`` (expected, found) when a row's
    width differs from the header's, ``line_too_long`` and ``not_utf8``."""

    def __init__(self, message: str, *, detail: str, line: int | None,
                 fields: tuple[int, int] | None, line_too_long: bool,
                 not_utf8: bool) -> None:
        super().__init__(message, detail=detail)
        self.line, self.fields = line, fields
        self.line_too_long, self.not_utf8 = line_too_long, not_utf8


class ErrorCollector:
    """Gather many problems, then raise once (after Splink's ``ErrorLogger``).

    >>> errors = ErrorCollector()
    >>> errors.add("column `zip` is missing")
    >>> errors.raise_if_any(MasterError, "master.parquet does not meet the contract")
    Traceback (most recent call last):
    ...
    lastknown.errors.MasterError: master.parquet does not meet the contract:
      - column `zip` is missing
    """

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self, kind: type[LastknownError], headline: str) -> None:
        if self.problems:
            body = "\n".join(f"  - {p}" for p in self.problems)
            raise kind(f"{headline}:\n{body}")
