"""fairmoe.metrics against sklearn, fairlearn, hand-computed cases and a naive bootstrap loop."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score, roc_curve

from fairmoe import metrics as M
from fairmoe.schema import ATTRIBUTES

SEEDS = (0, 1, 2)


def make_data(seed: int, n: int = 600, *, ties: bool = False):
    """Scores with group-dependent shifts, realistic-ish group sizes and some unknown codes."""
    rng = np.random.default_rng(seed)
    attrs = {
        "race": rng.choice(3, n, p=[0.1, 0.15, 0.75]),
        "gender": rng.integers(0, 2, n),
        "ethnicity": rng.choice([-1, 0, 1], n, p=[0.03, 0.9, 0.07]),
        "language": rng.choice([-1, 0, 1, 2], n, p=[0.02, 0.9, 0.05, 0.03]),
    }
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(1.2 * (y - 0.5) + 0.3 * attrs["race"] - 0.3 + rng.normal(0, 1, n))))
    if ties:
        s = np.round(s, 1)
    return y, s, attrs


def fairlearn_oracle(y, pred, codes):
    """fairlearn's numbers on the members with a known code."""
    m = codes >= 0
    kw = {"sensitive_features": codes[m]}
    frame = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate, "sel": selection_rate},
        y_true=y[m],
        y_pred=pred[m],
        **kw,
    )
    return (
        demographic_parity_difference(y[m], pred[m], **kw),
        equalized_odds_difference(y[m], pred[m], **kw),
        frame.by_group,
    )


def check_against_oracles(report, y, s, attrs, sample_thr):
    """Compare every number of an evaluate() report with sklearn and fairlearn."""
    assert report["n"] == len(y) and report["n_pos"] == int(y.sum())
    assert report["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    for name, codes in attrs.items():
        sec = report["attributes"][name]
        pred = (s >= sample_thr[name]).astype(int)
        assert sec["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
        dpd, eod, by_group = fairlearn_oracle(y, pred, codes)
        assert sec["dpd"] == pytest.approx(dpd, abs=1e-12)
        assert sec["deodds"] == pytest.approx(eod, abs=1e-12)
        aucs = []
        for g in sec["groups"]:
            m = codes == g["code"]
            assert g["name"] == ATTRIBUTES[name].groups[g["code"]]
            assert g["n"] == m.sum() and g["n_pos"] == y[m].sum()
            tn, fp, fn, tp = confusion_matrix(y[m], pred[m], labels=[0, 1]).ravel()
            assert (g["tn"], g["fp"], g["fn"], g["tp"]) == (tn, fp, fn, tp)
            assert g["accuracy"] == pytest.approx(accuracy_score(y[m], pred[m]), abs=1e-12)
            row = by_group.loc[g["code"]]
            assert g["selection_rate"] == pytest.approx(row["sel"], abs=1e-12)
            if 0 < g["n_pos"] < g["n"]:
                assert g["auc"] == pytest.approx(roc_auc_score(y[m], s[m]), abs=1e-12)
                assert g["tpr"] == pytest.approx(row["tpr"], abs=1e-12)
                assert g["fpr"] == pytest.approx(row["fpr"], abs=1e-12)
                aucs.append(g["auc"])
        overall = report["auc"]
        assert sec["es_auc"] == pytest.approx(overall / (1 + sum(abs(overall - a) for a in aucs)))
    json.dumps(report, allow_nan=False)


# ----------------------------------------------------------------------------- AUC and ES-AUC


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(seed, ties):
    y, s, attrs = make_data(seed, ties=ties)
    assert M.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    got = M.group_aucs(y, s, attrs["race"], n_groups=3)
    want = [roc_auc_score(y[attrs["race"] == g], s[attrs["race"] == g]) for g in range(3)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_auc_undefined_is_nan_not_error():
    assert math.isnan(M.auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert math.isnan(M.auc([0], [0.3]))
    got = M.group_aucs([0, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], n_groups=3)
    assert got[0] == 1.0 and math.isnan(got[1]) and math.isnan(got[2])


def test_auc_all_equal_scores_is_half():
    assert M.auc([0, 1, 0, 1, 1], [0.5] * 5) == 0.5


def test_es_auc_hand_computed():
    # group 0 separates perfectly (AUC 1); group 1: positives .4 .7 vs negatives .6 .3 -> 3/4;
    # overall 15/16; ES-AUC = .9375 / (1 + .0625 + .1875) = 0.75
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.4, 0.3, 0.7])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    report = M.evaluate(y, s, {"gender": g})
    sec = report["attributes"]["gender"]
    assert report["auc"] == 0.9375
    assert [x["auc"] for x in sec["groups"]] == [1.0, 0.75]
    assert sec["es_auc"] == pytest.approx(0.75)
    # accuracy at 0.5: group 0 all right; group 1 wrong on .6 (neg) and .4 (pos) -> 0.5
    assert sec["es_acc"] == pytest.approx(0.75 / (1 + 0.25 + 0.25))
    assert M.es_auc(0.8, [0.7, 0.9, None, math.nan]) == pytest.approx(0.8 / 1.2)
    assert math.isnan(M.es_auc(math.nan, [0.7]))
    assert M.es_acc(0.6, []) == 0.6


# ----------------------------------------------------------------------------- evaluate


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.5, 0.37, 0.62])
def test_evaluate_matches_sklearn_and_fairlearn(seed, threshold):
    y, s, attrs = make_data(seed, ties=seed == 2)
    report = M.evaluate(y, s, attrs, threshold=threshold)
    check_against_oracles(report, y, s, attrs, dict.fromkeys(attrs, threshold))
    assert report["accuracy"] == pytest.approx(accuracy_score(y, s >= threshold))


@pytest.mark.parametrize("seed", SEEDS)
def test_evaluate_per_group_thresholds_match_fairlearn(seed):
    y, s, attrs = make_data(seed)
    rng = np.random.default_rng(seed + 10)
    thr = {"race": rng.uniform(0.3, 0.7, 3).tolist()}
    report = M.evaluate(y, s, attrs, threshold=thr, default_threshold=0.45)
    sample_thr = dict.fromkeys(attrs, 0.45)
    sample_thr["race"] = np.asarray(thr["race"])[attrs["race"]]
    check_against_oracles(report, y, s, attrs, sample_thr)
    assert [g["threshold"] for g in report["attributes"]["race"]["groups"]] == thr["race"]
    assert report["accuracy"] == pytest.approx(accuracy_score(y, s >= sample_thr["race"]))
    two = M.evaluate(y, s, attrs, threshold={**thr, "gender": [0.4, 0.6]})
    assert two["accuracy"] is None and two["tp"] is None  # ambiguous overall threshold
    assert two["attributes"]["race"] == report["attributes"]["race"]
    assert M.dpd(y, s, attrs["race"], threshold=thr["race"]) == report["attributes"]["race"]["dpd"]


def test_unknown_codes_are_kept_overall_and_excluded_from_groups():
    y = np.array([0, 1, 0, 1, 1, 0])
    s = np.array([0.2, 0.8, 0.6, 0.4, 0.9, 0.1])
    g = np.array([0, 0, 1, 1, -1, -1])
    sec = M.evaluate(y, s, {"ethnicity": g})["attributes"]["ethnicity"]
    assert sec["n_unknown"] == 2
    assert sum(x["n"] for x in sec["groups"]) == 4
    assert sec["accuracy"] == pytest.approx(4 / 6)  # all six cases


def test_one_class_group_and_empty_group():
    """Asian has only negatives, Other/White are empty: None, never a crash, fairlearn's DEOdds."""
    y = np.array([0, 0, 0, 1, 0, 1, 1, 0])
    s = np.array([0.7, 0.2, 0.4, 0.8, 0.6, 0.3, 0.9, 0.1])
    race = np.array([0, 0, 0, 1, 1, 1, 1, 1])  # nobody is White
    report = M.evaluate(y, s, {"race": race})
    asian, black, white = report["attributes"]["race"]["groups"]
    assert asian["auc"] is None and asian["tpr"] is None and asian["fpr"] == pytest.approx(1 / 3)
    assert white["n"] == 0 and white["auc"] is None and white["selection_rate"] is None
    sec = report["attributes"]["race"]
    assert sec["es_auc"] == pytest.approx(report["auc"] / (1 + abs(report["auc"] - black["auc"])))
    pred = (s >= 0.5).astype(int)
    assert sec["dpd"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=race)
    )
    # fairlearn counts Asian's undefined TPR as 0; the TPR gap is Black's TPR
    assert sec["deodds"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=race)
    )
    assert sec["tpr_gap"] == pytest.approx(black["tpr"])
    json.dumps(report, allow_nan=False)
    assert M.deodds(y, s, race) == pytest.approx(sec["deodds"])


def test_threshold_at_a_score_value_counts_as_positive():
    y = np.array([0, 1, 1, 0])
    s = np.array([0.3, 0.5, 0.5, 0.5])
    g = np.array([0, 0, 1, 1])
    report = M.evaluate(y, s, {"gender": g}, threshold=0.5)
    assert (report["tp"], report["fp"], report["tn"]) == (2, 1, 1)
    assert report == M.ScoreTable(y, s, {"gender": g}).report(0.5)
    assert M.evaluate(y, s, {"gender": g}, threshold=np.nextafter(0.5, 1))["tp"] == 0


def test_all_equal_scores():
    y = np.array([0, 1, 0, 1, 1, 0])
    s = np.full(6, 0.5)
    race = np.array([0, 0, 1, 1, 2, 2])
    for thr in (0.5, 0.6):
        report = M.evaluate(y, s, {"race": race}, threshold=thr)
        assert report == M.ScoreTable(y, s, {"race": race}).report(thr)
        assert report["auc"] == 0.5 and report["attributes"]["race"]["dpd"] == 0.0
        assert report["selection_rate"] == (1.0 if thr == 0.5 else 0.0)


# ----------------------------------------------------------------------------- ScoreTable


@pytest.mark.parametrize("seed", SEEDS)
def test_score_table_equals_evaluate(seed):
    y, s, attrs = make_data(seed, ties=seed == 1)
    table = M.ScoreTable(y, s, attrs)
    rng = np.random.default_rng(seed)
    scalars = [*rng.uniform(0, 1, 5), s[7], s.min(), s.max(), -1.0, 2.0]
    for thr in scalars:
        assert table.report(float(thr)) == M.evaluate(y, s, attrs, threshold=float(thr))
    for _ in range(5):
        thr = {
            k: rng.choice(s, ATTRIBUTES[k].n_groups).tolist() for k in rng.choice(list(attrs), 2)
        }
        kw = {"threshold": thr, "default_threshold": float(rng.uniform())}
        assert table.report(**kw) == M.evaluate(y, s, attrs, **kw)
        one = {k: thr[k] for k in list(thr)[:1]}
        assert table.report(one) == M.evaluate(y, s, attrs, threshold=one)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 1),
            st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
            st.integers(-1, 2),
            st.integers(0, 1),
        ),
        min_size=1,
        max_size=30,
    ),
    thr=st.sampled_from([0.0, 0.3, 0.5, 0.75, 1.0]),
)
def test_property_table_equals_evaluate_and_sklearn(data, thr):
    y, s, lang, gender = (np.array(c) for c in zip(*data, strict=True))
    attrs = {"language": lang, "gender": gender}
    report = M.evaluate(y, s, attrs, threshold=thr)
    assert M.ScoreTable(y, s, attrs).report(thr) == report
    json.dumps(report, allow_nan=False)
    if 0 < y.sum() < len(y):
        assert report["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    else:
        assert report["auc"] is None
    assert report["accuracy"] == pytest.approx(accuracy_score(y, s >= thr))


def test_score_table_roc_matches_sklearn():
    y, s, attrs = make_data(3, ties=True)
    table = M.ScoreTable(y, s, attrs)
    for attr, code in [(None, None), ("race", 0), ("race", 2), ("language", -1)]:
        m = np.ones(len(y), bool) if attr is None else attrs[attr] == code
        fpr, tpr, thr = table.roc(attr, code)
        want = roc_curve(y[m], s[m], drop_intermediate=False)
        for got, exp in zip((fpr, tpr, thr), want, strict=True):
            np.testing.assert_allclose(got, exp)
    fpr, tpr, _ = M.ScoreTable([0, 0], [0.1, 0.2], {"race": [1, 1]}).roc("race", 1)
    assert np.isnan(tpr).all() and fpr[-1] == 1.0
    with pytest.raises(ValueError, match="group code"):
        table.roc("race", 3)


def test_score_table_sweep_matches_report():
    y, s, attrs = make_data(4)
    table = M.ScoreTable(y, s, attrs)
    ts = [0.2, 0.5, float(s[3]), 0.8]
    sw = table.sweep("language", ts)
    for j, t in enumerate(ts):
        sec = table.report(t)["attributes"]["language"]
        assert sw["dpd"][j] == pytest.approx(sec["dpd"]) and sw["deodds"][j] == pytest.approx(
            sec["deodds"]
        )
        for g, grp in enumerate(sec["groups"]):
            for key in ("tpr", "fpr", "selection_rate", "accuracy"):
                want = math.nan if grp[key] is None else grp[key]
                assert sw[key][g, j] == pytest.approx(want, nan_ok=True)


# ----------------------------------------------------------------------------- thresholds


def cost(y, pred, ratio):
    return ratio * np.sum((y == 1) & ~pred) + np.sum((y == 0) & pred)


@pytest.mark.parametrize("seed", SEEDS)
def test_single_and_group_thresholds_minimise_cost(seed):
    y, s, attrs = make_data(seed, ties=seed == 1)
    race = attrs["race"]
    grid = np.r_[np.unique(s), np.inf]  # brute force: every distinct decision
    for ratio in (0.5, 1.0, 3.0):
        single = M.choose_thresholds(y, s, race, strategy="single", cost_ratio=ratio)
        assert len(set(single)) == 1
        assert cost(y, s >= single[0], ratio) == min(cost(y, s >= t, ratio) for t in grid)
        group = M.choose_thresholds(y, s, race, strategy="group", cost_ratio=ratio)
        for g in range(3):
            m = race == g
            best = min(cost(y[m], s[m] >= t, ratio) for t in grid)
            assert cost(y[m], s[m] >= group[g], ratio) == best


@pytest.mark.parametrize("strategy", ["single", "group", "demographic_parity", "equal_opportunity"])
def test_cost_ratio_moves_thresholds_the_right_way(strategy):
    y, s, attrs = make_data(5)
    race = attrs["race"]
    t = [M.choose_thresholds(y, s, race, strategy=strategy, cost_ratio=r) for r in (0.25, 1, 4)]
    # false negatives dearer -> lower thresholds (more referrals)
    assert (t[2] <= t[1]).all() and (t[1] <= t[0]).all() and (t[2] < t[0]).any()


def group_rates(y, s, race, thr):
    sec = M.evaluate(y, s, {"race": race}, threshold={"race": thr.tolist()})["attributes"]["race"]
    return sec["groups"]


@pytest.mark.parametrize("seed", SEEDS)
def test_demographic_parity_equalises_selection_rates(seed):
    y, s, attrs = make_data(seed)
    race = attrs["race"]
    thr = M.choose_thresholds(y, s, race, strategy="demographic_parity", cost_ratio=2.0)
    groups = group_rates(y, s, race, thr)
    sel = [g["selection_rate"] for g in groups]
    assert max(sel) - min(sel) <= 1 / min(g["n"] for g in groups) + 1e-12
    before = M.evaluate(y, s, {"race": race})["attributes"]["race"]["dpd"]
    assert max(sel) - min(sel) < before


@pytest.mark.parametrize("seed", SEEDS)
def test_equal_opportunity_equalises_tprs(seed):
    y, s, attrs = make_data(seed)
    race = attrs["race"]
    thr = M.choose_thresholds(y, s, race, strategy="equal_opportunity")
    groups = group_rates(y, s, race, thr)
    tpr = [g["tpr"] for g in groups]
    assert max(tpr) - min(tpr) <= 1 / min(g["n_pos"] for g in groups) + 1e-12


def test_equal_accuracy_brings_accuracies_close():
    y, s, attrs = make_data(6, n=2000)
    race = attrs["race"]
    thr = M.choose_thresholds(y, s, race, strategy="equal_accuracy")
    acc = [g["accuracy"] for g in group_rates(y, s, race, thr)]
    assert max(acc) - min(acc) <= 1 / min(np.bincount(race)) + 1e-12


def test_strategies_handle_empty_and_one_class_groups():
    y = np.array([0, 1, 0, 1, 0, 0, 0])
    s = np.array([0.1, 0.9, 0.4, 0.6, 0.3, 0.7, 0.2])
    race = np.array([0, 0, 0, 0, 1, 1, -1])  # Black has no positives, White no members
    for strategy in M.STRATEGIES:
        thr = M.choose_thresholds(y, s, race, strategy=strategy, n_groups=3)
        assert thr.shape == (3,) and np.isfinite(thr).all()
    eo = M.choose_thresholds(y, s, race, strategy="equal_opportunity", n_groups=3)
    assert eo[1] > 0.7  # no positives: its own best is to refer nobody
    with pytest.raises(ValueError, match="strategy must be one of"):
        M.choose_thresholds(y, s, race, strategy="fair")
    with pytest.raises(ValueError, match="cost_ratio"):
        M.choose_thresholds(y, s, race, strategy="single", cost_ratio=0)


# ----------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_equals_naive_resampling_loop(ties):
    y, s, attrs = make_data(7, n=300, ties=ties)
    thr = {"race": [0.45, 0.5, 0.55]}
    n_boot, alpha = 40, 0.1
    got = M.bootstrap_ci(y, s, attrs, threshold=thr, n_boot=n_boot, alpha=alpha, seed=3)
    rows = np.concatenate(
        list(M._resample_indices(np.random.default_rng(3), y.astype(bool), n_boot, "plain"))
    )
    reports = [
        M.evaluate(y[i], s[i], {k: v[i] for k, v in attrs.items()}, threshold=thr) for i in rows
    ]

    def ci(values):
        v = np.array([math.nan if x is None else x for x in values], dtype=float)
        v = v[~np.isnan(v)]
        return pytest.approx(np.quantile(v, [alpha / 2, 1 - alpha / 2]).tolist(), abs=1e-12)

    def pair(c):
        return [c["low"], c["high"]]

    assert pair(got["auc"]) == ci([r["auc"] for r in reports])
    assert pair(got["accuracy"]) == ci([r["accuracy"] for r in reports])
    for name in attrs:
        sec = got["attributes"][name]
        for key in ("es_auc", "es_acc", "dpd", "deodds"):
            assert pair(sec[key]) == ci([r["attributes"][name][key] for r in reports]), (name, key)
        for g, grp in enumerate(sec["groups"]):
            for key in ("auc", "tpr", "fpr"):
                vals = [r["attributes"][name]["groups"][g][key] for r in reports]
                if grp[key] is None:
                    assert all(v is None for v in vals)
                else:
                    assert pair(grp[key]) == ci(vals), (name, g, key)
                    assert grp[key]["n_defined"] == sum(v is not None for v in vals)


def test_bootstrap_stratified_subset_and_json():
    y, s, attrs = make_data(8, n=200)
    y = np.where(np.arange(200) < 6, 1, 0)  # 6 positives: plain resamples could lose them all
    out = M.bootstrap_ci(y, s, attrs, metrics=["auc", "dpd"], n_boot=300, resample="stratified")
    assert out["auc"]["n_defined"] == 300
    assert set(out) == {"n_boot", "alpha", "resample", "seed", "threshold", "auc", "attributes"}
    assert set(out["attributes"]["race"]) == {"dpd"}
    assert out["auc"]["low"] <= M.auc(y, s) <= out["auc"]["high"]
    json.dumps(out, allow_nan=False)
    with pytest.raises(ValueError, match="unknown metrics"):
        M.bootstrap_ci(y, s, attrs, metrics=["f1"])


def test_bootstrap_one_class_gives_none_not_error():
    y, s, attrs = make_data(8, n=100)
    out = M.bootstrap_ci(np.ones(100, int), s, attrs, n_boot=20)
    assert out["auc"] is None and out["attributes"]["race"]["es_auc"] is None
    assert out["attributes"]["race"]["groups"][0]["fpr"] is None
    assert out["attributes"]["race"]["dpd"]["n_defined"] == 20
    json.dumps(out, allow_nan=False)


# ----------------------------------------------------------------------------- errors and text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": [0, 2, 1]}, "0/1 labels"),
        ({"scores": [0.1, math.nan, 0.3]}, "finite"),
        ({"attrs": {"age": [0, 1, 0]}}, "unknown attribute"),
        ({"attrs": {"race": [0, 3, 1]}}, "race.*-1 .unknown. or 0..2"),
        ({"attrs": {"race": [0, 1]}}, "shape"),
        ({"threshold": {"race": [0.5, 0.5]}}, "one per group"),
        ({"threshold": {"gender": [0.5, 0.5]}}, "not in attrs"),
        ({"threshold": math.inf}, "finite"),
    ],
)
def test_user_errors_say_what_is_wrong(kwargs, match):
    args = {"y": [0, 1, 1], "scores": [0.1, 0.2, 0.3], "attrs": {"race": [0, 1, 2]}} | kwargs
    with pytest.raises(ValueError, match=match):
        M.evaluate(args.pop("y"), args.pop("scores"), args.pop("attrs"), **args)


def test_format_report_table():
    y, s, attrs = make_data(9, n=100)
    attrs["language"][:] = np.where(attrs["language"] == 2, 0, attrs["language"])  # Other empty
    text = M.format_report_table(M.evaluate(y, s, attrs))
    assert "| race | Asian |" in text and "| language | Other | 0 | 0 | n/a |" in text
    assert text.count("\n| ") == 4 + 10 + 2  # attribute rows, group rows, two header rows
