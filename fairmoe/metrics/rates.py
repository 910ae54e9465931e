"""Per-group confusion counts, the rates built on them, and the gaps DPD and DEOdds.

One kernel serves :func:`evaluate`, :meth:`ScoreTable.sweep`, :func:`bootstrap_ci` and the
threshold strategies: counts ``(..., 4)`` (tn, fp, fn, tp) go through :func:`_group_rates`, and
the rates of the groups of one attribute through :func:`_gaps`, vectorised over any
leading axes (attributes, thresholds, resamples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, overload

import numpy as np

from fairmoe.metrics._checks import _check_codes, _check_inputs, _finite, _sample_thresholds
from fairmoe.schema import OPERATING_POINT

__all__ = ["accuracy", "deodds", "dpd"]

_CELLS = ("tn", "fp", "fn", "tp")  # order of the last axis of every counts array

# Each rate as (numerator, denominator), both sums of confusion cells; in the report's order.
_RATE_TERMS = {
    "tpr": ("tp", "fn tp"),
    "fpr": ("fp", "tn fp"),
    "ppv": ("tp", "fp tp"),
    "npv": ("tn", "tn fn"),
    "selection_rate": ("fp tp", "tn fp fn tp"),
    "accuracy": ("tn tp", "tn fp fn tp"),
}
_RATE_NAMES = tuple(_RATE_TERMS)
_GAP_RATES = np.array([_RATE_NAMES.index(k) for k in ("selection_rate", "tpr", "fpr")])


def _cell_sums(terms: Sequence[str]) -> np.ndarray:
    """(4, R) 0/1 matrix: counts @ matrix adds up the cells each term names.

    float64, so the product runs in BLAS (numpy has none for integers); sums of whole numbers
    below 2**53 are exact, and a rate is then the same division as int64 / int64 would make.
    """
    return np.array([[c in t.split() for t in terms] for c in _CELLS], dtype=np.float64)


# One product gives n, n_pos, then each rate's denominator, then each rate's numerator.
_SUMS = _cell_sums(
    ["tn fp fn tp", "fn tp"]
    + [den for _, den in _RATE_TERMS.values()]
    + [num for num, _ in _RATE_TERMS.values()]
)


@dataclass(frozen=True, slots=True)
class _Rates:
    """Group sizes and rates of confusion counts (..., 4).

    ``rates["tpr"]`` is one rate (...,); ``rates[index]`` the rates of some rows (leading axes).
    """

    sizes: np.ndarray  # (..., 2) n, n_pos
    table: np.ndarray  # (..., R) every rate in _RATE_NAMES order, nan where 0/0

    @property
    def n(self) -> np.ndarray:
        return self.sizes[..., 0]

    @property
    def n_pos(self) -> np.ndarray:
        return self.sizes[..., 1]

    @overload
    def __getitem__(self, key: str) -> np.ndarray: ...
    @overload
    def __getitem__(self, key: Any) -> _Rates: ...
    def __getitem__(self, key: Any) -> np.ndarray | _Rates:
        if isinstance(key, str):
            return self.table[..., _RATE_NAMES.index(key)]
        rows = (*(key if isinstance(key, tuple) else (key,)), slice(None))  # the last axis stays
        return _Rates(self.sizes[rows], self.table[rows])


class _Gaps(NamedTuple):
    """Max - min over the present groups of each rate; nan when no group is present."""

    table: np.ndarray  # (..., 3) selection-rate gap, TPR gap, FPR gap

    @property
    def dpd(self) -> np.ndarray:
        """Demographic parity difference: the selection-rate gap."""
        return self.table[..., 0]

    @property
    def tpr(self) -> np.ndarray:
        return self.table[..., 1]

    @property
    def fpr(self) -> np.ndarray:
        return self.table[..., 2]

    @property
    def deodds(self) -> np.ndarray:
        """Equalized odds difference (fairlearn's worst case): max(TPR gap, FPR gap)."""
        return np.maximum(self.tpr, self.fpr)


def _counts_by_code(
    y: np.ndarray, pred: np.ndarray, codes: np.ndarray, n_groups: int
) -> np.ndarray:
    """(G+1, 4) confusion counts (tn, fp, fn, tp) per code; the last row is code -1."""
    col = np.where(codes >= 0, codes, n_groups)
    cell = col * 4 + 2 * y + pred  # 0 tn, 1 fp, 2 fn, 3 tp
    return np.bincount(cell, minlength=4 * (n_groups + 1)).reshape(n_groups + 1, 4)


def _group_rates(counts: np.ndarray) -> _Rates:
    """Rates of (..., 4) counts, integer or whole-number floats.

    Exact sums and one correctly rounded division per rate, so the result does not depend on the
    counts' dtype or on the leading axes: the report, the sweep and the bootstrap agree bit for bit.
    """
    flat = np.asarray(counts, dtype=np.float64).reshape(-1, 4)  # 2-D: one BLAS call
    sums = (flat @ _SUMS).reshape(*counts.shape[:-1], _SUMS.shape[1])
    r = len(_RATE_NAMES)
    den = sums[..., 2 : 2 + r]
    # 0/0 (a numerator never exceeds its denominator) -> x/nan: nan without a warning
    table = sums[..., 2 + r :] / np.where(den > 0, den, math.nan)
    return _Rates(sums[..., :2].astype(counts.dtype), table)


def _group_and_total_rates(counts: np.ndarray) -> tuple[_Rates, _Rates]:
    """Rates (..., G) of the groups in (..., G+1, 4) counts per code, and (...,) of all samples.

    The last code is -1 (unknown): out of the groups, in the rates of all samples (ES-ACC's base).
    """
    rows = counts.copy()
    rows[..., -1, :] = counts.sum(axis=-2)  # all samples in place of the unknown code
    r = _group_rates(rows)
    return r[..., :-1], r[..., -1]


def _gaps(rates: _Rates) -> _Gaps:
    """Gaps of the per-group rates (..., G) over the groups present (n > 0).

    fairlearn 0.15 computes TPR and FPR with ``confusion_matrix(normalize="true")``, which turns
    0/0 into 0: a present group without positives counts with TPR 0, one without negatives with
    FPR 0. A selection rate is only undefined in an absent group, which is left out anyway.
    """
    v = np.fmax(rates.table[..., _GAP_RATES], 0.0)  # (..., G, 3); fmax turns nan (0/0) into 0
    v[rates.n == 0] = math.nan  # absent groups: fmax and fmin skip nan
    if v.shape[-2] == 0:
        return _Gaps(np.full((*v.shape[:-2], 3), math.nan))
    # A fold over the few groups: numpy reduces a short middle axis slowly.
    hi = lo = v[..., 0, :]
    for g in range(1, v.shape[-2]):
        hi, lo = np.fmax(hi, v[..., g, :]), np.fmin(lo, v[..., g, :])
    return _Gaps(hi - lo)  # nan where no group is present


def _gaps_at(y: Any, scores: Any, groups: Any, threshold: float | Sequence[float]) -> _Gaps:
    """Gaps over present groups at a threshold (one, or one per group code), fairlearn semantics."""
    y, s = _check_inputs(y, scores)
    g = np.asarray(groups)
    n_groups = int(g.max()) + 1 if len(g) else 0
    if np.ndim(threshold) == 1:
        n_groups = max(n_groups, len(threshold))
    g = _check_codes("groups", g, len(y), n_groups)
    pred = s >= _sample_thresholds(g, threshold, n_groups)
    return _gaps(_group_rates(_counts_by_code(y, pred, g, n_groups)[:n_groups]))


def accuracy(y: Any, scores: Any, *, threshold: float = OPERATING_POINT) -> float:
    """Accuracy of ``score >= threshold``."""
    y, s = _check_inputs(y, scores)
    return float(np.mean((s >= _finite(threshold, "threshold")) == y))


def dpd(
    y: Any, scores: Any, groups: Any, *, threshold: float | Sequence[float] = OPERATING_POINT
) -> float:
    """Demographic parity difference (fairlearn): max - min selection rate over present groups.

    ``threshold`` is one number or one per group code; code -1 is left out.
    """
    return float(_gaps_at(y, scores, groups, threshold).dpd)


def deodds(
    y: Any, scores: Any, groups: Any, *, threshold: float | Sequence[float] = OPERATING_POINT
) -> float:
    """Equalized odds difference (fairlearn, worst case): max(TPR gap, FPR gap) over present groups.

    A group without positives counts with TPR 0 (and without negatives with FPR 0), as in fairlearn.
    """
    return float(_gaps_at(y, scores, groups, threshold).deodds)
