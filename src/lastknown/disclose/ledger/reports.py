"""Reports from the ledger: the yearly per-agency figures and one taxpayer's disclosures.

``report`` gives the 26 U.S.C. 6103(p)(3)(C) figures per agency for a calendar
year (UTC): requests (batches), rows, disclosures, distinct taxpayers and
rejections by reason. ``taxpayer_disclosures`` lists every disclosure of one TIN
for the tax agency's own staff; the TIN is never written to an audit event or
log (the event names a hash of it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from lastknown.disclose.ledger import models
from lastknown.disclose.ledger.store import Ledger
from lastknown.errors import InputError, LedgerError

#: Rejection reasons in DESIGN order; the CSV always has one column for each.
REASON_CODES = (
    "MISSING_NAME", "PLACEHOLDER_NAME", "MISSING_ADDRESS", "PLACEHOLDER_ADDRESS",
    "INVALID_STATE", "INVALID_ZIP", "MISSING_REMOVAL_ORDER_DATE", "INVALID_REMOVAL_ORDER_DATE",
    "MISSING_CASE_NUMBER", "MISSING_STATUTE", "STATUTE_NOT_AUTHORISED", "MISSING_TAX_PERIOD",
    "INVALID_TAX_PERIOD", "INVALID_TIN", "DUPLICATE_ROW_ID", "MISSING_ROW_ID",
)


@dataclass(frozen=True, kw_only=True)
class AgencyYearReport:
    """One agency's figures for one calendar year."""

    year: int
    agency: str
    requests: int
    rows: int
    disclosures: int
    distinct_taxpayers: int
    rows_rejected: int
    rejections_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TaxpayerDisclosure:
    """One disclosure of a taxpayer's address: to whom, when, under which authority."""

    disclosed_at: datetime
    recipient: str
    requesting_official: str
    batch_id: str
    request_row_id: str
    legal_authority: str
    request_statute: str | None
    address_tax_year: int
    fields: tuple[str, ...]
    entry_seq: int


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def report(ledger: Ledger, *, year: int, record: bool = True, user: str | None = None,
           origin: str | None = None) -> list[AgencyYearReport]:
    """Per-agency figures for ``year``, sorted by agency (``user``/``origin`` name who asked
    in the recorded event; default: this process's operator and host).

    >>> from lastknown.disclose.ledger import open_ledger
    >>> report(open_ledger("sqlite:///:memory:"), year=2026, record=False)
    []
    """
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    b, d = models.batches, models.disclosures
    requests: dict[str, int] = defaultdict(int)
    rows: dict[str, int] = defaultdict(int)
    rejected: dict[str, int] = defaultdict(int)
    reasons: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with ledger.connect() as conn:
        for agency, total, n_rejected, by_reason in conn.execute(
            sa.select(b.c.agency, b.c.rows_total, b.c.rows_rejected, b.c.rejections_by_reason)
            .where(b.c.finished_at >= start, b.c.finished_at < end)
        ):
            requests[agency] += 1
            rows[agency] += int(total)
            rejected[agency] += int(n_rejected)
            for code, count in json.loads(by_reason).items():
                reasons[agency][code] += int(count)
        disclosed = {str(r): (int(n), int(t)) for r, n, t in conn.execute(
            sa.select(d.c.recipient, sa.func.count(), sa.func.count(sa.distinct(d.c.tin)))
            .where(d.c.disclosed_at >= start, d.c.disclosed_at < end).group_by(d.c.recipient))}
    result = [
        AgencyYearReport(year=year, agency=agency, requests=requests.get(agency, 0),
                         rows=rows.get(agency, 0), disclosures=disclosed.get(agency, (0, 0))[0],
                         distinct_taxpayers=disclosed.get(agency, (0, 0))[1],
                         rows_rejected=rejected.get(agency, 0),
                         rejections_by_reason=dict(sorted(reasons[agency].items())))
        for agency in sorted(set(requests) | set(disclosed))
    ]
    if record:
        ledger.audit(event_type="report_run", success=True, obj=f"report {year}",
                     detail=f"{len(result)} agencies", user=user, origin=origin)
    return result


def _reason_columns(rows: list[AgencyYearReport]) -> list[str]:
    extra = sorted({c for r in rows for c in r.rejections_by_reason} - set(REASON_CODES))
    return [*REASON_CODES, *extra]


def write_report_csv(rows: list[AgencyYearReport], path: Path) -> None:
    """Write the yearly report as CSV: one row per agency, one column per rejection reason.

    >>> write_report_csv(report(ledger, year=2026), Path("report-2026.csv"))  # doctest: +SKIP
    """
    codes = _reason_columns(rows)
    header = ["year", "agency", "requests", "rows", "disclosures", "distinct_taxpayers",
              "rows_rejected", *(f"rejected_{c}" for c in codes)]
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for r in rows:
                writer.writerow([r.year, r.agency, r.requests, r.rows, r.disclosures,
                                 r.distinct_taxpayers, r.rows_rejected,
                                 *(r.rejections_by_reason.get(c, 0) for c in codes)])
    except OSError as exc:
        raise LedgerError(f"report CSV {path} cannot be written: {exc.strerror}; "
                          "choose another --csv path") from exc


def _render(table: Table) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def render_report(rows: list[AgencyYearReport]) -> str:
    """The yearly report as a readable text table."""
    if not rows:
        return "No batches or disclosures recorded in that year."
    table = Table(title=f"Disclosures under 26 U.S.C. 6103(i)(2) in {rows[0].year}")
    for name in ("Agency", "Requests", "Rows", "Disclosures", "Distinct taxpayers",
                 "Rejected rows", "Rejections by reason"):
        table.add_column(name, justify="left" if name.startswith(("Agency", "Rejections"))
                         else "right")
    for r in rows:
        reasons = ", ".join(f"{c} {n:,}" for c, n in r.rejections_by_reason.items()) or "-"
        table.add_row(r.agency, f"{r.requests:,}", f"{r.rows:,}", f"{r.disclosures:,}",
                      f"{r.distinct_taxpayers:,}", f"{r.rows_rejected:,}", reasons)
    return _render(table)


def taxpayer_disclosures(ledger: Ledger, tin: str, *, record: bool = True,
                         user: str | None = None,
                         origin: str | None = None) -> list[TaxpayerDisclosure]:
    """Every disclosure of one TIN, oldest first (for the tax agency's own staff); the
    recorded event names ``user``/``origin`` (default: this process's operator and host).

    >>> taxpayer_disclosures(open_ledger("ledger.sqlite"), "123456789")  # doctest: +SKIP
    """
    digits = re.sub(r"[\s-]", "", tin)
    if not re.fullmatch(r"\d{9}", digits):
        raise InputError("the TIN must be 9 digits (dashes and spaces are ignored)")
    b, d = models.batches, models.disclosures
    query = (sa.select(d, b.c.requesting_official)
             .select_from(d.join(b, b.c.batch_id == d.c.batch_id))
             .where(d.c.tin == digits).order_by(d.c.entry_seq))
    with ledger.connect() as conn:
        found = [TaxpayerDisclosure(
            disclosed_at=_utc(r.disclosed_at), recipient=r.recipient,
            requesting_official=r.requesting_official, batch_id=r.batch_id,
            request_row_id=r.request_row_id, legal_authority=r.legal_authority,
            request_statute=r.request_statute, address_tax_year=int(r.address_tax_year),
            fields=tuple(json.loads(r.fields)), entry_seq=int(r.entry_seq),
        ) for r in conn.execute(query)]
    if record:
        tin_ref = hashlib.sha256(digits.encode()).hexdigest()[:16]
        ledger.audit(event_type="taxpayer_report_run", success=True,
                     obj=f"taxpayer sha256:{tin_ref}", detail=f"{len(found)} disclosures",
                     user=user, origin=origin)
    return found


def render_taxpayer(rows: list[TaxpayerDisclosure]) -> str:
    """One taxpayer's disclosures as a readable text table (the TIN itself is not shown)."""
    if not rows:
        return "No disclosure of this TIN is recorded in the ledger."
    table = Table(title=f"{len(rows)} disclosure(s) of this taxpayer's address")
    for name in ("When (UTC)", "To", "Certified by", "Batch", "Row", "Authority", "Statute",
                 "Tax year", "Ledger entry"):
        table.add_column(name)
    for r in rows:
        table.add_row(r.disclosed_at.strftime("%Y-%m-%d %H:%M:%S"), r.recipient,
                      r.requesting_official, r.batch_id, r.request_row_id, r.legal_authority,
                      r.request_statute or "-", str(r.address_tax_year), f"#{r.entry_seq}")
    return _render(table)
