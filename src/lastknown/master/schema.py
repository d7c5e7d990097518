"""The master contract (see DESIGN.md, "Master")."""

from __future__ import annotations

#: column -> DuckDB type family expected ("string", "int", "date").
MASTER_COLUMNS: dict[str, str] = {
    "tin": "string",
    "tax_year": "int",
    "filing_status": "string",
    "role": "string",
    "first_name": "string",
    "middle_name": "string",
    "last_name": "string",
    "name_suffix": "string",
    "street": "string",
    "unit": "string",
    "city": "string",
    "state": "string",
    "zip": "string",
    "received_date": "date",
}

FILING_STATUSES = ("single", "mfj", "mfs", "hoh", "qss")
ROLES = ("primary", "secondary")
#: A master is refused when more than this share of its rows would be quarantined.
MAX_QUARANTINED_SHARE = 0.5
#: The quarantine file written next to an index (``INDEX/quarantine.parquet``).
QUARANTINE_FILE = "quarantine.parquet"
