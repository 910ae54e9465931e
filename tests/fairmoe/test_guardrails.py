"""Guardrails fire on the cases they name, and stay quiet on a healthy report."""

from __future__ import annotations

import numpy as np

from fairmoe.guardrails import report_warnings, strategy_warnings
from fairmoe.metrics import bootstrap_ci, choose_thresholds, evaluate


def _data(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    race = np.where(rng.random(n) < 0.5, 2, 1)  # White and Black, nobody Asian
    race[:12] = 0  # 12 Asian patients ...
    y[:12] = 0  # ... all healthy: one class
    s = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.2, n), 0, 1)
    return y, s, {"race": race}


def _codes(warnings: list[dict]) -> set[tuple[str, str | None]]:
    return {(w["code"], w["group"]) for w in warnings}


def test_small_one_class_group_is_marked_with_its_interval() -> None:
    y, s, attrs = _data()
    rep = evaluate(y, s, attrs)
    ci = bootstrap_ci(y, s, attrs, metrics=["group_auc"], n_boot=50)
    codes = _codes(report_warnings(rep, "race", auc_ci=ci))
    assert ("one_class", "Asian") in codes and ("small_group", "Asian") in codes
    assert not {c for c in codes if c[1] in ("Black", "White")}
    assert ("degenerate", None) not in codes


def test_flagging_everyone_is_called_degenerate() -> None:
    y, s, attrs = _data()
    rep = evaluate(y, s, attrs, threshold=0.0)  # everyone flagged: DPD = DEOdds = 0
    assert rep["attributes"]["race"]["dpd"] == 0.0
    warnings = report_warnings(rep, "race")
    assert any(w["code"] == "degenerate" and "everyone" in w["message"] for w in warnings)
    rep = evaluate(y, s, attrs, threshold=1.01)
    assert any("no one" in w["message"] for w in report_warnings(rep, "race"))


def test_strategy_warnings_high_fpr_accuracy_and_deployment() -> None:
    y, s, attrs = _data()
    base = evaluate(y, s, attrs, threshold=0.5)
    low = {"race": [0.01, 0.01, 0.5]}  # flags nearly every Asian and Black patient
    chosen = evaluate(y, s, attrs, threshold=low)
    codes = _codes(strategy_warnings(base, chosen, "race", per_group=True))
    assert ("high_fpr", "Black") in codes and ("high_fpr", "White") not in codes
    assert ("accuracy_drop", None) in codes and ("needs_attribute", None) in codes
    t = choose_thresholds(y, s, attrs["race"], strategy="single", n_groups=3)
    same = evaluate(y, s, attrs, threshold=float(t[0]))
    quiet = _codes(strategy_warnings(same, same, "race", per_group=False))
    assert quiet == {("flag_rate", None)}
