"""Lazy session configs (app/sessions.py): the same values as Gradio's eager ones, on read."""

from __future__ import annotations

import gradio as gr
import pytest
from gradio import state_holder

from app.sessions import GRADIO_VERSION, LazyConfigs, _session_init


@pytest.fixture(scope="module")
def demo(runtime):
    from app.ui import build_demo

    return build_demo(runtime)


def _eager(demo) -> dict:
    """What Gradio's own SessionState.__init__ computes."""
    cfg = demo.default_config
    return {k: cfg.config_for_block(k, [], v) for k, v in cfg.blocks.items() if k in demo.blocks}


def test_the_pinned_gradio_is_patched(demo):
    assert gr.__version__ == GRADIO_VERSION  # requirements.txt pins it; a new one needs a look
    assert state_holder.SessionState.__init__ is _session_init
    assert isinstance(state_holder.SessionState(demo).config_values, LazyConfigs)


def test_lazy_configs_equal_the_eager_ones(demo):
    want = _eager(demo)
    state = state_holder.SessionState(demo)
    lazy = state.config_values
    assert len(lazy) == len(want) and not dict.__len__(lazy)  # nothing computed yet
    some = sorted(want)[5]
    assert some in lazy and lazy[some] == want[some] and dict.__len__(lazy) == 1
    assert dict(lazy.items()) == want  # iteration (deep links) computes the rest
    assert list(state.components) == [c for c in want.values() if c]


def test_updates_write_to_this_session_only(demo):
    a, b = state_holder.SessionState(demo), state_holder.SessionState(demo)
    key = next(k for k, c in _eager(demo).items() if "props" in c and "value" in c["props"])
    a._update_value_in_config(key, "changed")
    assert a.config_values[key]["props"]["value"] == "changed"
    assert b.config_values[key]["props"]["value"] != "changed"
    with pytest.raises(KeyError):
        a.config_values[-1]  # noqa: B018
    assert a.config_values.get(-1) is None and -1 not in a.config_values
