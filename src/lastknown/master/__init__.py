"""The master: return records, one row per person per tax year filed."""

from lastknown.master.load import load_master, validate_master
from lastknown.master.schema import MASTER_COLUMNS

__all__ = ["MASTER_COLUMNS", "load_master", "validate_master"]
