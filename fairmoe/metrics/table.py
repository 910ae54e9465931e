"""The fast path for threshold sliders: :class:`ScoreTable`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fairmoe.metrics._checks import _check_attrs, _check_inputs
from fairmoe.metrics.ranking import _auc_sorted
from fairmoe.metrics.rates import _RATE_NAMES, _gaps, _group_rates
from fairmoe.metrics.report import _report, _Stacked
from fairmoe.metrics.thresholds import Thresholds, _resolve_thresholds
from fairmoe.schema import OPERATING_POINT

__all__ = ["ScoreTable"]


def _confusion(below: np.ndarray, fn: np.ndarray, n_g: np.ndarray, pos_g: np.ndarray) -> np.ndarray:
    """(..., 4) counts (tn, fp, fn, tp) from members and positives: below the threshold, in all."""
    out = np.empty((*below.shape, 4), np.int64)
    tn = np.subtract(below, fn, out=out[..., 0])
    np.subtract(n_g - pos_g, tn, out=out[..., 1])
    out[..., 2] = fn
    np.subtract(pos_g, fn, out=out[..., 3])
    return out


class ScoreTable:
    """Scores sorted once, with per-group cumulative counts, for instant reports at any threshold.

    ``report(threshold)`` equals ``evaluate(y, scores, attrs, threshold=threshold)`` number for
    number; it costs one ``searchsorted`` for all attributes instead of a pass over the data.
    """

    def __init__(self, y: Any, scores: Any, attrs: Mapping[str, Any]) -> None:
        y, s = _check_inputs(y, scores)
        checked = _check_attrs(attrs, len(y))
        order = np.argsort(s, kind="stable")
        self._s, self._y = s[order], y[order]  # (n,) ascending scores and their labels
        self.n, self.n_pos = len(y), int(y.sum())
        self.auc = _auc_sorted(self._s, self._y)
        self._cum_pos = np.r_[0, np.cumsum(self._y, dtype=np.int64)]  # (n+1,)
        self._attrs = {k: a for k, (a, _) in checked.items()}
        # Attributes stacked on a leading axis, W code columns each: groups 0..G-1, empty columns
        # up to W-1 (counted like absent groups), unknown last.
        sizes = [a.n_groups for a in self._attrs.values()]
        w = max(sizes, default=0)
        cols = [np.where(c >= 0, c, w)[order] for _, c in checked.values()]
        # Small integer types: the app holds one table per shipped run (67 in release 3).
        # Group codes fit int16 (0..W); counts, each <= n, fit int32.
        code = np.int16 if w < 2**15 else np.int64
        count = np.int32 if self.n < 2**31 else np.int64
        self._col = np.array(cols, code).reshape(len(sizes), self.n)  # (A, n) sorted samples
        self._cum_all = np.zeros((len(sizes), self.n + 1, w + 1), count)  # members below
        self._cum_grp = np.zeros_like(self._cum_all)  # positive members below
        self._group_auc = np.full((len(sizes), w), math.nan)  # cached: no threshold in AUC
        for i, (col, g) in enumerate(zip(self._col, sizes, strict=True)):
            onehot = np.zeros((self.n, w + 1), count)
            onehot[np.arange(self.n), col] = 1
            np.cumsum(onehot, axis=0, out=self._cum_all[i, 1:])
            np.cumsum(onehot * self._y[:, None], axis=0, out=self._cum_grp[i, 1:])
            self._group_auc[i, :g] = [
                _auc_sorted(self._s[col == k], self._y[col == k]) for k in range(g)
            ]
        # each (A, W+1) column's place among the attributes' concatenated (G+1,) threshold columns
        starts = np.cumsum([0, *(g + 1 for g in sizes)])[:-1, None]
        self._thr_index = starts + np.minimum(np.arange(w + 1), np.array(sizes, int)[:, None])
        self._rows = np.arange(len(sizes))[:, None]  # (A, 1) and (W+1,): every (attribute, code)
        self._codes = np.arange(w + 1)
        self._n_g, self._pos_g = self._cum_all[:, -1], self._cum_grp[:, -1]  # (A, W+1) in all

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self._attrs)

    def report(
        self, threshold: Thresholds = OPERATING_POINT, *, default_threshold: float = OPERATING_POINT
    ) -> dict[str, Any]:
        """Same dictionary as :func:`evaluate` for these thresholds."""
        cols, source = _resolve_thresholds(threshold, self._attrs, default_threshold)
        counts = np.zeros((0, 1, 4), np.int64)
        if self._attrs:
            thr = np.concatenate(list(cols.values()))[self._thr_index]  # (A, W+1)
            idx = np.searchsorted(self._s, thr, side="left")  # samples below = predicted negative
            rows, codes = self._rows, self._codes
            below, fn = self._cum_all[rows, idx, codes], self._cum_grp[rows, idx, codes]
            counts = _confusion(below, fn, self._n_g, self._pos_g)
        st = _Stacked(self._attrs, counts, self._group_auc, cols)
        return _report(
            self.n, self.n_pos, self.auc, threshold, source, st, lambda: self._top(threshold)
        )

    def _top(self, threshold: Any) -> np.ndarray:
        """(4,) counts of everyone at one threshold."""
        idx = int(np.searchsorted(self._s, float(threshold), side="left"))
        fn = int(self._cum_pos[idx])
        tn = idx - fn
        return np.array([tn, self.n - self.n_pos - tn, fn, self.n_pos - fn])

    def _index(self, name: str) -> int:
        if name not in self._attrs:
            raise ValueError(f"attribute {name!r} is not in this table ({', '.join(self._attrs)})")
        return list(self._attrs).index(name)

    def _members(self, name: str | None, code: int | None) -> np.ndarray:
        if name is None:
            return np.ones(self.n, bool)
        i, g = self._index(name), self._attrs[name].n_groups
        if code is None or not -1 <= code < g:
            raise ValueError(f"{name} group code must be -1..{g - 1}, got {code!r}")
        return self._col[i] == (code if code >= 0 else self._cum_all.shape[-1] - 1)

    def roc(
        self, attribute: str | None = None, group_code: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fpr, tpr, thresholds) of one group, or of everyone when ``attribute`` is None.

        As ``sklearn.metrics.roc_curve(drop_intermediate=False)``: thresholds are inf then each
        distinct score, descending; a rate is nan throughout when its class is absent.
        """
        m = self._members(attribute, group_code)
        s, y = self._s[m][::-1], self._y[m][::-1]  # descending
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1] if len(s) else np.zeros(0, int)
        tps = np.r_[0, np.cumsum(y)[last]]
        fps = np.r_[0, last + 1 - tps[1:]]
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = tps / tps[-1] if tps[-1] else np.full(len(tps), math.nan)
            fpr = fps / fps[-1] if fps[-1] else np.full(len(fps), math.nan)
        return fpr, tpr, np.r_[math.inf, s[last]]

    def sweep(self, attribute: str, thresholds: Any) -> dict[str, np.ndarray]:
        """Per-group rates at many common thresholds, for metric-vs-threshold plots.

        Returns ``threshold`` (T,), ``tpr``/``fpr``/``selection_rate``/``accuracy`` (G, T) with nan
        where undefined, and ``dpd``/``deodds`` (T,) with the report's semantics.
        """
        t = np.asarray(thresholds, dtype=np.float64).ravel()
        if not np.isfinite(t).all():
            raise ValueError("sweep thresholds must be finite")
        i, g = self._index(attribute), self._attrs[attribute].n_groups
        idx = np.searchsorted(self._s, t, side="left")
        below, fn = self._cum_all[i, idx, :g], self._cum_grp[i, idx, :g]  # (T, G)
        r = _group_rates(_confusion(below, fn, self._cum_all[i, -1, :g], self._cum_grp[i, -1, :g]))
        gaps = _gaps(r)
        table = dict(zip(_RATE_NAMES, np.ascontiguousarray(r.table.T), strict=True))  # (G, T) each
        out = {"threshold": t} | {k: table[k] for k in ("tpr", "fpr", "selection_rate", "accuracy")}
        return out | {"dpd": gaps.dpd, "deodds": gaps.deodds}
