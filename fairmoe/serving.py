"""Dynamic batching for serving: concurrent predictions share one forward pass.

A web server answers each request in its own thread. :class:`Batcher` puts a small queue in front
of a function of lists: one worker thread takes whatever requests are waiting (up to
``max_batch``), runs them as one call and hands each caller its own answer. Nothing waits for a
batch to fill: a lone request runs at once, and requests that arrive while a batch runs form the
next one, so a batch grows exactly when the model is the bottleneck.

:class:`BatchingPredictor` is that queue in front of :meth:`Predictor.predict_prepared`: decoding
and checking a scan stay in the caller's thread (in parallel, with the caller's errors), only the
model is batched.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from fairmoe.inference import Predictor, ScanInput

__all__ = ["DEFAULT_MAX_BATCH", "Batcher", "BatchingPredictor"]

T = TypeVar("T")
R = TypeVar("R")

# Past ~16 scans a batch of the shipped model gains little per scan on 2 cores, and a larger one
# would make the last request in it wait for all the others.
DEFAULT_MAX_BATCH = 16


class Batcher(Generic[T, R]):
    """``submit(item)`` blocks until ``fn([..., item, ...])`` has run; see the module docstring.

    ``fn`` takes a list of items and returns one answer per item, in order. An exception raised
    by ``fn`` is raised to every caller of that batch. ``sizes`` counts the batches run by size.
    """

    def __init__(
        self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.fn = fn
        self.max_batch = max_batch
        self.sizes: Counter[int] = Counter()  # bounded: at most max_batch keys
        self._pending: deque[tuple[T, Future]] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="fairmoe-batcher", daemon=True)
        self._worker.start()

    def submit(self, item: T) -> R:
        """The answer for ``item``, computed in a batch with whatever else is waiting."""
        return self.submit_async(item).result()

    def submit_async(self, item: T) -> Future:
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending.append((item, future))
            self._cond.notify()
        return future

    def close(self) -> None:
        """Stop the worker once the waiting requests are answered."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._worker.join()

    def _take(self) -> list[tuple[T, Future]] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if not self._pending:
                return None
            n = min(len(self._pending), self.max_batch)
            return [self._pending.popleft() for _ in range(n)]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            futures = [f for _, f in batch]
            self.sizes[len(batch)] += 1
            try:
                answers = list(self.fn([item for item, _ in batch]))
                if len(answers) != len(batch):
                    raise RuntimeError(f"batch of {len(batch)} got {len(answers)} answers")
            except BaseException as e:  # every caller of this batch gets the error
                for f in futures:
                    f.set_exception(e)
                continue
            for f, answer in zip(futures, answers, strict=True):
                f.set_result(answer)


class BatchingPredictor:
    """``predict(scan, note)`` as :meth:`Predictor.predict`, batched across calling threads."""

    def __init__(self, predictor: Predictor, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.predictor = predictor
        self.batcher: Batcher = Batcher(predictor.predict_prepared, max_batch=max_batch)

    def predict(self, scan: ScanInput | Any, note: str | None = None) -> dict[str, Any]:
        item = self.predictor.prepare(scan, note)  # InputError here, in the caller's thread
        return self.batcher.submit(item)

    @property
    def batch_sizes(self) -> Counter[int]:
        """Batches run so far, counted by size."""
        return self.batcher.sizes

    def close(self) -> None:
        self.batcher.close()
