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
    summary, groups_md, roc, confusion, rates, reliability = cb.fairness_update(
        ss, "race", "per group", 0.5, *t
    )
    ref = evaluate(y, s, attrs, threshold={"race": t})["attributes"]["race"]
    view = views.fairness_view(ss, "race", {"race": t})
    assert view.metrics["dpd"] == pytest.approx(ref["dpd"])
    assert f"{ref['dpd']:.3f}" in summary
    for g in ref["groups"]:
        row = next(
            line for line in groups_md.splitlines() if f"| {g['name']}" in line.replace("**", "")
        )
        assert f" | {g['n']} | " in row
        if 0 < g["n"] < 30:
            assert "too small" in row
        if g["tpr"] is not None:
            assert f"| {g['tpr']:.0%}" in row  # the sensitivity column
        assert f"| {g['threshold']:.3f} |" in row
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
    update = cb.fairness_strategy(ss, "race", strategy, 4)
    mode, single, *groups, msg, chosen = update.outputs()
    assert chosen == cb.StrategyChoice(strategy, 4.0, tuple(groups[:3]))
    ref = choose_thresholds(y, s, attrs["race"], strategy=strategy, cost_ratio=4, n_groups=3)
    assert groups[:3] == [round(float(v), 3) for v in ref]  # shown rounded to 3 decimals
    assert mode == ("single" if strategy == "single" else "per group")
    assert single == round(float(ref[0]), 3)
    assert "cost ratio 4" in msg and "Overall accuracy" in msg
    assert "flag" in msg  # the flag rate (guardrails' flag_rate info)
    assert ("at deployment" in msg) == (strategy != "single")


@pytest.mark.parametrize("cost", [0, -1, float("nan"), "abc", None])
def test_invalid_cost_ratio_is_a_message_not_an_error(runtime, cost):
    ss = runtime.run(DEFAULT).scores
    *updates, msg, chosen = cb.fairness_strategy(ss, "race", "group", cost).outputs()
    assert chosen is None
    assert "positive number" in msg
    assert all(u == gr.update() for u in updates)  # the sliders stay as they were


def test_fairness_select_updates_sliders(runtime):
    out = cb.fairness_select(runtime, DEFAULT, "gender", "DEOdds")
    sliders = out[: cb.MAX_GROUPS]
    assert [u.get("visible") for u in sliders] == [True, True] + [False] * (cb.MAX_GROUPS - 2)
    assert sliders[0]["label"].endswith("Female")
    assert all(f.layout.height for f in out[cb.MAX_GROUPS :] if hasattr(f, "layout"))


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_fairness_warns_at_a_degenerate_operating_point(runtime, threshold):
    out = cb.fairness(runtime, DEFAULT, "race", threshold)
    codes = {w["code"] for w in out["warnings"]}
    assert "degenerate" in codes
    assert out["dpd"] == pytest.approx(0.0)  # why the banner is needed
    summary = cb.fairness_update(runtime.run(DEFAULT).scores, "race", "single", threshold)[0]
    assert "Degenerate operating point" in summary


def test_fairness_warns_on_small_groups(runtime):
    out = cb.fairness(runtime, DEFAULT, "race", 0.5)
    small = {w["group"] for w in out["warnings"] if w["code"] == "small_group"}
    expected = {g["name"] for g in out["groups"] if 0 < g["n"] < 30}
    assert expected and small == expected  # the test cohort is small: every group is flagged


def test_fairness_crossed_cells_sum_to_the_known_cases(runtime, oracle):
    y, s, attrs, _ = oracle
    out = cb.fairness(runtime, DEFAULT, "race*gender", 0.5)
    assert out["attribute"] == "race*gender"
    assert [g["name"] for g in out["groups"]][:2] == ["Asian & Female", "Asian & Male"]
    known = (attrs["race"] >= 0) & (attrs["gender"] >= 0)
    assert sum(g["n"] for g in out["groups"]) == int(known.sum())
    for g in out["groups"]:
        race, gender = g["name"].split(" & ")
        m = (attrs["race"] == ["Asian", "Black", "White"].index(race)) & (
            attrs["gender"] == ["Female", "Male"].index(gender)
        )
        assert g["n"] == int(m.sum()) and g["n_pos"] == int(y[m].sum())
    # every group carries the clinical rates and calibration
    assert {"ece", "fnr", "ppv", "npv", "citl", "reliability", "ci"} <= set(out["groups"][0])
    assert cb.fairness(runtime, DEFAULT, "gender*race", 0.5)["groups"] == out["groups"]


def test_sensitivity_preset_states_the_threshold_it_picked(runtime, oracle):
    y, s, _, _ = oracle
    t, text = cb.sensitivity_preset(runtime.run(DEFAULT).scores, 0.85)
    tpr = ((s >= t) & (y == 1)).sum() / (y == 1).sum()
    assert tpr >= 0.85 - 1e-9
    higher = s[(y == 1) & (s > t + 1e-3)]
    assert len(higher) / (y == 1).sum() < 0.85  # the highest such threshold (to 3 decimals)
    assert f"{t:.3f}" in text and "sensitivity 0.85" in text


def test_confidence_wording_uses_the_patient_group(runtime, oracle):
    y, s, attrs, _ = oracle
    ss = runtime.run(DEFAULT).scores
    said = "High model confidence."
    text = views.confidence_text(ss, {"race": 1}, 0.15, 0.5, said)
    m = (attrs["race"] == 1) & (s < 0.2)
    assert "Black patients" in text
    assert f"({int(y[m].sum())} of {int(m.sum())})" in text if m.any() else "No Black" in text
    contradicted = m.sum() >= 10 and y[m].mean() > 0.25
    assert text.startswith("**Not a confident") == bool(contradicted)
    everyone = views.confidence_text(ss, {}, 0.15, 0.5, said)
    low = s < 0.2
    assert f"({int(y[low].sum())} of {int(low.sum())})" in everyone if low.any() else everyone
