"""Cheaper Gradio sessions: each session's copy of the page config is computed when it is read.

Gradio 6.31 gives every new session (each browser tab, each ``gradio_client.Client``) a
``SessionState`` whose ``config_values`` hold the config of every block of the page, computed
eagerly on the server's event loop: for this app's 200 blocks ~23 ms per session, in which no
other request is served. When 32 users arrive at once that is ~0.7 s before the last one is
even queued (``benchmarks/bench_load.py``: the first requests of a round were its slowest).
Those configs are read only for a block an event updates, or all of them for a deep link; here
they are computed on first read instead, with the same values (``tests/app/test_sessions.py``).

Only for the pinned Gradio version, whose ``SessionState.__init__`` this mirrors; any other
version keeps Gradio's own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from copy import copy
from typing import Any

import gradio as gr
from gradio import state_holder

__all__ = ["GRADIO_VERSION", "LazyConfigs", "lazy_session_configs"]

GRADIO_VERSION = "6.31.0"  # the version whose SessionState.__init__ is mirrored below


class LazyConfigs(dict):
    """``{block id: config}`` whose entries are computed on first read (or on iteration, in
    the blocks' order, as Gradio's eager dict)."""

    def __init__(self, blocks_config: Any, ids: Iterable[int]) -> None:
        super().__init__()
        self._blocks_config = blocks_config
        self._order = list(ids)
        self._pending = set(self._order)
        self._ordered = False

    def _compute(self, key: int) -> dict:
        self._pending.discard(key)
        value = self._blocks_config.config_for_block(key, [], self._blocks_config.blocks[key])
        super().__setitem__(key, value)
        return value

    def _fill(self) -> None:
        for key in [k for k in self._order if k in self._pending]:
            self._compute(key)
        if not self._ordered:  # entries read early were inserted first: restore the order
            known = set(self._order)
            first = [
                (k, dict.__getitem__(self, k)) for k in self._order if dict.__contains__(self, k)
            ]
            rest = [(k, v) for k, v in dict.items(self) if k not in known]
            dict.clear(self)
            dict.update(self, first + rest)
            self._ordered = True

    def __missing__(self, key: int) -> dict:
        if key not in self._pending:
            raise KeyError(key)
        return self._compute(key)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or super().__contains__(key)

    def __setitem__(self, key: int, value: dict) -> None:
        self._pending.discard(key)
        super().__setitem__(key, value)

    def __len__(self) -> int:
        return super().__len__() + len(self._pending)

    def __iter__(self) -> Iterator[int]:
        self._fill()
        return super().__iter__()

    def get(self, key: int, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 (self.get would recurse)

    def keys(self):  # type: ignore[override]
        self._fill()
        return super().keys()

    def values(self):  # type: ignore[override]
        self._fill()
        return super().values()

    def items(self):  # type: ignore[override]
        self._fill()
        return super().items()


def _session_init(self: Any, blocks: Any) -> None:
    """gradio 6.31.0's ``SessionState.__init__`` with ``config_values`` computed on read."""
    self.blocks_config = copy(blocks.default_config)
    self.config_values = LazyConfigs(
        self.blocks_config, [k for k in self.blocks_config.blocks if k in blocks.blocks]
    )
    self.state_data = {}
    self._state_ttl = {}
    self.is_closed = False
    self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600


def lazy_session_configs() -> bool:
    """Install the lazy session configs; False (Gradio's own kept) for another Gradio."""
    if gr.__version__ != GRADIO_VERSION:
        return False
    state_holder.SessionState.__init__ = _session_init  # type: ignore[method-assign]
    return True
