"""``lastknown serve --demo``: a private demo deployment with one user per role.

Everything lives in a per-user folder (:func:`demo_folder`, under the user's data
directory, never the working directory): its own ledger, archive, anchor file and app
database, so demo users never enter a real deployment. Seeding is idempotent.

>>> [u.username for u in DEMO_USERS][:3]
['submitter', 'submitter2', 'officer']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from pwdlib import PasswordHash

from lastknown.config import Deployment, default_dirs
from lastknown.disclose.ledger import open_ledger
from lastknown.service import accounts
from lastknown.service import db as t
from lastknown.service.db import AppDB
from lastknown.service.roles import Role

#: The one password of every demo user (printed by ``serve --demo``; demo only).
DEMO_PASSWORD = "demo-password"
DEMO_AGENCY = "U.S. Immigration and Customs Enforcement"
DEMO_STATUTES = ("8 U.S.C. 1253(a)(1)", "8 U.S.C. 1326", "8 U.S.C. 1324")
SECOND_AGENCY = "U.S. Marshals Service"
SECOND_STATUTES = ("18 U.S.C. 1073",)


@dataclass(frozen=True)
class DemoUser:
    username: str
    display_name: str
    role: Role
    agency: str | None = None


DEMO_USERS = (
    DemoUser("submitter", "Dana Example (ICE analyst)", Role.SUBMITTER, DEMO_AGENCY),
    DemoUser("submitter2", "Sam Sample (USMS analyst)", Role.SUBMITTER, SECOND_AGENCY),
    DemoUser("officer", "Olive Officer (disclosure officer)", Role.OFFICER),
    DemoUser("officer2", "Omar Other (disclosure officer)", Role.OFFICER),
    DemoUser("auditor", "Ada Auditor", Role.AUDITOR),
    DemoUser("admin", "Alex Admin", Role.ADMIN),
)


def demo_folder() -> Path:
    """Where the demo deployment lives: ``<user data dir>/service-demo``."""
    return default_dirs()[1] / "service-demo"


def demo_deployment(folder: Path) -> Deployment:
    """The demo's own deployment (ledger, archive, anchors inside ``folder``)."""
    return Deployment(ledger=str(folder / "ledger.sqlite"), archive=folder / "archive",
                      anchors=folder / "anchors.jsonl", source="--demo")


def seed(db: AppDB, hasher: PasswordHash, deployment: Deployment) -> None:
    """Create the demo agencies and users (those missing) and an empty ledger."""
    deployment.archive.mkdir(parents=True, exist_ok=True)
    open_ledger(deployment.ledger, create=True).close()
    known = {a["name"] for a in accounts.list_agencies(db)}
    for name, statutes in ((DEMO_AGENCY, DEMO_STATUTES), (SECOND_AGENCY, SECOND_STATUTES)):
        if name not in known:
            accounts.create_agency(db, "demo-seed", name, list(statutes),
                                   {"max_rows_per_batch": 5_000})
    with db.begin() as conn:
        existing = set(conn.execute(sa.select(t.users.c.username)).scalars())
    for user in DEMO_USERS:
        if user.username not in existing:
            accounts.create_user(db, hasher, "demo-seed", username=user.username,
                                 display_name=user.display_name, role=user.role,
                                 password=DEMO_PASSWORD, agency=user.agency)


def login_help(url: str, folder: Path) -> str:
    """What ``serve --demo`` prints: where the data is and how to sign in."""
    users = "\n".join(f"  {u.username:<11} {u.role.value:<9} {u.display_name}"
                      for u in DEMO_USERS)
    return (f"Demo deployment in {folder} (delete the folder to start afresh).\n"
            f"Open {url}/login and sign in as one of (password: {DEMO_PASSWORD}):\n{users}")
