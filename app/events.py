"""How the app's events run: a queue slot per kind of model work, the queue's limits, and each
user's session.

Predictions, explanations and cohorts each have their own slot, so a 20 ms prediction never waits
behind a Captum explanation or a cohort: predictions run through a dynamic batcher
(:class:`fairmoe.serving.BatchingPredictor`), explanations on their own copy of the model in a
child process (:mod:`fairmoe.worker`), where Captum's Python does not compete with the server's. The
fairness views read cached scores and run ``QUEUE_CONCURRENCY`` at once. ``FAIRMOE_SERVING=legacy``
restores the old layout (one shared slot, no batching) so benchmarks can compare the two in one
run. A session's files and per-user state go when it ends (:func:`end_session`).
"""

from __future__ import annotations

import os
from typing import Any

import gradio as gr

from app.privacy import SessionFiles
from fairmoe.serving import DEFAULT_MAX_BATCH

__all__ = [
    "COHORT_QUEUE",
    "EXPLAIN_PROCESSES",
    "EXPLAIN_PROCESSES_ENV",
    "EXPLAIN_QUEUE",
    "LIVE",
    "MODEL_CONCURRENCY",
    "MODEL_EVENT",
    "MODEL_QUEUE",
    "PREDICT_CONCURRENCY",
    "PREDICT_QUEUE",
    "QUEUE_CONCURRENCY",
    "QUEUE_MAX_SIZE",
    "SERVING_ENV",
    "end_session",
    "explain_concurrency",
    "explain_processes",
    "is_legacy",
    "model_events",
    "session",
]

SERVING_ENV = "FAIRMOE_SERVING"  # "legacy": today's single slot without batching (benchmarks)
# How many child processes compute explanations (fairmoe.worker); 0: a model copy in the server.
EXPLAIN_PROCESSES_ENV = "FAIRMOE_EXPLAIN_PROCESSES"
EXPLAIN_PROCESSES = 1


def is_legacy() -> bool:
    """Whether the server runs the old layout: one shared model slot, no batching."""
    return os.environ.get(SERVING_ENV, "").strip().lower() == "legacy"


def explain_processes() -> int:
    """``FAIRMOE_EXPLAIN_PROCESSES`` (default 1): explanation processes; 0 keeps the explanation
    model in the server's process. A value that is not a whole number >= 0 is refused at start."""
    raw = os.environ.get(EXPLAIN_PROCESSES_ENV, "").strip()
    if not raw:
        return EXPLAIN_PROCESSES
    if not raw.isdigit():
        raise ValueError(f"{EXPLAIN_PROCESSES_ENV} must be a whole number >= 0, got {raw!r}")
    return int(raw)


def explain_concurrency() -> int:
    """Explanation events at once: one per process plus one, so that Gradio's reading of the
    next request and writing of the last answer overlap the processes' work; one with the model
    in the server's process (Captum's hooks on it must not meet)."""
    n = explain_processes()
    return n + 1 if n else 1


# Legacy layout: predict/explain/cohort share ONE slot, since two model calls at once on 2 cores
# only halve each other's speed and Captum's layer hooks would catch a concurrent prediction.
MODEL_QUEUE = "model"
MODEL_CONCURRENCY = 1
MODEL_EVENT: dict[str, Any] = {
    "concurrency_id": MODEL_QUEUE,
    "concurrency_limit": MODEL_CONCURRENCY,
}
# Batched layout. Up to a batch's worth of predictions wait in the batcher at once: their
# handlers only decode the scan and block on the batch, and the batcher runs one forward pass.
PREDICT_QUEUE = "predict"
PREDICT_CONCURRENCY = DEFAULT_MAX_BATCH
# Explanations run in child processes (explain_concurrency()), or one at a time in the server.
EXPLAIN_QUEUE = "explain"
# A cohort scores in batches on its own slot, so it neither waits behind nor blocks predictions.
COHORT_QUEUE = "cohort"


def model_events(legacy: bool | None = None) -> dict[str, dict[str, Any]]:
    """Queue settings of the ``predict``, ``explain`` and ``cohort`` events."""
    if is_legacy() if legacy is None else legacy:
        return {kind: MODEL_EVENT for kind in ("predict", "explain", "cohort")}
    return {
        "predict": {"concurrency_id": PREDICT_QUEUE, "concurrency_limit": PREDICT_CONCURRENCY},
        "explain": {"concurrency_id": EXPLAIN_QUEUE, "concurrency_limit": explain_concurrency()},
        "cohort": {"concurrency_id": COHORT_QUEUE, "concurrency_limit": 1},
    }


# Everything else (fairness views from cached scores) is numpy in a few ms: a few at once is fine.
QUEUE_CONCURRENCY = 4
# Beyond this many waiting events new requests are refused with "queue full" instead of piling
# up behind a long cohort job.
QUEUE_MAX_SIZE = 64
# A private view that follows a control as it moves: no spinner, only the latest value counts.
LIVE: dict[str, Any] = {
    "api_visibility": "private",
    "show_progress": "hidden",
    "trigger_mode": "always_last",
}


def session(request: gr.Request | None) -> str | None:
    """The session a request belongs to (None outside a browser or client session)."""
    return getattr(request, "session_hash", None)


def end_session(files: SessionFiles, request: gr.Request) -> None:
    """Unload (tab closed, API client gone): delete the session's files and per-user state."""
    sid = session(request)
    files.end(sid)
    # Gradio would keep a closed session's gr.State an hour in case the tab comes back, and its
    # per-session copy of the page config until 10,000 newer sessions push it out. The state holds
    # the last explanation (note included): it goes now, and the session with it.
    app = getattr(getattr(request, "request", None), "app", None)
    holder = getattr(app, "state_holder", None)
    if sid and holder is not None:
        holder.delete_state(sid)
        with holder.lock:
            holder.session_data.pop(sid, None)
            holder.time_last_used.pop(sid, None)
