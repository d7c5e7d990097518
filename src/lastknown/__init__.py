"""lastknown: answer bulk last-known-address requests from tax return records.

Precise first, thorough, minimal and accountable. See README.md and
``../shared/DESIGN.md`` for the contracts.
"""

__version__ = "0.1.0"
