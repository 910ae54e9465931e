"""``GET /healthz``: whether this server can answer every kind of request now.

``python -m app`` opens its port only after the model, the shipped CIs and every explanation
process are loaded (:func:`start_serving`), so a server that answers is ready; the route says so
with what it holds, for a supervisor or a load balancer to poll.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.callbacks.serving import serving
from app.runtime import Runtime
from fairmoe.worker import ProcessPredictor, fingerprint

__all__ = ["health", "healthz_route", "start_serving"]


def start_serving(rt: Runtime, explainer: ProcessPredictor | None = None) -> None:
    """Make the runtime's Serving now, with ``explainer`` when given (from
    :func:`app.startup.prestart_explainer`), and wait for its explanation processes to load the model
    (fairmoe.worker.WorkerError if one cannot, or if one loaded other weights)."""
    made = serving(rt, explainer).explainer
    if isinstance(made, ProcessPredictor):
        made.start(expected=fingerprint(rt.predictor.model))


def health(rt: Runtime) -> dict[str, Any]:
    """The readiness document: ready only when the explanation processes are loaded too."""
    srv = rt._serving
    explainer = None if srv is None else srv.explainer
    if isinstance(explainer, ProcessPredictor):
        ready, total = explainer.ready, len(explainer.children)
    else:  # explanations in the server's own process (or not made yet: made on first use)
        total = rt.config.explain_processes
        ready = total if srv is not None else 0
    return {
        "ready": srv is not None and ready == total,
        "model": rt.model_name,
        "explain_processes": {"ready": ready, "total": total},
        "runs": len(rt.runs),
        "checked": rt.predictor.detector is not None,
    }


def healthz_route(rt: Runtime) -> Route:
    """The ``/healthz`` route for ``demo.launch(app_kwargs={"routes": [...]})``: 200 when
    ready, 503 while not."""

    async def endpoint(_: Request) -> JSONResponse:
        doc = health(rt)
        return JSONResponse(doc, status_code=200 if doc["ready"] else 503)

    return Route("/healthz", endpoint, methods=["GET"])
