"""Schemathesis fuzzes the OpenAPI as each role, as an agency system's API token and
anonymously: whatever it sends, the API answers without a server error, every error in
the one JSON shape, every success as the schema declares it, and each caller is refused
exactly the operations its role may not call, whatever the input.

(Schemathesis' own pytest plugin fails on this pytest version, so each operation's
Hypothesis strategy is run here by hand; derandomized, so a run is repeatable; a bounded
number of examples per operation keeps all six callers near a minute. It found that a
path id beyond 64 bits overflowed SQLite: ids are bounded now.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import schemathesis
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from lastknown.disclose.ledger import open_ledger
from lastknown.service import accounts, auth
from lastknown.service.app import create_app
from lastknown.service.db import open_app_db
from lastknown.service.roles import Role, route_rule
from service_helpers import USERS, deployment_in, seed, settings_for

CALLERS = ["admin", "auditor", "officer", "submitter", "token", "anonymous"]
EXAMPLES = {"admin": 20}  # the administrator may call most: more of its examples succeed
ERROR_KEYS = {"status", "code", "message"}


def _rules(app: object) -> dict[tuple[str, str], frozenset[Role] | None]:
    """(METHOD, path) -> the roles allowed (None: public)."""
    rules: dict[tuple[str, str], frozenset[Role] | None] = {}
    for context in iter_route_contexts(app.routes):  # type: ignore[attr-defined]
        if isinstance(context.original_route, APIRoute):
            rule = route_rule(context.original_route)
            assert rule is not None
            for method in context.methods or ():
                rules[(method, str(context.path))] = None if rule.public else rule.roles
    return rules


@pytest.mark.parametrize("caller", CALLERS)
def test_no_server_errors_and_refusals_by_role(caller: str, tmp_path: Path) -> None:
    config = settings_for(deployment_in(tmp_path), str(tmp_path / "app.sqlite"))
    open_ledger(config.deployment.ledger, create=True).close()
    db = open_app_db(config.app_db)
    seed(db, config)
    app = create_app(config, db=db)
    rules = _rules(app)
    role = Role.SUBMITTER if caller == "token" else Role(caller) if caller in USERS else None
    bearer = accounts.create_token(db, "test", username="submitter", label="fuzz")[0]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    seen: dict[str, set[int]] = {}

    def headers() -> dict[str, str]:
        if caller == "anonymous":
            return {}
        if caller == "token":
            return {"Authorization": f"Bearer {bearer}"}
        token = auth.start_session(db, config, list(USERS).index(caller) + 1)
        principal = auth.session_principal(db, token)
        assert principal is not None
        return {"Cookie": f"__Host-lk_session={token}",
                "X-CSRF-Token": principal.csrf_secret or ""}

    for operation in operations:
        if operation.path.endswith("/logout"):
            continue  # it would end the fuzzer's own session
        allowed = rules[(operation.method.upper(), operation.path)]
        refused = (None if allowed is None or role in allowed  # public, or this role's
                   else 401 if role is None else 403)
        codes = _fuzz(operation, headers, refused, EXAMPLES.get(caller, 10))
        seen[f"{operation.method.upper()} {operation.path}"] = codes
    answered = {label for label, codes in seen.items() if codes - {401, 403}}
    assert ("GET /api/users" in answered) == (caller == "admin")
    assert ("GET /api/access-log" in answered) == (caller == "auditor")
    assert ("GET /api/me" in answered) == (caller != "anonymous")
    assert ("GET /api/batches" in answered) == (caller in ("submitter", "token", "officer"))
    db.close()


def _fuzz(operation: schemathesis.APIOperation, headers: Callable[[], dict[str, str]],
          refused: int | None, examples: int) -> set[int]:
    """Fuzz one operation; the status codes seen. ``refused``: the status every call
    must get, whatever its input (401 anonymous, 403 a role not allowed)."""
    seen: set[int] = set()

    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(headers=headers())
        where = (case.method, case.path, response.status_code, response.text[:300])
        assert response.status_code < 500, where
        if response.status_code >= 400:
            assert response.headers["content-type"][0].startswith("application/json"), where
            error = response.json()["error"]
            assert set(error) == ERROR_KEYS and error["status"] == response.status_code
        else:
            case.validate_response(response, checks=[response_schema_conformance,
                                                     content_type_conformance])
        assert refused is None or response.status_code == refused, where
        seen.add(response.status_code)

    fuzz()
    return seen
