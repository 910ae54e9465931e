"""How the app's events run: a queue slot per kind of model work, the queue's limits, and each
user's session.

Predictions, explanations and cohorts each have their own slot, so a 20 ms prediction never waits
behind a Captum explanation or a cohort: predictions run through a dynamic batcher
(:class:`fairmoe.serving.BatchingPredictor`), explanations on their own copy of the model in a
child process (:mod:`fairmoe.worker`), where Captum's Python does not compete with the server's. The
fairness views read cached scores and run ``QUEUE_CONCURRENCY`` at once. How many explanations
run at once follows the server's :class:`~app.config.ServerConfig`. A session's files and
per-user state go when it ends (:func:`end_session`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.config import ServerConfig
from app.privacy import SessionFiles
from fairmoe.serving import DEFAULT_MAX_BATCH

__all__ = [
    "COHORT_QUEUE",
    "EXPLAIN_QUEUE",
    "LIVE",
    "PREDICT_CONCURRENCY",
    "PREDICT_QUEUE",
    "QUEUE_CONCURRENCY",
    "QUEUE_MAX_SIZE",
    "end_session",
    "model_events",
    "session",
]

# Up to a batch's worth of predictions wait in the batcher at once: their handlers only decode
# the scan and block on the batch, and the batcher runs one forward pass.
PREDICT_QUEUE = "predict"
PREDICT_CONCURRENCY = DEFAULT_MAX_BATCH
# Explanations run in child processes (ServerConfig.explain_concurrency), or one at a time in
# the server.
EXPLAIN_QUEUE = "explain"
# A cohort scores in batches on its own slot, so it neither waits behind nor blocks predictions.
COHORT_QUEUE = "cohort"


def model_events(config: ServerConfig) -> dict[str, dict[str, Any]]:
    """Queue settings of the ``predict``, ``explain`` and ``cohort`` events."""
    explain = config.explain_concurrency
    return {
        "predict": {"concurrency_id": PREDICT_QUEUE, "concurrency_limit": PREDICT_CONCURRENCY},
        "explain": {"concurrency_id": EXPLAIN_QUEUE, "concurrency_limit": explain},
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
