"""app.views: comparisons across runs and the expert load, checked against the scores files."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app import plots, views
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
    points = views.tradeoff_points(list(runtime.runs.values()), "race", "DPD", DEFAULT)
    sweep = [p for p in points if p["kind"] == "sweep"]
    assert sorted(p["scale"] for p in sweep) == [1.0, 10.0]
    default = next(p for p in sweep if p["scale"] == 1.0)
    assert default["x"] == pytest.approx(fairness(runtime, DEFAULT, "race", 0.5)["dpd"])
    assert default["y"] == pytest.approx(fairness(runtime, DEFAULT, "race", 0.5)["auc"])
    # CLIP is a reference point: the mean over its seeds, with their std as the error bar
    clip = next(p for p in points if p["kind"] == "reference")
    aucs = [fairness(runtime, n, "race", 0.5)["auc"] for n in clip["runs"]]
    assert clip["series"].startswith("CLIP") and clip["seeds"] == len(aucs) == 2
    assert clip["y"] == pytest.approx(np.mean(aucs))
    assert clip["y_std"] == pytest.approx(np.std(aucs, ddof=1))
    loaded = [p for p in points if p["kind"] == "loaded"]
    assert [p["runs"] for p in loaded] == [[DEFAULT]]
    fig = plots.tradeoff(points, "DPD", "race")
    assert any(t.marker.symbol == "star" for t in fig.data)  # the loaded run stands out
    assert any(a.text == "better" for a in fig.layout.annotations)
    _, _, attrs, rows = default_scores(assets_dir)
    ss = runtime.run(DEFAULT).scores
    fig = views.load_view(ss, "race")
    # by gate weight when the scores have gate columns (the patch count hides unequal gates)
    col = "gate_e" if ss.gate_loads is not None else "load_e"
    assert fig.layout.yaxis.title.text.startswith("mean gate" if col == "gate_e" else "mean share")
    loads = np.array([[float(r[f"{col}{e}"]) for e in range(10)] for r in rows])
    white = attrs["race"] == 2
    bars = {t.name: t for t in fig.data}
    x = [i for i, label in enumerate(bars["expert 0"].x) if label.startswith("White")][0]
    assert [bars[f"expert {e}"].y[x] for e in range(10)] == pytest.approx(loads[white].mean(axis=0))
    clip_fig = views.load_view(runtime.run("clip-race-tiny-s0").scores, "race")
    assert "no load_e" in clip_fig.layout.annotations[0].text


def test_menu_labels_are_distinct(runtime):
    runs = list(runtime.runs.values())
    labels = views.menu_labels(runs)
    assert len(set(labels.values())) == len(runs)
    twins = [r for r in runs if sum(o.label == r.label for o in runs) > 1]
    assert all(labels[r.name] != r.label for r in twins)  # only duplicates get more words


def test_comparison_panels_split_by_direction(runtime):
    rows, table = views.comparison(list(runtime.runs.values()), "race")
    fig = plots.model_comparison(rows, views.COMPARE_METRICS, "race")
    axes = {t.name: t.yaxis for t in fig.data}
    assert axes["AUC"] == axes["ES-AUC"] != axes["DPD"] == axes["DEOdds"]
    titles = [a.text for a in fig.layout.annotations]
    assert any("Higher is better" in t for t in titles)
    assert any("Lower is better" in t for t in titles)
