"""The JSON API under ``/api``: the same operations as the pages (OpenAPI at
``/openapi.json``). Errors have one shape (:mod:`lastknown.service.errors`)."""

from __future__ import annotations

from fastapi import APIRouter

from lastknown.service.api import admin, auditor, session

router = APIRouter(prefix="/api")
for _module in (session, admin, auditor):
    router.include_router(_module.router)
