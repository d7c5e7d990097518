"""A submission: the submitter's upload and form become a *prepare* job.

A submission's files go in ``<files>/uploads/<id>/`` (owner-only): the request file as
uploaded, ``batch.json`` (the batch metadata of DESIGN.md, the agency filled in by the
server) and ``policy.toml`` (the deployment's policy with the agency's statutes and caps
laid over it, so the batch is judged by the caps in force when it was submitted). The
job (:func:`prepare_job`) runs :func:`lastknown.workflow.prepare`; the request file is
deleted once the batch is held (its rows are in the held tables), or, when the job failed,
``failed_input_days`` after it failed (30 by default; the job can be retried until then).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lastknown.errors import ConflictError, InputError
from lastknown.service import db as t
from lastknown.service.batches import key
from lastknown.service.jobs.queue import inputs_removed_after_failure
from lastknown.service.jobs.store import JobRecord, jobs

if TYPE_CHECKING:
    from lastknown.config import Deployment
    from lastknown.disclose.policy import Policy
    from lastknown.pipeline import EngineChoice
    from lastknown.service.db import AppDB
    from lastknown.service.jobs import JobQueue
    from lastknown.service.settings import ServiceSettings

#: The job function of a submitted batch (run by the embedded worker or `lastknown worker`).
PREPARE_JOB = "lastknown.service.submission:prepare_job"
REQUEST_SUFFIXES = (".csv", ".xlsx", ".parquet")
BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, kw_only=True)
class BatchForm:
    """The batch metadata a submitter types (the agency comes from the signed-in user)."""

    batch_id: str
    requesting_official: str
    official_title: str
    reason: str
    statutes: tuple[str, ...]
    certification: str
    certified: bool

    def document(self, agency: str) -> dict[str, Any]:
        """The batch file's content (DESIGN.md, "Batch metadata").

        >>> BatchForm(batch_id="B-1", requesting_official="Dana", official_title="SAC",
        ...           reason="r", statutes=("8 U.S.C. 1326",), certification="c",
        ...           certified=True).document("ICE")["requesting_agency"]
        'ICE'
        """
        return {"batch_id": self.batch_id.strip(), "requesting_agency": agency,
                "requesting_official": self.requesting_official.strip(),
                "official_title": self.official_title.strip(), "reason": self.reason.strip(),
                "authorised_statutes": list(self.statutes), "certified": self.certified,
                "certification": self.certification.strip()}


def check_form(form: BatchForm, agency: dict[str, Any]) -> None:
    """InputError for a batch id unfit for a URL or a statute the agency may not cite."""
    if not BATCH_ID.match(form.batch_id.strip()):
        raise InputError("the batch id is 1 to 64 letters, digits, dots, dashes or "
                         "underscores, starting with a letter or digit, e.g. 2026-0142")
    allowed = set(agency["statutes"])
    if not form.statutes or not set(form.statutes) <= allowed:
        raise InputError("choose one or more of your agency's authorised statutes: "
                         + "; ".join(agency["statutes"]))


def policy_toml(policy: Policy) -> str:
    """A policy file saying what ``policy`` says (read back by ``load_policy``).

    >>> from lastknown.disclose.policy import Policy
    >>> print(policy_toml(Policy(statutes_by_agency={"ICE": ("8 U.S.C. 1326",)})))
    max_rows_per_batch = 10000
    max_rows_per_official_per_period = 25000
    period_days = 365
    recent_disclosure_days = 90
    single_operator_release = false
    [statutes_by_agency]
    "ICE" = ["8 U.S.C. 1326"]
    <BLANKLINE>
    """
    lines = [f"{name} = {getattr(policy, name)}" for name in (
        "max_rows_per_batch", "max_rows_per_official_per_period", "period_days",
        "recent_disclosure_days")]
    lines += ["single_operator_release = false", "[statutes_by_agency]"]
    lines += [f"{json.dumps(agency)} = {json.dumps(list(statutes))}"
              for agency, statutes in policy.statutes_by_agency.items()]
    return "\n".join(lines) + "\n"


def service_approval(db: AppDB, settings: ServiceSettings, agency: dict[str, Any],
                     policy: Policy) -> dict[str, Any]:
    """The batch's ``[overrides]`` approving the settings the service lays over the
    built-in policy (the agency's statutes and caps, the deployment's policy file).

    The library accepts a non-default policy setting only when the batch approves it,
    with a reason and an approver (:mod:`lastknown.disclose.settings`); in the service
    that approval is the administrator's, given on the agencies page and kept in the
    admin changes, so the approver named is the administrator who last set the
    agency (the ledger records it with the batch).
    """
    from lastknown.disclose.settings import changed_settings
    from lastknown.match.config import MatchConfig

    changed = changed_settings(policy, MatchConfig())
    if not changed:
        return {}
    c = t.admin_changes
    with db.begin() as conn:
        actor = conn.execute(sa.select(c.c.actor).where(
            c.c.object_type == "agency", c.c.object_key == agency["name"])
            .order_by(c.c.id.desc()).limit(1)).scalar()
    return {"overrides": {
        "reason": "the agency's authorised statutes and caps as set in the lastknown "
                  "service by its administrator (recorded in the admin changes)"
                  + (f" over the policy file {settings.policy.name}" if settings.policy else ""),
        "approved_by": f"{actor or 'the service administrator'} (service administrator)",
        **changed}}


def new_upload_dir(settings: ServiceSettings) -> Path:
    """A fresh owner-only folder for one submission's files."""
    folder = settings.files_dir / "uploads" / uuid.uuid4().hex
    folder.mkdir(mode=0o700, parents=True)
    return folder


def request_name(filename: str | None) -> str:
    """The name the request file is kept under: the upload's own name when it is plain,
    with one of :data:`REQUEST_SUFFIXES`.

    >>> request_name("Requests 2026.CSV"), request_name("../x.parquet")
    ('Requests_2026.csv', 'x.parquet')
    >>> request_name("r.exe")
    Traceback (most recent call last):
    lastknown.errors.InputError: the request file must be .csv, .xlsx or .parquet
    """
    base = Path((filename or "").replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    if suffix not in REQUEST_SUFFIXES:
        raise InputError("the request file must be .csv, .xlsx or .parquet")
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem).strip("._-")[:80] or "request"
    return stem + suffix


def batch_id_taken(queue: JobQueue, batch_id: str, deployment: Deployment) -> bool:
    """Whether a batch id was submitted before (by any agency) or prepared otherwise."""
    from lastknown.disclose.held import held_dir

    with queue.store.engine.connect() as conn:
        found = conn.execute(sa.select(jobs.c.id).where(
            sa.func.lower(jobs.c.batch_id) == key(batch_id)).limit(1)).first()
    return found is not None or held_dir(deployment.archive, batch_id).exists()


def submit(db: AppDB, settings: ServiceSettings, queue: JobQueue, *, agency: dict[str, Any],
           form: BatchForm, upload_dir: Path, request: Path, username: str) -> JobRecord:
    """Write the batch and policy files beside the stored request; queue its prepare job.

    ConflictError when the batch id was used before (a batch is answered once).
    """
    from lastknown.disclose.policy import load_policy
    from lastknown.request.batch import load_batch
    from lastknown.service.accounts import agency_policy
    from lastknown.workflow import PREPARE_STAGES

    if settings.master is None:
        raise InputError("this deployment has no master index configured ([service] "
                         "master); the operator must set it before batches can be answered")
    check_form(form, agency)
    policy = agency_policy(agency, load_policy(settings.policy))
    policy_path = upload_dir / "policy.toml"
    policy_path.write_text(policy_toml(policy), encoding="utf-8")
    batch_path = upload_dir / "batch.json"
    document = form.document(agency["name"]) | service_approval(db, settings, agency, policy)
    batch_path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    load_batch(batch_path)  # every problem with the metadata, now, on the form
    if batch_id_taken(queue, form.batch_id, settings.deployment):
        raise ConflictError(f"batch id {form.batch_id.strip()} has been used already: a batch "
                            "is answered once; give this request a new batch id")
    d = settings.deployment
    paths = {"request": request, "batch_path": batch_path, "master": settings.master,
             "policy": policy_path, "archive": d.archive, "anchors": d.anchors}
    kwargs = {k: str(v.absolute()) for k, v in paths.items()}  # any worker's cwd
    kwargs |= {"submitted_by": username, "ledger": d.ledger}
    return queue.submit("prepare", PREPARE_JOB, kwargs, batch_id=form.batch_id.strip(),
                        agency=agency["name"], submitted_by=username,
                        stages_total=len(PREPARE_STAGES))


@inputs_removed_after_failure("request")
def prepare_job(*, request: Path, batch_path: Path, master: Path, policy: Path,
                submitted_by: str, ledger: str, archive: Path, anchors: Path,
                engine: EngineChoice | None = None, on_stage: Any = None) -> None:
    """The job: :func:`lastknown.workflow.prepare` on the deployment named by the
    arguments, on the worker's ``engine`` (DuckDB when None). Idempotent: a batch already
    held and submitted by the same person (a run whose worker died after holding it) is
    success; the request file is then removed."""
    from lastknown.answer import same_person
    from lastknown.config import Deployment
    from lastknown.disclose import held
    from lastknown.pipeline import EngineChoice
    from lastknown.request.batch import load_batch
    from lastknown.workflow import prepare

    deployment = Deployment(ledger=ledger, archive=archive, anchors=anchors, source="service")
    batch_id = load_batch(batch_path).batch_id
    folder = held.held_dir(archive, batch_id)
    if (folder / held.STATE_JSON).is_file():
        state = held.read_state(folder)
        if not same_person(state.submitted_by, submitted_by):
            raise ConflictError(f"batch id {batch_id} was prepared for someone else; give "
                                "this request a new batch id")
    else:
        prepare(request, master=master, batch_path=batch_path, submitted_by=submitted_by,
                options=(engine or EngineChoice()).options(
                    deployment, policy=policy, operator=submitted_by),
                on_stage=on_stage)
    request.unlink(missing_ok=True)  # its rows are in the held tables now


def remove_upload(folder: Path) -> None:
    """Drop a submission's folder (a refused or partial upload)."""
    shutil.rmtree(folder, ignore_errors=True)
