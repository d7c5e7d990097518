"""Batch metadata: who asks, under which statutes, with which certification.

A batch file is TOML or JSON (see DESIGN.md). Every problem with it is reported
at once, and a key the file format does not know is one of them (a cap written
outside ``[overrides]`` must not be silently ignored). A batch with
``certified = false`` loads, so that the policy gate can refuse it *and record the
refusal in the ledger* (:func:`lastknown.disclose.policy.refuse_uncertified`).

>>> normalise_statute("8 usc § 1253 (a) (1)")
'8 U.S.C. 1253(A)(1)'
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lastknown.errors import BatchError, ErrorCollector
from lastknown.normalize.placeholders import STATUTE_RULES, apply_rules

#: Keys whose value must be a non-empty string.
_TEXT_KEYS = (
    "batch_id", "requesting_agency", "requesting_official", "official_title", "reason",
)
#: Every key a batch file may carry; ``extra`` holds the optional ones that are present.
_OPTIONAL_KEYS = ("certifying_officers", "overrides")
_KNOWN_KEYS = (*_TEXT_KEYS, "authorised_statutes", "certified", "certification",
               *_OPTIONAL_KEYS)


@dataclass(frozen=True, kw_only=True)
class Batch:
    """The metadata of one request batch; ``extra`` keeps every further key."""

    batch_id: str
    requesting_agency: str
    requesting_official: str
    official_title: str
    reason: str
    authorised_statutes: tuple[str, ...]
    certified: bool
    certification: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def authorised_statutes_normalised(self) -> tuple[str, ...]:
        """The authorised statutes in the form rows are compared in."""
        return tuple(sorted({normalise_statute(s) for s in self.authorised_statutes}))

    @property
    def statute_spelling(self) -> dict[str, str]:
        """Each authorised statute's comparison form -> its spelling in the batch file.

        Statutes keep their legal spelling (``1253(a)(1)``, not ``1253(A)(1)``) wherever
        they are stored or shown; only comparisons use :func:`normalise_statute`.
        """
        spelling: dict[str, str] = {}
        for statute in self.authorised_statutes:
            spelling.setdefault(normalise_statute(statute), statute)
        return spelling


def normalise_statute(text: str) -> str:
    """One spelling per statute citation: upper case, ``U.S.C.``, no ``§``, tight brackets.

    ``8 USC 1253(a)(1)``, ``8 U.S.C. § 1253 (a)(1)`` and ``8 u.s.c 1253(a)(1)`` all
    become ``8 U.S.C. 1253(A)(1)``. The same rules run in SQL for request rows
    (:data:`lastknown.normalize.placeholders.STATUTE_RULES`).
    """
    return apply_rules(text.upper(), STATUTE_RULES)


def _read(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise BatchError(f"batch file {path}: unsupported extension `{path.suffix}`; "
                         "give the batch metadata as a .toml or .json file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BatchError(f"batch file {path} cannot be read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
        data: Any = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except UnicodeDecodeError as exc:
        raise BatchError(f"batch file {path} is not UTF-8 text: save it as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BatchError(f"batch file {path} is not valid TOML: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise BatchError(f"batch file {path} is not valid JSON: {exc.msg} "
                         f"(line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise BatchError(f"batch file {path}: the top level must be a table of keys, "
                         f"not a {type(data).__name__}")
    return data


def _check(data: dict[str, Any], errors: ErrorCollector) -> None:
    for key in data:
        if key not in _KNOWN_KEYS:
            errors.add(f"`{key}` is not a batch key; known keys: {', '.join(_KNOWN_KEYS)} "
                       "(caps and settings to override go in the [overrides] table, with "
                       "reason and approved_by)")
    for key in _TEXT_KEYS:
        value = data.get(key)
        if value is None:
            errors.add(f"`{key}` is missing: add {key} = \"...\"")
        elif not isinstance(value, str):
            errors.add(f"`{key}` must be text in quotes, not {type(value).__name__}")
        elif not value.strip():
            errors.add(f"`{key}` is empty: fill it in")
    statutes = data.get("authorised_statutes")
    if statutes is None:
        errors.add('`authorised_statutes` is missing: add authorised_statutes = '
                   '["8 U.S.C. 1253(a)(1)"] listing every statute rows may cite')
    elif (not isinstance(statutes, list) or not statutes
          or not all(isinstance(s, str) and s.strip() for s in statutes)):
        errors.add("`authorised_statutes` must be a non-empty list of statute citations "
                   'in quotes, e.g. ["8 U.S.C. 1253(a)(1)"]')
    certified = data.get("certified")
    if certified is None:
        errors.add("`certified` is missing: the batch is not certified, so no row can be "
                   "answered; add certified = true once the certification is signed")
    elif not isinstance(certified, bool):
        errors.add("`certified` must be true or false (without quotes)")
    officers = data.get("certifying_officers")
    if officers is not None and (not isinstance(officers, list) or not all(
            isinstance(o, str) and o.strip() for o in officers)):
        errors.add('`certifying_officers` must be a list of names in quotes, e.g. '
                   '["Officer A", "Officer B"]')
    certification = data.get("certification")
    if certification is None:
        errors.add("`certification` is missing: add the certification text the requesting "
                   "official signed")
    elif not isinstance(certification, str) or not certification.strip():
        errors.add("`certification` must be the non-empty certification text in quotes")


def load_batch(path: Path) -> Batch:
    """Read and check a batch file (TOML or JSON); raise BatchError listing every problem."""
    data = _read(path)
    errors = ErrorCollector()
    _check(data, errors)
    errors.raise_if_any(BatchError, f"batch file {path} cannot be used")
    return Batch(
        batch_id=data["batch_id"].strip(),
        requesting_agency=data["requesting_agency"].strip(),
        requesting_official=data["requesting_official"].strip(),
        official_title=data["official_title"].strip(),
        reason=data["reason"].strip(),
        authorised_statutes=tuple(s.strip() for s in data["authorised_statutes"]),
        certified=data["certified"],
        certification=data["certification"].strip(),
        extra={k: v for k, v in data.items() if k in _OPTIONAL_KEYS},
    )


def name_key(text: str) -> str:
    """The form names in a batch's metadata (agencies, officials, the people who submit
    and approve) are compared in: case and spacing aside.

    >>> name_key(" U.S.  Immigration ") == name_key("u.s. immigration")
    True
    """
    return " ".join(text.split()).casefold()


def batch_key(batch_id: str) -> str:
    """The form batch ids are compared in: ``AbC`` and `` abc `` are one batch.

    Batch ids are stored as given; only comparisons (the ledger, the journal, the
    archive's folder names) use this key. The ledger backs it with a unique index on
    ``lower(trim(batch_id))`` (``disclose.ledger.models.batch_id_key``), which agrees with
    this key for ASCII ids on SQLite and PostgreSQL alike.

    >>> batch_key(" 2026-AbC ") == batch_key("2026-abc")
    True
    """
    return batch_id.strip().casefold()
