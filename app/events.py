"""How the app's events run: one shared model slot, the queue's limits, and each user's session.

Model events (predict, explain, cohort) share ONE slot (``MODEL_EVENT``); the fairness views read
cached scores and run ``QUEUE_CONCURRENCY`` at once. A session's files and per-user state go when
it ends (:func:`end_session`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.privacy import SessionFiles

__all__ = [
    "LIVE",
    "MODEL_CONCURRENCY",
    "MODEL_EVENT",
    "MODEL_QUEUE",
    "QUEUE_CONCURRENCY",
    "QUEUE_MAX_SIZE",
    "end_session",
    "session",
]

# The model runs on 2 CPU cores with torch using both: two model calls at once would only halve
# each other's speed and double peak memory, so predict/explain/cohort share ONE slot.
MODEL_QUEUE = "model"
MODEL_CONCURRENCY = 1
MODEL_EVENT: dict[str, Any] = {
    "concurrency_id": MODEL_QUEUE,
    "concurrency_limit": MODEL_CONCURRENCY,
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
