"""USPS reference values shared by validation and matching."""

from __future__ import annotations

#: USPS two-letter codes: the states, DC, territories and military post codes.
STATE_CODES: frozenset[str] = frozenset(
    """AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV
    NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY
    PR GU VI AS MP FM MH PW AA AE AP""".split()
)


def state_codes_sql() -> str:
    """The state codes as a SQL list literal, e.g. ``('AK', 'AL', ...)``."""
    return "(" + ", ".join(f"'{s}'" for s in sorted(STATE_CODES)) + ")"
