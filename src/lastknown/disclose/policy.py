"""Disclosure policy: what may be disclosed, how much, to whom, under which statutes.

The policy is a TOML file with documented defaults (below). Caps can be raised
for one batch only by an explicit ``[overrides]`` table in that batch's file,
with a reason and an approver; any non-default policy or matching setting needs
the same approval (:mod:`lastknown.disclose.settings`). The decision — defaults,
overrides, counts, every setting in force, the policy file's SHA-256 — is recorded
in the batch's ledger record. A batch not certified is refused, and the refusal
recorded, before any row is read (:func:`refuse_uncertified`).

What is disclosed is *not* a setting: :data:`DISCLOSED_FIELDS` is fixed here.

Defaults and why (see docs/LEDGER.md):

* ``max_rows_per_batch = 10_000`` — a certification says each row is an
  investigation the named officers are personally and directly engaged in;
  a court found one official certifying over a million implausible. Ten
  thousand is generous for one office's caseload and still reviewable.
* ``max_rows_per_official_per_period = 25_000`` over ``period_days = 365`` —
  stops splitting one implausible certification into many small batches.
* ``recent_disclosure_days = 90`` — a person disclosed to the same agency in
  the last 90 days is flagged in the summary (repeat requests stay visible).
* ``statutes_by_agency`` — only listed agencies may ask, only under their
  listed statutes; an agency not listed is refused.
* ``single_operator_release = true`` — ``lastknown process`` may prepare and release a
  batch in one run, its operator approving (today's contract). ``false`` puts a second
  person in front of every release: ``process --hold``, then ``release --approver``
  by someone else (:mod:`lastknown.workflow`). Making the path stricter needs no
  batch approval, so this setting is not a controlled one.

>>> policy = load_policy(None)
>>> policy.max_rows_per_batch
10000
>>> statute_key("8 usc § 1253 (a)(1)")
'8 U.S.C. 1253(A)(1)'
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from lastknown.disclose.settings import (
    SECTIONS,
    approved_settings,
    changed_settings,
    check_settings,
    settings_record,
)
from lastknown.errors import ConfigError, ErrorCollector, PolicyError
from lastknown.match.config import MatchConfig
from lastknown.request.batch import batch_key, name_key

if TYPE_CHECKING:
    from lastknown.disclose.ledger import Ledger

#: The only fields that ever leave the system for a matched row. Fixed in code on purpose:
#: employer, income, dependants or family are not disclosable by any setting.
DISCLOSED_FIELDS: tuple[str, ...] = ("street", "unit", "city", "state", "zip",
                                     "address_tax_year")
#: The authority every disclosure is made under.
LEGAL_AUTHORITY = "26 U.S.C. 6103(i)(2)"

DEFAULT_STATUTES_BY_AGENCY: Mapping[str, tuple[str, ...]] = {
    "U.S. Immigration and Customs Enforcement": (
        "8 U.S.C. 1253(a)(1)", "8 U.S.C. 1326", "8 U.S.C. 1324",
    ),
}
#: Caps a batch may override (with reason and approver, recorded in the ledger).
OVERRIDABLE_CAPS = ("max_rows_per_batch", "max_rows_per_official_per_period")


class BatchLike(Protocol):
    """What policy needs of a batch (``lastknown.request.batch.Batch`` fits)."""

    @property
    def batch_id(self) -> str: ...
    @property
    def requesting_agency(self) -> str: ...
    @property
    def requesting_official(self) -> str: ...
    @property
    def authorised_statutes(self) -> tuple[str, ...]: ...
    @property
    def certified(self) -> bool: ...
    @property
    def extra(self) -> dict[str, Any]: ...


def statute_key(text: str) -> str:
    """The spelling statutes are compared in (``8 USC 1253 (a)`` == ``8 U.S.C. 1253(a)``)."""
    key = text.upper().replace("§", " ")
    key = re.sub(r"\bU\.?\s*S\.?\s*C\b\.?", "U.S.C.", key)
    key = re.sub(r"\s+\(", "(", key)
    return re.sub(r"\s+", " ", key).strip()


#: Agencies are compared case- and spacing-insensitively.
agency_key = name_key


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The disclosure policy in force; every field has a documented default."""

    max_rows_per_batch: int = 10_000
    max_rows_per_official_per_period: int = 25_000
    period_days: int = 365
    recent_disclosure_days: int = 90
    single_operator_release: bool = True
    statutes_by_agency: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_STATUTES_BY_AGENCY))
    source: str = "built-in defaults"
    source_sha256: str = ""

    def statutes_for(self, agency: str) -> tuple[str, ...] | None:
        """The agency's allowed statutes, or None when the agency is not listed."""
        for name, statutes in self.statutes_by_agency.items():
            if agency_key(name) == agency_key(agency):
                return statutes
        return None


_INT_SETTINGS = ("max_rows_per_batch", "max_rows_per_official_per_period", "period_days",
                 "recent_disclosure_days")


def load_policy(path: Path | None) -> Policy:
    """Read a policy TOML file (None: the documented defaults); ConfigError lists every problem.

    >>> load_policy(None).recent_disclosure_days
    90
    """
    if path is None:
        return Policy()
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except OSError as exc:
        raise ConfigError(f"policy file {path} cannot be read: {exc.strerror}") from exc
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"policy file {path} is not valid UTF-8 TOML: {exc}") from exc
    errors = ErrorCollector()
    known = {f.name for f in fields(Policy)} - {"source", "source_sha256"}
    for key in sorted(set(data) - known):
        if key in ("disclosed_fields", "fields"):
            errors.add(f"`{key}` is not a setting: the disclosed fields are fixed in code "
                       f"({', '.join(DISCLOSED_FIELDS)}); remove it")
        else:
            errors.add(f"`{key}` is not a policy setting; known settings: "
                       f"{', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for key in _INT_SETTINGS:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                errors.add(f"`{key}` must be a whole number above 0, e.g. {key} = 1000")
            else:
                values[key] = value
    if "single_operator_release" in data:
        if not isinstance(data["single_operator_release"], bool):
            errors.add("`single_operator_release` must be true or false")
        else:
            values["single_operator_release"] = data["single_operator_release"]
    if "statutes_by_agency" in data:
        table = data["statutes_by_agency"]
        if not isinstance(table, dict) or not all(
            isinstance(v, list) and v and all(isinstance(s, str) and s.strip() for s in v)
            for v in table.values()
        ):
            errors.add('`[statutes_by_agency]` must map each agency to a non-empty list of '
                       'statutes, e.g. "U.S. Immigration and Customs Enforcement" = '
                       '["8 U.S.C. 1253(a)(1)"]')
        else:
            values["statutes_by_agency"] = {str(k): tuple(v) for k, v in table.items()}
    errors.raise_if_any(ConfigError, f"policy file {path} cannot be used")
    return Policy(**values, source=str(path), source_sha256=hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True, kw_only=True)
class PolicyDecision:
    """A batch the policy let through: the caps in force and every override used."""

    batch_id: str
    row_count: int
    official_rows_in_period: int
    caps: dict[str, int]
    overrides: dict[str, int]
    override_reason: str | None
    override_approved_by: str | None
    period_days: int
    recent_disclosure_days: int
    statutes_allowed: tuple[str, ...]
    policy_source: str
    policy_sha256: str
    disclosed_fields: tuple[str, ...] = DISCLOSED_FIELDS
    #: Every policy and matching setting in force and the non-default ones (approved).
    settings: dict[str, Any] = field(default_factory=dict)

    def as_summary(self) -> dict[str, Any]:
        """The decision as JSON-ready data (for summary.json and the batch record)."""
        return {
            "row_count": self.row_count,
            "official_rows_in_period": self.official_rows_in_period,
            "caps": dict(self.caps), "overrides": dict(self.overrides),
            "override_reason": self.override_reason,
            "override_approved_by": self.override_approved_by,
            "period_days": self.period_days,
            "recent_disclosure_days": self.recent_disclosure_days,
            "statutes_allowed": list(self.statutes_allowed),
            "policy_source": self.policy_source, "policy_sha256": self.policy_sha256,
            "disclosed_fields": list(self.disclosed_fields),
            "settings": self.settings,
        }


def _overrides(batch: BatchLike, errors: ErrorCollector, *, changed: Mapping[str, Any]
               ) -> tuple[dict[str, int], str | None, str | None]:
    table = batch.extra.get("overrides", {})
    if not isinstance(table, dict):
        errors.add("batch `overrides` must be a table: [overrides] max_rows_per_batch = ...")
        table = {}
    check_settings(changed, approved_settings(table, errors), errors)
    reason = table.get("reason")
    approver = table.get("approved_by")
    caps: dict[str, int] = {}
    for key, value in table.items():
        if key in ("reason", "approved_by", *SECTIONS):
            continue
        if key not in OVERRIDABLE_CAPS:
            errors.add(f"batch override `{key}` is not allowed; only "
                       f"{', '.join(OVERRIDABLE_CAPS)} can be overridden")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            errors.add(f"batch override `{key}` must be a whole number above 0")
        else:
            caps[key] = value
    needs_approval = bool(caps or changed or any(k in table for k in SECTIONS))
    if needs_approval and not (isinstance(reason, str) and reason.strip()):
        errors.add('a batch override needs a reason: add reason = "..." under [overrides]')
    if needs_approval and not (isinstance(approver, str) and approver.strip()):
        errors.add('a batch override needs an approver: add approved_by = "name, title" '
                   "under [overrides]")
    return (caps, reason.strip() if isinstance(reason, str) else None,
            approver.strip() if isinstance(approver, str) else None)


def official_rows_in_period(ledger: Ledger, *, agency: str, official: str,
                            since: datetime) -> int:
    """Rows in batches the official certified for the agency since ``since`` (from the ledger)."""
    with ledger.connect() as conn:
        return _official_rows(conn, agency=agency, official=official, since=since)


def _official_rows(conn: sa.Connection, *, agency: str, official: str, since: datetime) -> int:
    from lastknown.disclose.ledger.models import batches

    query = sa.select(batches.c.agency, batches.c.requesting_official,
                      sa.func.sum(batches.c.rows_total)).where(
        batches.c.received_at >= since).group_by(batches.c.agency, batches.c.requesting_official)
    return sum(int(total or 0) for a, o, total in conn.execute(query).all()
               if agency_key(a) == agency_key(agency) and agency_key(o) == agency_key(official))


def refuse_uncertified(batch: BatchLike, *, ledger: Ledger, user: str | None = None) -> None:
    """Record the refusal of a batch that is not certified and raise PolicyError (exit 3).

    The law requires the certification before any row may be answered, so ``process``
    calls this before reading the request.

    >>> from lastknown.disclose.ledger import open_ledger
    >>> refuse_uncertified(batch, ledger=open_ledger("sqlite:///:memory:"))  # doctest: +SKIP
    """
    if batch.certified:
        return
    ledger.audit(event_type="batch_rejected", success=False, obj=f"batch {batch.batch_id}",
                 detail=f"not certified (certified = false); agency {batch.requesting_agency}; "
                        f"official {batch.requesting_official}", user=user)
    raise PolicyError(f"batch {batch.batch_id} is not certified (certified = false): no row "
                      "can be answered, and the refusal is recorded in the ledger; once the "
                      "certification is signed, set certified = true and give the batch a new "
                      "batch_id")


def check_policy(policy: Policy, batch: BatchLike, *, row_count: int, ledger: Ledger,
                 now: datetime | None = None, user: str | None = None,
                 match_config: MatchConfig | None = None) -> PolicyDecision:
    """Let a batch through, or record its refusal and raise PolicyError saying how to proceed.

    ``match_config`` is the matching configuration the run will use: any non-default
    setting of it, or of ``policy``, must be approved in the batch's ``[overrides]``.

    >>> from lastknown.disclose.ledger import open_ledger
    >>> decision = check_policy(load_policy(None), batch, row_count=500,
    ...                         ledger=open_ledger("ledger.sqlite"))  # doctest: +SKIP
    """
    now = now or datetime.now(UTC)
    match_config = match_config or MatchConfig()
    errors = ErrorCollector()
    refuse_uncertified(batch, ledger=ledger, user=user)
    if ledger.batch_recorded(batch.batch_id):
        errors.add(f"batch_id {batch.batch_id!r} is already in the ledger: a batch is answered "
                   "once; give a new request a new batch_id")
    allowed = policy.statutes_for(batch.requesting_agency)
    if allowed is None:
        errors.add(f"agency {batch.requesting_agency!r} has no statutes in the policy "
                   f"({policy.source}): add it under [statutes_by_agency] if it may ask")
        allowed = ()
    else:
        allowed_keys = {statute_key(s) for s in allowed}
        for statute in batch.authorised_statutes:
            if statute_key(statute) not in allowed_keys:
                errors.add(f"statute {statute!r} is not allowed for {batch.requesting_agency} by "
                           f"the policy ({policy.source}); allowed: {', '.join(allowed)}")
    overrides, reason, approver = _overrides(
        batch, errors, changed=changed_settings(policy, match_config))
    caps = {name: overrides.get(name, int(getattr(policy, name))) for name in OVERRIDABLE_CAPS}
    if row_count > caps["max_rows_per_batch"]:
        errors.add(f"the batch has {row_count:,} rows, over max_rows_per_batch = "
                   f"{caps['max_rows_per_batch']:,}; to run it anyway add to the batch file "
                   f"[overrides] max_rows_per_batch = {row_count}, reason = \"...\", "
                   "approved_by = \"...\" (recorded in the ledger)")
    used = official_rows_in_period(ledger, agency=batch.requesting_agency,
                                   official=batch.requesting_official,
                                   since=now - timedelta(days=policy.period_days))
    cap = caps["max_rows_per_official_per_period"]
    if used + row_count > cap:
        errors.add(f"the certifying official already has {used:,} rows in the last "
                   f"{policy.period_days} days; with this batch's {row_count:,} that is over "
                   f"max_rows_per_official_per_period = {cap:,}; to run it anyway add "
                   f"[overrides] max_rows_per_official_per_period = {used + row_count}, "
                   "reason = \"...\", approved_by = \"...\" (recorded in the ledger)")
    if errors:
        ledger.audit(event_type="batch_rejected", success=False, obj=f"batch {batch.batch_id}",
                     detail="; ".join(errors.problems), user=user)
        errors.raise_if_any(PolicyError, f"batch {batch.batch_id} waits: the disclosure policy "
                                         "refuses it")
    ledger.audit(event_type="batch_received", success=True, obj=f"batch {batch.batch_id}",
                 detail=f"{row_count} rows; overrides {overrides or 'none'}", user=user)
    return PolicyDecision(
        batch_id=batch.batch_id, row_count=row_count, official_rows_in_period=used, caps=caps,
        overrides=overrides, override_reason=reason, override_approved_by=approver,
        period_days=policy.period_days, recent_disclosure_days=policy.recent_disclosure_days,
        statutes_allowed=tuple(allowed), policy_source=policy.source,
        policy_sha256=policy.source_sha256, settings=settings_record(policy, match_config),
    )


def recheck_in_transaction(conn: sa.Connection, decision: PolicyDecision, batch: BatchLike, *,
                           now: datetime | None = None) -> None:
    """Re-check the ledger-dependent rules inside the ledger's write transaction.

    :func:`check_policy` runs early (before matching) and says what to do; this is the
    authoritative check, run by :func:`lastknown.disclose.publish.publish` on the
    write-locked connection just before the batch is recorded, so no other batch can
    commit between the check and the commit. It re-checks that the decision is this
    batch's, that the batch id is not in the ledger (compared case-insensitively) and
    that the official's rows in the period plus this batch stay within the caps the
    decision carries (overrides included). Raises :class:`PolicyError` (exit 3).
    """
    from lastknown.disclose.ledger.store import batch_recorded_in

    now = now or datetime.now(UTC)
    errors = ErrorCollector()
    if batch_key(decision.batch_id) != batch_key(batch.batch_id):
        errors.add(f"the policy decision is for batch {decision.batch_id!r}, not "
                   f"{batch.batch_id!r}; run the batch again")
    if batch_recorded_in(conn, batch.batch_id):
        errors.add(f"batch_id {batch.batch_id!r} was recorded in the ledger by another run "
                   "meanwhile: a batch is answered once; give a new request a new batch_id")
    row_count = decision.row_count
    if row_count > decision.caps["max_rows_per_batch"]:
        errors.add(f"the batch has {row_count:,} rows, over max_rows_per_batch = "
                   f"{decision.caps['max_rows_per_batch']:,}")
    used = _official_rows(conn, agency=batch.requesting_agency,
                          official=batch.requesting_official,
                          since=now - timedelta(days=decision.period_days))
    cap = decision.caps["max_rows_per_official_per_period"]
    if used + row_count > cap:
        errors.add(f"the certifying official now has {used:,} rows in the last "
                   f"{decision.period_days} days (other batches committed meanwhile); with this "
                   f"batch's {row_count:,} that is over max_rows_per_official_per_period = "
                   f"{cap:,}; to run it anyway add [overrides] "
                   f"max_rows_per_official_per_period = {used + row_count}, reason = \"...\", "
                   "approved_by = \"...\" (recorded in the ledger)")
    errors.raise_if_any(PolicyError, f"batch {batch.batch_id} waits: at commit the disclosure "
                                     "policy refuses it; nothing was disclosed")
