"""Guardrails fire on the cases they name, and stay quiet on a healthy result."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fairmoe.guardrails import ECE_RATIO, result_warnings, strategy_warnings
from fairmoe.metrics import choose_thresholds
from fairmoe.metrics.result import Caveat
from fairmoe.scores import ScoreSet


def _scores(y: np.ndarray, s: np.ndarray, race: np.ndarray) -> ScoreSet:
    n = len(y)
    attrs = {"race": race} | {a: np.zeros(n, np.int64) for a in ("gender", "ethnicity")}
    attrs["language"] = np.zeros(n, np.int64)
    return ScoreSet("test", [str(i) for i in range(n)], y, s, attrs)


def _data(n: int = 400, seed: int = 0, asian_pos: int = 0) -> ScoreSet:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    race = np.where(rng.random(n) < 0.5, 2, 1)  # White and Black, nobody Asian
    race[:12] = 0  # 12 Asian patients ...
    y[:12] = np.arange(12) < asian_pos  # ... all healthy (one class) unless asked
    s = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.2, n), 0, 1)
    return _scores(y, s, race)


def _codes(warnings: Iterable[Caveat]) -> set[tuple[str, str | None]]:
    return {(w.code, w.group) for w in warnings}


def test_small_one_class_group_is_marked_with_its_interval() -> None:
    res = _data().fairness("race", ci="auc")
    assert res.warnings == result_warnings(res)  # attached by ScoreSet.fairness
    codes = _codes(res.warnings)
    assert ("one_class", "Asian") in codes and ("small_group", "Asian") in codes
    assert not {c for c in codes if c[1] in ("Black", "White")}
    assert ("degenerate", None) not in codes
    # a small group with both classes quotes its AUC interval
    small = next(w for w in _data(asian_pos=6).fairness("race").warnings if w.code == "small_group")
    assert res.group("Asian").ci.auc is None and "95% CI" in small.message


def test_flagging_everyone_is_called_degenerate() -> None:
    ss = _data()
    res = ss.fairness("race", 0.0, ci="none")  # everyone flagged: DPD = DEOdds = 0
    assert res.dpd == 0.0
    assert any(w.code == "degenerate" and "everyone" in w.message for w in res.warnings)
    res = ss.fairness("race", 1.01, ci="none")
    assert any("no one" in w.message for w in res.warnings)


def test_strategy_warnings_high_fpr_accuracy_and_deployment() -> None:
    ss = _data()
    base = ss.fairness("race", 0.5, ci="none")
    low = {"race": [0.01, 0.01, 0.5]}  # flags nearly every Asian and Black patient
    chosen = ss.fairness("race", low, ci="none")
    codes = _codes(strategy_warnings(base, chosen, per_group=True))
    assert ("high_fpr", "Black") in codes and ("high_fpr", "White") not in codes
    assert ("accuracy_drop", None) in codes and ("needs_attribute", None) in codes
    t = choose_thresholds(ss.y, ss.scores, ss.attrs["race"], strategy="single", n_groups=3)
    same = ss.fairness("race", float(t[0]), ci="none")
    quiet = _codes(strategy_warnings(same, same, per_group=False))
    assert quiet == {("flag_rate", None)}


def test_miscalibrated_group_gets_ece_and_confident_band_warnings() -> None:
    rng = np.random.default_rng(1)
    n = 1500
    race = rng.choice(3, n, p=[0.15, 0.2, 0.65])
    truth = rng.random(n)
    y = (rng.random(n) < truth).astype(np.int64)
    s = np.where(race == 1, 0.3 * truth, truth)  # Black patients' risk under-estimated
    res = _scores(y, s, race).fairness("race", ci="none")
    black = res.group("Black")
    assert black.ece > ECE_RATIO * res.ece and black.citl < -0.2
    low = next(b for b in black.bands if b.low == 0.0)  # scored below 0.2 ...
    assert low.n >= 10 and low.observed > 0.25  # ... yet over a quarter had glaucoma
    codes = _codes(res.warnings)
    assert ("group_ece", "Black") in codes and ("confident_band", "Black") in codes
    assert not {c for c in codes if c[1] in ("Asian", "White")}
