"""The master: return records, one row per person per tax year filed."""

from lastknown.master.load import MasterReport, load_master, validate_master
from lastknown.master.schema import MASTER_COLUMNS, QUARANTINE_FILE

__all__ = ["MASTER_COLUMNS", "QUARANTINE_FILE", "MasterReport", "load_master",
           "validate_master"]
