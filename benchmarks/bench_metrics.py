"""Time a full fairness report at a new threshold: ScoreTable.report vs fairlearn MetricFrame.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--n 2000] [--seed 0]``. Synthetic test-set-sized
data with FairVLMed's group proportions; both sides run in this process on the same thresholds, and
their numbers are checked to agree before anything is timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fairmoe import metrics as M  # noqa: E402
from fairmoe.schema import ATTRIBUTE_NAMES  # noqa: E402

# FairVLMed group counts over all splits (the published data set); the test split drops unknown attributes.
PROPORTIONS = {
    "race": [819, 1491, 7690],
    "gender": [5631, 4369],
    "ethnicity": [10000 - 398, 398],
    "language": [10000 - 176 - 76, 176, 76],
}


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    attrs = {k: rng.choice(len(p), n, p=np.array(p) / sum(p)) for k, p in PROPORTIONS.items()}
    y = rng.integers(0, 2, n)
    logit = 1.1 * (y - 0.5) * (1 - 0.3 * (attrs["race"] == 0)) + rng.normal(0, 1, n)
    return y, 1 / (1 + np.exp(-logit)), attrs


def fairlearn_report(y: np.ndarray, s: np.ndarray, attrs: dict[str, np.ndarray], t: float) -> dict:
    """What a MetricFrame user computes per attribute for one threshold."""
    pred = (s >= t).astype(int)
    metrics = {
        "selection_rate": selection_rate,
        "tpr": true_positive_rate,
        "fpr": false_positive_rate,
        "accuracy": accuracy_score,
        "count": count,
    }
    out = {}
    for name, codes in attrs.items():
        frame = MetricFrame(metrics=metrics, y_true=y, y_pred=pred, sensitive_features=codes)
        out[name] = {
            "by_group": frame.by_group,
            "dpd": demographic_parity_difference(y, pred, sensitive_features=codes),
            "deodds": equalized_odds_difference(y, pred, sensitive_features=codes),
        }
    return out


def median_ms(fn: Callable[[float], object], thresholds: np.ndarray, repeats: int) -> float:
    times = []
    for i in range(repeats):
        t = float(thresholds[i % len(thresholds)])
        start = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of cases")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    y, s, attrs = synthetic(args.n, args.seed)
    thresholds = np.random.default_rng(args.seed).uniform(0.2, 0.8, 101)
    print(
        f"{args.n} cases; group sizes "
        + "; ".join(f"{k} {np.bincount(attrs[k]).tolist()}" for k in ATTRIBUTE_NAMES)
    )

    table = M.ScoreTable(y, s, attrs)
    for t in thresholds[:5]:  # both sides must compute the same numbers
        ours, theirs = table.report(float(t)), fairlearn_report(y, s, attrs, float(t))
        for name, sec in ours["attributes"].items():
            assert abs(sec["dpd"] - theirs[name]["dpd"]) < 1e-12
            assert abs(sec["deodds"] - theirs[name]["deodds"]) < 1e-12
            assert np.allclose([g["tpr"] for g in sec["groups"]], theirs[name]["by_group"]["tpr"])

    t_build = median_ms(lambda _: M.ScoreTable(y, s, attrs), thresholds, 20)
    t_table = median_ms(table.report, thresholds, 2000)
    groups = {"race": [0.0, 0.0, 0.0]}

    def per_group(t: float) -> dict:
        groups["race"] = [t, t + 0.02, t - 0.02]
        return table.report(groups)

    t_groups = median_ms(per_group, thresholds, 2000)
    t_fairlearn = median_ms(lambda t: fairlearn_report(y, s, attrs, t), thresholds, 30)
    t_eval = median_ms(lambda t: M.evaluate(y, s, attrs, threshold=t), thresholds, 50)
    t_boot200 = median_ms(lambda _: M.bootstrap_ci(y, s, attrs, n_boot=200), thresholds, 5)
    t_boot1000 = median_ms(lambda _: M.bootstrap_ci(y, s, attrs, n_boot=1000), thresholds, 3)

    print(f"ScoreTable.report, new threshold:       {t_table:8.3f} ms (median of 2000)")
    print(f"ScoreTable.report, per-group thresholds: {t_groups:8.3f} ms (median of 2000)")
    print(f"fairlearn MetricFrame + DPD + DEOdds:    {t_fairlearn:8.3f} ms (median of 30)")
    print(f"speed-up over fairlearn:                 {t_fairlearn / t_table:8.0f} x")
    print(f"ScoreTable build (sort, AUCs):           {t_build:8.3f} ms")
    print(f"evaluate, full report with AUCs:         {t_eval:8.3f} ms")
    print(f"bootstrap_ci, 200 resamples:             {t_boot200:8.1f} ms")
    print(f"bootstrap_ci, 1000 resamples:            {t_boot1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
