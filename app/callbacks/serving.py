"""What serves the model behind the app's handlers: a batching front for predictions, a copy of
the model for explanations in child processes (:mod:`fairmoe.worker`; ``--explain-processes 0``
keeps the copy in the server's process, see :mod:`app.config`), and each session's caches of
explanations and whole-model maps.

One :class:`Serving` per loaded runtime (:func:`serving`), held by the runtime itself: made on
first use, closed by :func:`shutdown`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.privacy import SESSION_MAX_AGE_S
from app.runtime import Runtime
from fairmoe.inference import EXPLAIN_STEPS, MAX_FILE_BYTES, Predictor
from fairmoe.serving import BatchingPredictor
from fairmoe.worker import ProcessPredictor, fingerprint

__all__ = [
    "ExplanationCache",
    "Serving",
    "forget_session",
    "serving",
    "shutdown",
]

PER_SESSION = 8  # explanations kept per session: a user flips between a few cases
MAX_SESSIONS = 256  # sessions with cached explanations; the least recently used go first


class ExplanationCache:
    """Explanations per session, keyed by the scan's bytes (sha256) and the note.

    Per session, not shared: an explanation carries the user's note, which must go when the
    session goes (:meth:`drop`) and never reach another user. Entries older than the session's
    maximum age are not served.
    """

    def __init__(self, per_session: int = PER_SESSION, max_sessions: int = MAX_SESSIONS) -> None:
        self.per_session = per_session
        self.max_sessions = max_sessions
        self._data: OrderedDict[str, OrderedDict[str, tuple[float, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    @staticmethod
    def key(path: str | Path, note: str | None) -> str | None:
        """sha256 of the file and the note; None for a file too large to be a scan."""
        path = Path(path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                return None  # refused by the Predictor anyway: not worth reading twice
            digest = hashlib.sha256(path.read_bytes())
        except OSError:
            return None
        digest.update(b"\0" + (note or "").encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get(self, sid: str | None, key: str | None) -> Any:
        if sid is None or key is None:
            return None
        with self._lock:
            entries = self._data.get(sid)
            hit = entries.get(key) if entries else None
            if hit is None or time.time() - hit[0] > SESSION_MAX_AGE_S:
                return None
            entries.move_to_end(key)
            self._data.move_to_end(sid)
            self.hits += 1
            return hit[1]

    def put(self, sid: str | None, key: str | None, value: Any) -> None:
        if sid is None or key is None:
            return
        with self._lock:
            entries = self._data.setdefault(sid, OrderedDict())
            self._data.move_to_end(sid)
            entries[key] = (time.time(), value)
            while len(entries) > self.per_session:
                entries.popitem(last=False)
            while len(self._data) > self.max_sessions:
                self._data.popitem(last=False)

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._data.pop(sid, None)

    def sessions(self) -> int:
        with self._lock:
            return len(self._data)


@dataclass
class Serving:
    """How one runtime's model is served (see the module docstring)."""

    predictor: Predictor  # predictions and cohorts (thread-safe: inference only, no hooks)
    explainer: Predictor | ProcessPredictor  # explanations: a copy of the model
    batched: BatchingPredictor  # concurrent predictions share one forward pass
    explain_steps: int = EXPLAIN_STEPS
    cache: ExplanationCache = field(default_factory=ExplanationCache)
    maps_cache: ExplanationCache = field(default_factory=ExplanationCache)  # keyed by scan only

    @property
    def predict(self) -> Callable[..., dict[str, Any]]:
        return self.batched.predict

    def explain(self, scan: Any, note: str | None) -> dict[str, Any]:
        """Expert and note attributions; the whole-model and occlusion maps are /model_maps'
        (a clinician sees the experts' maps first, and an API client pays only for what it
        asks)."""
        return self.explainer.explain(scan, note, n_steps=self.explain_steps, model_maps=False)

    def model_maps(self, scan: Any) -> dict[str, Any]:
        return self.explainer.model_maps(scan, n_steps=self.explain_steps)

    def close(self) -> None:
        """Stop the batcher and the explanation processes (the server has stopped)."""
        self.batched.close()
        if isinstance(self.explainer, ProcessPredictor):
            self.explainer.close()


def _make(rt: Runtime, explainer: Predictor | ProcessPredictor | None = None) -> Serving:
    # The copy costs one more set of weights (14 MB for the shipped model; the child process is
    # ~0.9 GB resident, much of it torch's shared libraries) and buys explanations that never
    # hold up, or hook into, a prediction.
    processes = rt.config.explain_processes
    if explainer is None and processes == 0:
        explainer = rt.predictor.clone()
    elif explainer is None:
        explainer = ProcessPredictor(
            rt.checkpoint,
            processes=processes,
            threads=rt.config.threads,
            expected=fingerprint(rt.predictor.model),
        )
    return Serving(rt.predictor, explainer, BatchingPredictor(rt.predictor))


def serving(rt: Runtime, explainer: ProcessPredictor | None = None) -> Serving:
    """The runtime's Serving, made on first use (with ``explainer``, already started, when
    given); it lives as long as the runtime (the app)."""
    with rt._serving_lock:
        if rt._serving is None:
            rt._serving = _make(rt, explainer)
        elif explainer is not None:
            explainer.close()  # made already: the spare processes are not needed
        return rt._serving


def shutdown(rt: Runtime) -> None:
    """Close the runtime's Serving (its explanation processes end with it); the next
    :func:`serving` makes a new one."""
    with rt._serving_lock:
        closing, rt._serving = rt._serving, None
    if closing is not None:
        closing.close()


def forget_session(rt: Runtime, sid: str | None) -> None:
    """The session ended: drop its cached explanations (they hold its notes)."""
    if (s := rt._serving) is not None:
        s.cache.drop(sid)
        s.maps_cache.drop(sid)
