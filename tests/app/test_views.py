"""app.views: comparisons across runs and the expert load, checked against the scores files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app import views
from app.callbacks.fairness_tab import fairness
from tests.app.oracle import DEFAULT, default_scores, read_scores


def test_comparison_mean_and_std_over_seeds(runtime, assets_dir):
    rows, table = views.comparison(list(runtime.runs.values()), "race")
    clip = next(r for r in rows if r["family"] == "CLIP [tiny]")
    aucs = []
    for seed in (0, 1):
        y, s, _, _ = read_scores(assets_dir / "scores" / f"clip-race-tiny-s{seed}.scores.csv")
        aucs.append(roc_auc_score(y, s))
    assert clip["seeds"] == 2
    assert clip["AUC"]["mean"] == pytest.approx(np.mean(aucs))
    assert clip["AUC"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    assert f"{np.mean(aucs):.3f} ± {np.std(aucs, ddof=1):.3f}" in table
    assert not any("x10" in r["family"] for r in rows)  # the sweep is shown separately
    gender_rows, _ = views.comparison(list(runtime.runs.values()), "gender")
    # nothing was trained for gender: only CLIP, which ignores the attribute, stands in
    assert [r["family"] for r in gender_rows] == ["CLIP [tiny]"]


def test_tradeoff_and_expert_load(runtime, assets_dir):
    points = views.tradeoff_points(list(runtime.runs.values()), "race", "DPD")
    assert sorted(p["scale"] for p in points) == [1.0, 10.0]
    default = next(p for p in points if p["scale"] == 1.0)
    assert default["x"] == pytest.approx(fairness(runtime, DEFAULT, "race", 0.5)["dpd"])
    assert default["y"] == pytest.approx(fairness(runtime, DEFAULT, "race", 0.5)["auc"])
    _, _, attrs, rows = default_scores(assets_dir)
    fig = views.load_view(runtime.run(DEFAULT).scores, "race")
    loads = np.array([[float(r[f"load_e{e}"]) for e in range(10)] for r in rows])
    white = attrs["race"] == 2
    bars = {t.name: t for t in fig.data}
    x = [i for i, label in enumerate(bars["expert 0"].x) if label.startswith("White")][0]
    assert [bars[f"expert {e}"].y[x] for e in range(10)] == pytest.approx(loads[white].mean(axis=0))
    clip_fig = views.load_view(runtime.run("clip-race-tiny-s0").scores, "race")
    assert "no load_e" in clip_fig.layout.annotations[0].text
