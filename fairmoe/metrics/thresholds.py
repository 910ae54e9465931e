"""Thresholds: the threshold argument of the reports, and the What-If Tool's strategies.

A :data:`Thresholds` argument is resolved into one threshold per group code;
:func:`choose_thresholds` picks one per group as Google's What-If Tool does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from fairmoe.metrics._checks import _check_codes, _check_inputs, _finite
from fairmoe.metrics.rates import _group_rates
from fairmoe.schema import Attribute

__all__ = [
    "DEFAULT_COST_RATIO",
    "SENSITIVITY_TARGET",
    "STRATEGIES",
    "Strategy",
    "Thresholds",
    "choose_thresholds",
    "threshold_for_sensitivity",
]

# The app's and the audit's default cost ratio for the strategies: a missed glaucoma costs four
# false alarms (a referral is cheap beside lost sight).
DEFAULT_COST_RATIO = 4.0

# The clinical operating-point preset: catch 85% of glaucoma overall (a screening programme's
# usual floor), and read what each group then gets.
SENSITIVITY_TARGET = 0.85

# One threshold for everything, or per attribute one threshold per group (index = group code).
Thresholds = float | Mapping[str, Sequence[float]]
Strategy = Literal["single", "group", "demographic_parity", "equal_opportunity", "equal_accuracy"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

# The rate each parity strategy equalises.
_PARITY_RATES = {
    "demographic_parity": "selection_rate",
    "equal_opportunity": "tpr",
    "equal_accuracy": "accuracy",
}


def _resolve_thresholds(
    threshold: Thresholds, attrs: Mapping[str, Attribute], default: float
) -> tuple[dict[str, np.ndarray], str | None]:
    """Per attribute a (G+1,) threshold per code (last entry: unknown), and the top-level source.

    The top-level source is "" for a scalar threshold, the attribute name when a mapping names
    exactly one attribute, and None when overall thresholded numbers are ambiguous.
    """
    default = _finite(default, "default_threshold")
    if not isinstance(threshold, Mapping):
        t = _finite(threshold, "threshold")
        return {k: np.full(a.n_groups + 1, t) for k, a in attrs.items()}, ""
    extra = sorted(set(threshold) - set(attrs))
    if extra:
        raise ValueError(
            f"threshold names attributes {extra} that are not in attrs ({sorted(attrs)})"
        )
    cols = {}
    for k, a in attrs.items():
        col = np.full(a.n_groups + 1, default)
        if k in threshold:
            t = np.asarray(threshold[k], dtype=np.float64)
            if t.shape != (a.n_groups,) or not np.isfinite(t).all():
                raise ValueError(
                    f"threshold[{k!r}] must be {a.n_groups} finite numbers, one per group "
                    f"{a.groups}; got {np.asarray(threshold[k]).tolist()}"
                )
            col[:-1] = t
        cols[k] = col
    return cols, (next(iter(threshold)) if len(threshold) == 1 else None)


def _threshold_json(threshold: Thresholds) -> float | dict[str, list[float]]:
    if isinstance(threshold, Mapping):
        return {k: [float(v) for v in t] for k, t in threshold.items()}
    return float(threshold)


@dataclass(frozen=True)
class _Candidates:
    """Every distinct decision a threshold can make on one set of scores."""

    thresholds: np.ndarray  # (k+1,) ascending; the last one predicts nobody positive
    tp: np.ndarray  # (k+1,) positives predicted positive
    fp: np.ndarray  # (k+1,) negatives predicted positive
    n_pos: int
    n_neg: int

    def cost(self, cost_ratio: float) -> np.ndarray:
        return cost_ratio * (self.n_pos - self.tp) + self.fp

    def rate(self, strategy: str) -> tuple[np.ndarray, int]:
        """(k+1,) values of the rate a parity strategy equalises, and its denominator (1 / step)."""
        rate = _PARITY_RATES[strategy]
        counts = np.stack([self.n_neg - self.fp, self.fp, self.n_pos - self.tp, self.tp], axis=-1)
        denominator = self.n_pos if rate == "tpr" else self.n_pos + self.n_neg
        return _group_rates(counts)[rate], denominator


def _candidates(s: np.ndarray, y: np.ndarray) -> _Candidates:
    """Thresholds at the lowest score, midway between distinct scores, and just above the highest.

    Midpoints rather than the observed scores themselves, so that a new case scoring a hair below an
    observed one is treated like its neighbours.
    """
    u, inv = np.unique(s, return_inverse=True)
    pos = np.bincount(inv, weights=y, minlength=len(u)).astype(np.int64)
    cnt = np.bincount(inv, minlength=len(u))
    tp = np.r_[np.cumsum(pos[::-1])[::-1], 0]
    fp = np.r_[np.cumsum((cnt - pos)[::-1])[::-1], 0]
    mid = (u[:-1] + u[1:]) / 2
    mid = np.where(mid > u[:-1], mid, u[1:])  # adjacent floats: the midpoint rounds down
    t = np.r_[u[:1], mid, np.nextafter(u[-1], math.inf)]
    return _Candidates(t, tp, fp, int(pos.sum()), int((cnt - pos).sum()))


def _match_rates(rates: list[np.ndarray], costs: list[np.ndarray], tolerance: float) -> list[int]:
    """Candidate index per group giving (near-)equal rates at the least total cost.

    Every rate some group can reach is a target; each group takes its candidate closest to the
    target (ties: cheaper). Targets whose worst deviation exceeds max(best worst deviation,
    tolerance) are dropped; the cheapest remaining target wins (ties: smaller deviation).
    """
    uniq = []
    for r, c in zip(rates, costs, strict=True):
        order = np.lexsort((c, r))  # by rate, then cost: the first of each rate is its cheapest
        first = np.r_[True, r[order][1:] != r[order][:-1]]
        uniq.append((r[order][first], order[first]))
    targets = np.unique(np.concatenate([u for u, _ in uniq]))  # (R,)
    worst = np.zeros(len(targets))
    total = np.zeros(len(targets))
    picks = []
    for (u, idx), c in zip(uniq, costs, strict=True):
        right = np.clip(np.searchsorted(u, targets), 0, len(u) - 1)
        left = np.clip(right - 1, 0, len(u) - 1)
        dl, dr = np.abs(targets - u[left]), np.abs(u[right] - targets)
        cl, cr = c[idx[left]], c[idx[right]]
        take_right = (dr < dl) | ((dr == dl) & (cr < cl))
        pick = np.where(take_right, right, left)
        worst = np.maximum(worst, np.where(take_right, dr, dl))
        total += c[idx[pick]]
        picks.append(idx[pick])
    ok = worst <= max(worst.min(), tolerance) * (1 + 1e-9) + 1e-12
    best = np.flatnonzero(ok)[np.lexsort((worst[ok], total[ok]))[0]]
    return [int(p[best]) for p in picks]


def choose_thresholds(
    y: Any,
    scores: Any,
    groups: Any,
    *,
    strategy: Strategy,
    cost_ratio: float = 1.0,
    n_groups: int | None = None,
    tolerance: float | None = None,
) -> np.ndarray:
    """One threshold per group code, chosen as in Google's What-If Tool.

    ``cost_ratio`` = cost of a false negative / cost of a false positive (note: WIT's slider is the
    inverse ratio); cost = cost_ratio * FN + FP, summed over groups. Strategies:

    - ``single``: one cost-minimising threshold for everyone (returned once per group);
    - ``group``: each group's own cost-minimising threshold;
    - ``demographic_parity`` / ``equal_opportunity`` / ``equal_accuracy``: equal selection rates /
      TPRs / accuracies across groups, at the least total cost.

    The search is exact over each group's candidates: its lowest score, every midpoint between
    consecutive distinct scores, and just above its highest score. Rates in finite groups only come
    in steps, so "equal" means within ``tolerance`` of a common target (default: half the coarsest
    step, 1 / (2 * smallest denominator)), widened to the best reachable when ties leave larger
    steps. Only members with a known code (>= 0) are used; a group with no members gets the
    ``single`` threshold, and in ``equal_opportunity`` a group without positives gets its own
    cost-minimising threshold. Cost ties go to the lowest threshold.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    cost_ratio = _finite(cost_ratio, "cost_ratio")
    if cost_ratio <= 0:
        raise ValueError(
            f"cost_ratio must be > 0 (cost of a false negative / false positive), got {cost_ratio}"
        )
    y, s = _check_inputs(y, scores)
    g = np.asarray(groups)
    n_groups = (int(g.max()) + 1 if len(g) else 0) if n_groups is None else n_groups
    g = _check_codes("groups", g, len(y), n_groups)
    known = g >= 0 if (g >= 0).any() else np.ones(len(y), bool)
    pooled = _candidates(s[known], y[known])
    single = float(pooled.thresholds[np.argmin(pooled.cost(cost_ratio))])
    out = np.full(n_groups, single)
    if strategy == "single":
        return out
    cands = {k: _candidates(s[g == k], y[g == k]) for k in range(n_groups) if (g == k).any()}
    own = {k: float(c.thresholds[np.argmin(c.cost(cost_ratio))]) for k, c in cands.items()}
    if strategy == "group":
        out[list(own)] = list(own.values())
        return out
    matched = [k for k, c in cands.items() if strategy != "equal_opportunity" or c.n_pos > 0]
    for k in set(cands) - set(matched):
        out[k] = own[k]
    if not matched:
        return out
    rd = [cands[k].rate(strategy) for k in matched]
    tol = max(0.5 / d for _, d in rd) if tolerance is None else _finite(tolerance, "tolerance")
    picks = _match_rates([r for r, _ in rd], [cands[k].cost(cost_ratio) for k in matched], tol)
    for k, p in zip(matched, picks, strict=True):
        out[k] = cands[k].thresholds[p]
    return out


def threshold_for_sensitivity(y: Any, scores: Any, target: float = SENSITIVITY_TARGET) -> float:
    """The highest single threshold whose sensitivity (TPR of ``score >= threshold``) reaches
    ``target``: the k-th highest score among the positives, k = ceil(target * positives)."""
    if not 0 < target <= 1:
        raise ValueError(f"target sensitivity must be in (0, 1], got {target}")
    y, s = np.asarray(y).astype(bool), np.asarray(scores, dtype=np.float64)
    pos = np.sort(s[y])[::-1]
    if not len(pos):
        raise ValueError("no positive cases: sensitivity is undefined")
    k = math.ceil(target * len(pos) - 1e-9)
    return float(pos[k - 1])
