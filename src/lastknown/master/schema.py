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
