"""app.callbacks.fairness_tab: /fairness, thresholds and strategies, checked against independent
oracles (sklearn's roc_auc_score, fairlearn's disparity functions, fairmoe.metrics on the scores
file read with the csv module)."""

from __future__ import annotations

import gradio as gr
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.metrics import roc_auc_score

from app import views
from app.callbacks import fairness_tab as cb
from fairmoe.metrics import choose_thresholds, evaluate
from fairmoe.scores import ScoreSet
from tests.app.oracle import DEFAULT, message


@pytest.mark.parametrize("attr", ["race", "gender"])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_fairness_matches_oracles(runtime, oracle, attr, threshold):
    y, s, attrs, _ = oracle
    out = cb.fairness(runtime, DEFAULT, attr, threshold)
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    known = attrs[attr] >= 0
    pred = (s >= threshold).astype(int)
    assert out["dpd"] == pytest.approx(
        demographic_parity_difference(y[known], pred[known], sensitive_features=attrs[attr][known])
    )
    assert out["deodds"] == pytest.approx(
        equalized_odds_difference(y[known], pred[known], sensitive_features=attrs[attr][known])
    )
    rep = evaluate(y, s, attrs, threshold=threshold)["attributes"][attr]
    assert out["es_auc"] == pytest.approx(rep["es_auc"])
    for g, ref in zip(out["groups"], rep["groups"], strict=True):
        assert (g["name"], g["n"], g["tpr"], g["fpr"]) == (
            ref["name"],
            ref["n"],
            ref["tpr"],
            ref["fpr"],
        )
        m = attrs[attr] == ref["code"]
        assert g["n"] == int(m.sum())
        if g["auc"] is not None:
            assert g["auc"] == pytest.approx(roc_auc_score(y[m], s[m]))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nope", "race", 0.5), "unknown model"),
        ((DEFAULT, "age", 0.5), "unknown attribute"),
        ((DEFAULT, "race", 1.5), "between 0 and 1"),
        ((DEFAULT, "race", "abc"), "must be a number"),
    ],
)
def test_fairness_bad_arguments(runtime, args, words):
    with pytest.raises(gr.Error) as exc:
        cb.fairness(runtime, *args)
    assert words in message(exc)


def test_fairness_update_per_group_thresholds(runtime, oracle):
    y, s, attrs, _ = oracle
    ss = runtime.run(DEFAULT).scores
    t = [0.45, 0.55, 0.6]
    summary, groups_md, roc, confusion, rates = cb.fairness_update(ss, "race", "per group", 0.5, *t)
    ref = evaluate(y, s, attrs, threshold={"race": t})["attributes"]["race"]
    view = views.fairness_view(ss, "race", {"race": t})
    assert view.metrics["dpd"] == pytest.approx(ref["dpd"])
    assert f"{ref['dpd']:.3f}" in summary
    for g in ref["groups"]:
        assert f"| {g['name']} | {g['n']} |" in groups_md
    points = [tr for tr in roc.data if tr.mode == "markers"]
    present = [g for g in ref["groups"] if g["n"]]
    assert [(p.x[0], p.y[0]) for p in points] == [(g["fpr"], g["tpr"]) for g in present]
    assert all(f.layout.height for f in (roc, confusion, rates))


def test_confidence_intervals_on_demand(runtime):
    ss = ScoreSet.from_csv(runtime.assets / "scores" / f"{DEFAULT}.scores.csv")
    before = cb.fairness_update(ss, "race", "single", 0.42)[0]
    assert "computed on demand" in before
    after = cb.fairness_update(ss, "race", "single", 0.42, compute_ci=True)[0]
    assert "computed on demand" not in after
    assert after.count("[") >= 4  # AUC, ES-AUC, DPD, DEOdds intervals
    assert ss.cached_threshold_ci("race", 0.42) is not None
    assert ss.cached_threshold_ci("race", 0.43) is None  # a slider move does not bootstrap


@pytest.mark.parametrize("strategy", ["single", "group", "demographic_parity", "equal_opportunity"])
def test_strategy_buttons_call_choose_thresholds(runtime, oracle, strategy):
    y, s, attrs, _ = oracle
    ss = runtime.run(DEFAULT).scores
    mode, single, *groups, msg = cb.fairness_strategy(ss, "race", strategy, 4)
    ref = choose_thresholds(y, s, attrs["race"], strategy=strategy, cost_ratio=4, n_groups=3)
    assert groups[:3] == pytest.approx(ref.tolist())
    assert mode == ("single" if strategy == "single" else "per group")
    assert single == pytest.approx(ref[0])
    assert "cost ratio 4" in msg
    with pytest.raises(gr.Error, match="positive"):
        cb.fairness_strategy(ss, "race", strategy, -1)


def test_fairness_select_updates_sliders(runtime):
    out = cb.fairness_select(runtime, DEFAULT, "gender", "DEOdds")
    sliders = out[: cb.MAX_GROUPS]
    assert [u.get("visible") for u in sliders] == [True, True, False]
    assert sliders[0]["label"].endswith("Female")
    assert all(f.layout.height for f in out[cb.MAX_GROUPS :] if hasattr(f, "layout"))
