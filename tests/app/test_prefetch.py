"""The background prefetch of every run's AUC CIs (app/prefetch.py)."""

from __future__ import annotations

import json

from app.prefetch import PREFETCH_ENV, prefetch_fairness_cis
from fairmoe.scores import ScoreSet


def test_every_run_and_attribute_is_prefetched_with_the_same_numbers(runtime, assets_dir):
    prefetch = prefetch_fairness_cis(runtime)
    assert prefetch is not None
    prefetch.thread.join(300)
    assert not prefetch.thread.is_alive()
    for run in runtime.runs.values():
        assert {("auc", a) for a in run.scores.attrs} <= set(run.scores._cis), run.name
    run = runtime.runs[runtime.default_run]
    entry = next(e for e in json.loads((assets_dir / "runs.json").read_text())["runs"]
                 if e["name"] == run.name)  # fmt: skip
    fresh = ScoreSet.from_csv(assets_dir / entry["scores"], run.name)
    assert all(fresh.auc_ci(a) == run.scores.auc_ci(a) for a in run.scores.attrs)


def test_prefetch_can_be_turned_off(runtime, monkeypatch):
    monkeypatch.setenv(PREFETCH_ENV, "0")
    assert prefetch_fairness_cis(runtime) is None
