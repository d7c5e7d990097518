"""The disclosure officer's pages: the queue of batches and one review page per batch,
where the officer approves (the release happens in the request) or denies with a reason.

The per-comparison weights of each sampled match and its rival are drawn as inline SVG
bars computed here (:func:`weight_bars`): no script, and nothing the page's
Content-Security-Policy would block (no inline ``style``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from lastknown.errors import InputError, NotFoundError, PolicyError
from lastknown.service.api import batches as api
from lastknown.service.errors import without_paths
from lastknown.service.pages import render
from lastknown.service.roles import Principal, Role, allow

router = APIRouter(prefix="/review")
Officer = Annotated[Principal, Depends(allow(Role.OFFICER))]
#: Width in pixels of half a weight bar (weights run left of the axis when negative).
HALF = 110
OUTCOMES = {"M": "matched: the address would be disclosed",
            "N": "no match: no taxpayer fits",
            "A": "ambiguous: two or more taxpayers too close to call",
            "U": "unconfirmed: a name fits but no return confirms the supplied address",
            "P": "no return in the requested tax periods"}


def weight_bars(weights: dict[str, float], scale: float) -> list[dict[str, Any]]:
    """One bar per comparison: where it starts and how wide it is, around an axis at
    :data:`HALF` pixels; ``scale`` is the largest absolute weight drawn.

    >>> weight_bars({"surname": 4.0, "dob": -2.0}, 4.0)[1]
    {'name': 'dob', 'weight': -2.0, 'x': 55, 'width': 55, 'positive': False}
    """
    bars = []
    for name, weight in weights.items():
        width = round(min(abs(weight) / scale, 1.0) * HALF) if scale else 0
        bars.append({"name": name, "weight": weight, "x": HALF if weight >= 0 else HALF - width,
                     "width": width, "positive": weight >= 0})
    return bars


def _with_bars(review: dict[str, Any]) -> dict[str, Any]:
    weights = [abs(w) for row in review["sample"] for c in row["candidates"]
               for w in c["weights"].values()]
    scale = max(weights, default=0.0)
    for row in review["sample"]:
        for candidate in row["candidates"]:
            candidate["bars"] = weight_bars(candidate["weights"], scale)
    return review


@router.get("", name="review_queue")
async def queue(request: Request, user: Officer) -> Response:
    rows = await run_in_threadpool(api.list_views, request, user)
    return render(request, "review_queue.html", {
        "held": [r for r in rows if r["status"] == "held"],
        "preparing": [r for r in rows if r["status"] in ("queued", "running", "failed")],
        "decided": [r for r in rows if r["status"] in ("released", "denied")]})


def _review_context(request: Request, user: Principal, batch_id: str) -> dict[str, Any]:
    from lastknown.workflow import review

    shown = api.batch_view(request, user, batch_id)
    found = None
    if shown["status"] in ("held", "released", "denied"):
        try:
            found = _with_bars(review(batch_id, request.app.state.settings.deployment)
                               .as_dict())
        except NotFoundError:  # decided before the review was kept (settled by recovery)
            found = None
    return {"b": shown, "r": found, "outcomes": OUTCOMES, "half": HALF}


@router.get("/{batch_id}", name="review_page")
async def review_page(request: Request, user: Officer, batch_id: api.BatchId) -> Response:
    context = await run_in_threadpool(_review_context, request, user, batch_id)
    request.state.access_detail = f"reviewed batch {context['b']['batch_id']}"
    return render(request, "review.html", {**context, "problem": None})


async def _refused(request: Request, user: Officer, batch_id: str, error: Exception,
                   status: int) -> Response:
    context = await run_in_threadpool(_review_context, request, user, batch_id)
    return render(request, "review.html", {**context, "problem": without_paths(str(error))},
                  status_code=status)


@router.post("/{batch_id}/approve", name="review_approve")
async def approve(request: Request, user: Officer, batch_id: api.BatchId) -> Response:
    try:
        await run_in_threadpool(api.approve, request, user, batch_id)
    except PolicyError as error:  # one's own submission, a cap, already decided
        return await _refused(request, user, batch_id, error, 409)
    return RedirectResponse(f"/review/{batch_id}", status_code=303)


@router.post("/{batch_id}/deny", name="review_deny")
async def deny(request: Request, user: Officer, batch_id: api.BatchId,
               reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    try:
        await run_in_threadpool(api.deny, request, user, batch_id, reason)
    except PolicyError as error:
        return await _refused(request, user, batch_id, error, 409)
    except InputError as error:  # no reason given
        if isinstance(error, NotFoundError):
            raise
        return await _refused(request, user, batch_id, error, 400)
    return RedirectResponse(f"/review/{batch_id}", status_code=303)
