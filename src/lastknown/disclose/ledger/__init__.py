"""The disclosure ledger: append-only, hash-chained, on SQLite or PostgreSQL.

>>> ledger = open_ledger("sqlite:///:memory:")
>>> report = ledger.verify(record=False)
>>> report.ok
True

See docs/LEDGER.md for how the chain works and how to verify it.
"""

from lastknown.disclose.ledger.chain import GENESIS_HASH
from lastknown.disclose.ledger.store import (
    EntryRef,
    Ledger,
    LedgerWriter,
    batch_key,
    open_ledger,
)

__all__ = ["GENESIS_HASH", "EntryRef", "Ledger", "LedgerWriter", "batch_key",
           "open_ledger"]
