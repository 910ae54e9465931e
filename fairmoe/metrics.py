"""Fairness metrics with FairCLIP's semantics: AUC, group AUC, ES-AUC, ES-ACC, DPD, DEOdds.

FairCLIP's ``evalute_comprehensive_perf`` (see notes/fair-moe-and-fairclip.md 2.5), re-implemented in
numpy, plus a fast path for threshold sliders (:class:`ScoreTable`), What-If-Tool threshold strategies
(:func:`choose_thresholds`) and bootstrap confidence intervals (:func:`bootstrap_ci`).

Conventions shared by every function here:

- ``y`` (n,) 0/1 labels, ``scores`` (n,) glaucoma probabilities (any finite floats work),
  ``attrs`` maps attribute names of :data:`fairmoe.schema.ATTRIBUTES` to (n,) integer codes.
- A prediction is positive when ``score >= threshold`` (FairCLIP's ``preds >= 0.5``).
- Code -1 (unknown) is left out of that attribute's groups but kept in overall metrics.
- A group with no members (a code nobody has) is listed with n = 0 and left out of DPD, DEOdds,
  ES-AUC and ES-ACC, as fairlearn only sees the groups present in the data.
- Undefined values (AUC of a one-class group, TPR without positives, ...) are ``float('nan')`` in the
  small array functions and ``None`` in report dictionaries, so ``json.dumps(report,
  allow_nan=False)`` works.
- ES-AUC and ES-ACC sum over the groups whose value is defined. FairCLIP would return nan if one
  group lacked a class; skipping it keeps the number usable and the group's ``auc`` shows None.
- DPD and DEOdds follow fairlearn 0.15 exactly, including one surprise: fairlearn computes TPR and
  FPR with ``sklearn.metrics.confusion_matrix(normalize="true")``, which turns 0/0 into 0. A group
  with no positives therefore counts with TPR 0 (and one with no negatives with FPR 0) in DEOdds,
  which can make DEOdds large for a tiny group. The group's own ``tpr`` is None in the report so
  that a reader can see why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from fairmoe.schema import ATTRIBUTE_NAMES, Attribute, attribute

__all__ = [
    "BOOT_METRICS",
    "STRATEGIES",
    "BootMetric",
    "ScoreTable",
    "Strategy",
    "Thresholds",
    "accuracy",
    "auc",
    "bootstrap_ci",
    "choose_thresholds",
    "deodds",
    "dpd",
    "es_acc",
    "es_auc",
    "evaluate",
    "format_report_table",
    "group_aucs",
]

# One threshold for everything, or per attribute one threshold per group (index = group code).
Thresholds = float | Mapping[str, Sequence[float]]
Strategy = Literal["single", "group", "demographic_parity", "equal_opportunity", "equal_accuracy"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
BootMetric = Literal[
    "auc", "accuracy", "es_auc", "es_acc", "dpd", "deodds", "group_auc", "group_tpr", "group_fpr"
]
BOOT_METRICS: tuple[str, ...] = get_args(BootMetric)

_BOOT_CELLS = 1_000_000  # resamples x samples per bootstrap chunk: bounds memory at about 8 MB


# ----------------------------------------------------------------------------- input checks


def _check_inputs(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores; return (bool labels, float64 scores)."""
    y = np.asarray(y)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ValueError(
            f"y and scores must be 1-D of equal length; got shapes {y.shape}, {s.shape}"
        )
    if len(y) == 0:
        raise ValueError("y and scores are empty: nothing to evaluate")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        raise ValueError(f"y must hold 0/1 labels; found {np.unique(y[bad])[:5].tolist()}")
    finite = np.isfinite(s)
    if not finite.all():
        raise ValueError(
            f"scores must be finite; {int((~finite).sum())} are NaN or inf "
            f"(first at index {int(np.argmin(finite))})"
        )
    return y.astype(bool), s


def _check_codes(name: str, codes: Any, n: int, n_groups: int) -> np.ndarray:
    c = np.asarray(codes)
    if c.shape != (n,):
        raise ValueError(f"{name} codes have shape {c.shape}; expected ({n},) like y")
    if c.dtype.kind == "f" and np.array_equal(c, np.round(c)):
        c = c.astype(np.int64)
    if c.dtype.kind not in "iub":
        raise ValueError(f"{name} codes must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    bad = (c < -1) | (c >= n_groups)
    if bad.any():
        raise ValueError(
            f"{name} codes must be -1 (unknown) or 0..{n_groups - 1}; "
            f"found {np.unique(c[bad])[:5].tolist()}"
        )
    return c


def _check_attrs(attrs: Mapping[str, Any], n: int) -> dict[str, tuple[Attribute, np.ndarray]]:
    """Validate attribute codes; return them in the schema's attribute order."""
    out = {}
    for name in attrs:
        a = attribute(name)  # raises with the list of valid names
        out[name] = (a, _check_codes(f"attrs[{name!r}]", attrs[name], n, a.n_groups))
    return {k: out[k] for k in ATTRIBUTE_NAMES if k in out}


def _finite(value: Any, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {v}")
    return v


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


# ----------------------------------------------------------------------------- small metrics


def _nan_to_none(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def _auc_sorted(s: np.ndarray, y: np.ndarray) -> float:
    """AUC of ascending scores: Mann-Whitney U with ties counted half, as sklearn's trapezoid.

    Exact integer arithmetic up to one correctly rounded division, so every code path that calls it
    (evaluate, ScoreTable, bootstrap) gets bit-identical numbers.
    """
    n, n_pos = len(y), int(np.count_nonzero(y))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(y.astype(np.int64), starts)
    neg = np.diff(np.r_[starts, n]) - pos
    neg_below = np.cumsum(neg) - neg
    return int(np.dot(pos, 2 * neg_below + neg)) / (2 * n_pos * n_neg)


def auc(y: Any, scores: Any) -> float:
    """ROC AUC as ``sklearn.metrics.roc_auc_score``; nan (never an error) when one class is absent."""
    y, s = _check_inputs(y, scores)
    order = np.argsort(s, kind="stable")
    return _auc_sorted(s[order], y[order])


def group_aucs(y: Any, scores: Any, groups: Any, *, n_groups: int | None = None) -> np.ndarray:
    """AUC of each group code 0..n_groups-1 (default: max code + 1); nan where undefined."""
    y, s = _check_inputs(y, scores)
    g = np.asarray(groups)
    n_groups = int(g.max()) + 1 if n_groups is None else n_groups
    g = _check_codes("groups", g, len(y), max(n_groups, 0))
    out = np.full(n_groups, math.nan)
    for k in range(n_groups):
        m = g == k
        if m.any():
            out[k] = auc(y[m], s[m])
    return out


def _equity_scaled(overall: float, group_values: Iterable[float | None]) -> float:
    vals = [v for v in group_values if v is not None and not math.isnan(v)]
    if overall is None or math.isnan(overall):
        return math.nan
    return overall / (1.0 + sum(abs(overall - v) for v in vals))


def es_auc(overall: float, group_values: Iterable[float | None]) -> float:
    """Equity-scaled AUC: AUC / (1 + sum_g |AUC - AUC_g|) over groups with a defined AUC."""
    return _equity_scaled(overall, group_values)


def es_acc(overall: float, group_values: Iterable[float | None]) -> float:
    """Equity-scaled accuracy: ACC / (1 + sum_g |ACC - ACC_g|) over non-empty groups."""
    return _equity_scaled(overall, group_values)


def accuracy(y: Any, scores: Any, *, threshold: float = 0.5) -> float:
    """Accuracy of ``score >= threshold``."""
    y, s = _check_inputs(y, scores)
    return float(np.mean((s >= _finite(threshold, "threshold")) == y))


def _sample_thresholds(groups: np.ndarray, threshold: float | Sequence[float], g: int) -> Any:
    if np.ndim(threshold) == 0:
        return _finite(threshold, "threshold")
    t = np.asarray(threshold, dtype=np.float64)
    if t.shape != (g,) or not np.isfinite(t).all():
        raise ValueError(f"per-group threshold must be {g} finite numbers; got {t.tolist()}")
    return np.r_[t, math.inf][groups]  # index -1 (unknown): left out of every group anyway


def _rate_gaps(
    y: Any, scores: Any, groups: Any, threshold: float | Sequence[float]
) -> tuple[float, float, float]:
    """(selection-rate gap, TPR gap, FPR gap) over present groups, fairlearn semantics."""
    y, s = _check_inputs(y, scores)
    g = np.asarray(groups)
    n_groups = int(g.max()) + 1 if len(g) else 0
    if np.ndim(threshold) == 1:
        n_groups = max(n_groups, len(threshold))
    g = _check_codes("groups", g, len(y), n_groups)
    pred = s >= _sample_thresholds(g, threshold, n_groups)
    counts = _counts_by_code(y, pred, g, n_groups)
    rows = [_group_rates(*c) for c in counts[:n_groups].tolist()]
    return _gaps(rows)


def dpd(y: Any, scores: Any, groups: Any, *, threshold: float | Sequence[float] = 0.5) -> float:
    """Demographic parity difference (fairlearn): max - min selection rate over present groups.

    ``threshold`` is one number or one per group code; code -1 is left out.
    """
    return _rate_gaps(y, scores, groups, threshold)[0]


def deodds(y: Any, scores: Any, groups: Any, *, threshold: float | Sequence[float] = 0.5) -> float:
    """Equalized odds difference (fairlearn, worst case): max(TPR gap, FPR gap) over present groups.

    A group without positives counts with TPR 0 (and without negatives with FPR 0), as in fairlearn.
    """
    _, tpr_gap, fpr_gap = _rate_gaps(y, scores, groups, threshold)
    return max(tpr_gap, fpr_gap)


# ----------------------------------------------------------------------------- report assembly


def _counts_by_code(
    y: np.ndarray, pred: np.ndarray, codes: np.ndarray, n_groups: int
) -> np.ndarray:
    """(G+1, 4) confusion counts (tn, fp, fn, tp) per code; the last row is code -1."""
    col = np.where(codes >= 0, codes, n_groups)
    cell = col * 4 + 2 * y + pred  # 0 tn, 1 fp, 2 fn, 3 tp
    return np.bincount(cell, minlength=4 * (n_groups + 1)).reshape(n_groups + 1, 4)


def _group_rates(tn: int, fp: int, fn: int, tp: int) -> dict[str, Any]:
    n, n_pos, n_neg, n_sel = tn + fp + fn + tp, tp + fn, tn + fp, tp + fp
    return {
        "n": n,
        "n_pos": n_pos,
        "tpr": tp / n_pos if n_pos else None,
        "fpr": fp / n_neg if n_neg else None,
        "ppv": tp / n_sel if n_sel else None,
        "npv": tn / (tn + fn) if tn + fn else None,
        "selection_rate": n_sel / n if n else None,
        "accuracy": (tp + tn) / n if n else None,
        "tn": tn,
        "fp": fp,
        "fn": fn,
        "tp": tp,
    }


def _spread(values: list[float]) -> float:
    return max(values) - min(values) if values else math.nan


def _gaps(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    present = [r for r in rows if r["n"] > 0]
    sel = [r["selection_rate"] for r in present]
    tpr = [r["tpr"] if r["tpr"] is not None else 0.0 for r in present]  # fairlearn: 0/0 -> 0
    fpr = [r["fpr"] if r["fpr"] is not None else 0.0 for r in present]
    return _spread(sel), _spread(tpr), _spread(fpr)


def _section(
    a: Attribute, counts: np.ndarray, aucs: Sequence[float], thr: np.ndarray, overall_auc: float
) -> dict[str, Any]:
    """One attribute's part of the report from its (G+1, 4) counts and (G,) group AUCs."""
    rows = counts.tolist()
    groups = []
    for g, name in enumerate(a.groups):
        r = _group_rates(*rows[g])
        groups.append(
            {
                "name": name,
                "code": g,
                "n": r["n"],
                "n_pos": r["n_pos"],
                "auc": _nan_to_none(aucs[g]),
                **{k: r[k] for k in ("tpr", "fpr", "ppv", "npv", "selection_rate", "accuracy")},
                "threshold": float(thr[g]),
                **{k: r[k] for k in ("tn", "fp", "fn", "tp")},
            }
        )
    tn, fp, fn, tp = (sum(col) for col in zip(*rows, strict=True))
    acc = (tn + tp) / (tn + fp + fn + tp)
    sel_gap, tpr_gap, fpr_gap = _gaps(groups)
    present = [g for g in groups if g["n"] > 0]
    return {
        "es_auc": _nan_to_none(es_auc(overall_auc, aucs)),
        "es_acc": _nan_to_none(es_acc(acc, [g["accuracy"] for g in present])),
        "dpd": _nan_to_none(sel_gap),
        "deodds": _nan_to_none(max(tpr_gap, fpr_gap)),
        "tpr_gap": _nan_to_none(tpr_gap),
        "fpr_gap": _nan_to_none(fpr_gap),
        "accuracy": acc,
        "n_unknown": sum(rows[-1]),
        "groups": groups,
    }


def _report(
    n: int,
    n_pos: int,
    overall_auc: float,
    threshold: Thresholds,
    top: np.ndarray | None,
    sections: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    r = _group_rates(*top.tolist()) if top is not None else {}
    return {
        "n": n,
        "n_pos": n_pos,
        "auc": _nan_to_none(overall_auc),
        "accuracy": r.get("accuracy"),
        "threshold": _threshold_json(threshold),
        **{k: r.get(k) for k in ("tpr", "fpr", "selection_rate", "tn", "fp", "fn", "tp")},
        "attributes": sections,
    }


def evaluate(
    y: Any,
    scores: Any,
    attrs: Mapping[str, Any],
    *,
    threshold: Thresholds = 0.5,
    default_threshold: float = 0.5,
) -> dict[str, Any]:
    """The full JSON-ready fairness report (FairCLIP's ``evalute_comprehensive_perf`` and more).

    ``threshold`` is one number, or ``{attribute: [one threshold per group code]}``; attributes the
    mapping does not name, and members with an unknown code, use ``default_threshold``. With a
    mapping, the overall thresholded numbers (accuracy, tpr, ...) use the named attribute's
    thresholds, and are None when the mapping names several attributes; each attribute section
    always has its own ``accuracy`` (all samples, that attribute's thresholds), the base of ES-ACC.

    Keys: n, n_pos, auc, accuracy, threshold, tpr, fpr, selection_rate, tn, fp, fn, tp, attributes:
    {name: {es_auc, es_acc, dpd, deodds, tpr_gap, fpr_gap, accuracy, n_unknown, groups: [{name,
    code, n, n_pos, auc, tpr, fpr, ppv, npv, selection_rate, accuracy, threshold, tn, fp, fn, tp}]}}.
    This is the plain implementation; :class:`ScoreTable` gives the same numbers faster.
    """
    y, s = _check_inputs(y, scores)
    checked = _check_attrs(attrs, len(y))
    cols, source = _resolve_thresholds(
        threshold, {k: a for k, (a, _) in checked.items()}, default_threshold
    )
    overall_auc = auc(y, s)
    sections, counts_by_attr = {}, {}
    for name, (a, codes) in checked.items():
        pred = s >= cols[name][codes]  # index -1 picks the unknown column
        counts = _counts_by_code(y, pred, codes, a.n_groups)
        aucs = [
            auc(y[codes == g], s[codes == g]) if (codes == g).any() else math.nan
            for g in range(a.n_groups)
        ]
        sections[name] = _section(a, counts, aucs, cols[name], overall_auc)
        counts_by_attr[name] = counts
    if source == "":
        top = _counts_by_code(y, s >= float(threshold), np.zeros(len(y), np.int64), 1)[0]
    else:
        top = None if source is None else counts_by_attr[source].sum(axis=0)
    return _report(len(y), int(y.sum()), overall_auc, threshold, top, sections)


# ----------------------------------------------------------------------------- fast path


@dataclass(frozen=True)
class _AttrTable:
    attr: Attribute
    col: np.ndarray  # (n,) code per sorted sample, unknown -> n_groups
    cum_all: np.ndarray  # (n+1, G+1) members among the i lowest scores
    cum_pos: np.ndarray  # (n+1, G+1) positive members among the i lowest scores
    aucs: tuple[float, ...]  # (G,) cached: AUC does not depend on the threshold


class ScoreTable:
    """Scores sorted once, with per-group cumulative counts, for instant reports at any threshold.

    ``report(threshold)`` equals ``evaluate(y, scores, attrs, threshold=threshold)`` number for
    number; it costs one ``searchsorted`` per attribute instead of a pass over the data.
    """

    def __init__(self, y: Any, scores: Any, attrs: Mapping[str, Any]) -> None:
        y, s = _check_inputs(y, scores)
        checked = _check_attrs(attrs, len(y))
        order = np.argsort(s, kind="stable")
        self._s, self._y = s[order], y[order]  # (n,) ascending scores and their labels
        self.n, self.n_pos = len(y), int(y.sum())
        self.auc = _auc_sorted(self._s, self._y)
        self._cum_pos = np.r_[0, np.cumsum(self._y, dtype=np.int64)]  # (n+1,)
        self._tables: dict[str, _AttrTable] = {}
        for name, (a, codes) in checked.items():
            col = np.where(codes >= 0, codes, a.n_groups)[order]
            onehot = np.zeros((self.n, a.n_groups + 1), np.int64)
            onehot[np.arange(self.n), col] = 1
            cum_all = np.zeros((self.n + 1, a.n_groups + 1), np.int64)
            cum_pos = np.zeros_like(cum_all)
            np.cumsum(onehot, axis=0, out=cum_all[1:])
            np.cumsum(onehot * self._y[:, None], axis=0, out=cum_pos[1:])
            aucs = tuple(
                _auc_sorted(self._s[col == g], self._y[col == g]) for g in range(a.n_groups)
            )
            self._tables[name] = _AttrTable(a, col, cum_all, cum_pos, aucs)

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self._tables)

    def _counts(self, name: str, thr: np.ndarray) -> np.ndarray:
        """(G+1, 4) confusion counts with one threshold per code column."""
        t = self._tables[name]
        j = np.arange(len(thr))
        idx = np.searchsorted(self._s, thr, side="left")  # samples below = predicted negative
        below_all, fn = t.cum_all[idx, j], t.cum_pos[idx, j]
        n_g, pos_g = t.cum_all[-1], t.cum_pos[-1]
        tn = below_all - fn
        return np.stack([tn, (n_g - pos_g) - tn, fn, pos_g - fn], axis=1)

    def report(
        self, threshold: Thresholds = 0.5, *, default_threshold: float = 0.5
    ) -> dict[str, Any]:
        """Same dictionary as :func:`evaluate` for these thresholds."""
        attrs = {k: t.attr for k, t in self._tables.items()}
        cols, source = _resolve_thresholds(threshold, attrs, default_threshold)
        counts = {k: self._counts(k, cols[k]) for k in self._tables}
        sections = {
            k: _section(t.attr, counts[k], t.aucs, cols[k], self.auc)
            for k, t in self._tables.items()
        }
        if source == "":
            idx = int(np.searchsorted(self._s, float(threshold), side="left"))
            fn = int(self._cum_pos[idx])
            tn = idx - fn
            top = np.array([tn, self.n - self.n_pos - tn, fn, self.n_pos - fn])
        else:
            top = None if source is None else counts[source].sum(axis=0)
        return _report(self.n, self.n_pos, self.auc, threshold, top, sections)

    def _members(self, name: str | None, code: int | None) -> np.ndarray:
        if name is None:
            return np.ones(self.n, bool)
        if name not in self._tables:
            raise ValueError(f"attribute {name!r} is not in this table ({', '.join(self._tables)})")
        t = self._tables[name]
        if code is None or not -1 <= code < t.attr.n_groups:
            raise ValueError(f"{name} group code must be -1..{t.attr.n_groups - 1}, got {code!r}")
        return t.col == (code if code >= 0 else t.attr.n_groups)

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
        self._members(attribute, 0)
        tab = self._tables[attribute]
        g = tab.attr.n_groups
        idx = np.searchsorted(self._s, t, side="left")
        below_all, fn = tab.cum_all[idx, :g].T, tab.cum_pos[idx, :g].T  # (G, T)
        n_g, pos_g = tab.cum_all[-1, :g, None], tab.cum_pos[-1, :g, None]  # (G, 1)
        tn = below_all - fn
        tp, fp = pos_g - fn, (n_g - pos_g) - tn
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {
                "threshold": t,
                "tpr": tp / pos_g,
                "fpr": fp / (n_g - pos_g),
                "selection_rate": (tp + fp) / n_g,
                "accuracy": (tp + tn) / n_g,
            }
        present = n_g[:, 0] > 0
        tpr0 = np.nan_to_num(out["tpr"][present])  # fairlearn: 0/0 -> 0
        fpr0 = np.nan_to_num(out["fpr"][present])
        sel = out["selection_rate"][present]
        if present.any():
            out["dpd"] = sel.max(0) - sel.min(0)
            out["deodds"] = np.maximum(tpr0.max(0) - tpr0.min(0), fpr0.max(0) - fpr0.min(0))
        else:
            out["dpd"] = out["deodds"] = np.full(len(t), math.nan)
        return out


# ----------------------------------------------------------------------------- threshold strategies


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

    def rate(c: _Candidates) -> tuple[np.ndarray, int]:  # (rates, denominator)
        n = c.n_pos + c.n_neg
        if strategy == "demographic_parity":
            return (c.tp + c.fp) / n, n
        if strategy == "equal_opportunity":
            return c.tp / c.n_pos, c.n_pos
        return (c.tp + c.n_neg - c.fp) / n, n

    matched = [k for k, c in cands.items() if strategy != "equal_opportunity" or c.n_pos > 0]
    for k in set(cands) - set(matched):
        out[k] = own[k]
    if not matched:
        return out
    rd = [rate(cands[k]) for k in matched]
    tol = max(0.5 / d for _, d in rd) if tolerance is None else _finite(tolerance, "tolerance")
    picks = _match_rates([r for r, _ in rd], [cands[k].cost(cost_ratio) for k in matched], tol)
    for k, p in zip(matched, picks, strict=True):
        out[k] = cands[k].thresholds[p]
    return out


# ----------------------------------------------------------------------------- bootstrap


def _resample_indices(
    rng: np.random.Generator, y: np.ndarray, n_boot: int, resample: str
) -> Iterator[np.ndarray]:
    """(b, n) index chunks: plain = n draws with replacement; stratified = within each class."""
    n = len(y)
    chunk = max(1, _BOOT_CELLS // n)
    classes = [np.flatnonzero(y), np.flatnonzero(~y)]
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        if resample == "plain":
            yield rng.integers(0, n, size=(b, n))
        else:
            yield np.concatenate(
                [c[rng.integers(0, len(c), size=(b, len(c)))] for c in classes if len(c)], axis=1
            )


def _weighted_auc(w: np.ndarray, y: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(b,) AUCs of ascending scores with (m, b) sample counts; same arithmetic as _auc_sorted.

    Counts are whole numbers in float64, so every sum is exact and the result is bit-identical to
    _auc_sorted on the resampled cases.
    """
    if len(w) == 0:
        return np.full(w.shape[1], math.nan)
    pos = w * y[:, None]
    tot = w
    if len(starts) < len(w):  # tied scores: pool each tie block first
        pos, tot = np.add.reduceat(pos, starts, axis=0), np.add.reduceat(w, starts, axis=0)
    neg = tot - pos
    neg_below = np.cumsum(neg, axis=0) - neg
    num = (pos * (2 * neg_below + neg)).sum(axis=0)
    den = 2 * pos.sum(axis=0) * neg.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), math.nan)


def _row_spread(v: np.ndarray, present: np.ndarray) -> np.ndarray:
    hi = np.where(present, v, -math.inf).max(axis=1)
    lo = np.where(present, v, math.inf).min(axis=1)
    return np.where(present.any(axis=1), hi - lo, math.nan)


def _ci(v: np.ndarray, alpha: float) -> dict[str, Any] | None:
    ok = v[~np.isnan(v)]
    if not len(ok):
        return None
    lo, hi = np.quantile(ok, [alpha / 2, 1 - alpha / 2])
    return {"low": float(lo), "high": float(hi), "n_defined": len(ok)}


def bootstrap_ci(
    y: Any,
    scores: Any,
    attrs: Mapping[str, Any],
    *,
    threshold: Thresholds = 0.5,
    default_threshold: float = 0.5,
    metrics: Iterable[BootMetric] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    resample: Literal["plain", "stratified"] = "plain",
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals for the report's headline metrics.

    Each resample is evaluated exactly as :func:`evaluate` would evaluate the resampled cases
    (resampling is done with per-case counts, vectorised over resamples). ``plain`` draws n cases
    with replacement, as fairlearn's MetricFrame does; ``stratified`` keeps the number of positives
    fixed, so the overall AUC is always defined. An interval ``{low, high, n_defined}`` is taken
    over the resamples where the metric is defined (``n_defined`` of ``n_boot``: a small group may
    miss a class in some), and is None if it never is. ``metrics`` picks from :data:`BOOT_METRICS`
    (default: all); ``group_*`` give per-group intervals.
    """
    wanted = set(BOOT_METRICS if metrics is None else metrics)
    if wanted - set(BOOT_METRICS):
        raise ValueError(
            f"unknown metrics {sorted(wanted - set(BOOT_METRICS))}; choose from {BOOT_METRICS}"
        )
    if resample not in ("plain", "stratified"):
        raise ValueError(f"resample must be 'plain' or 'stratified', got {resample!r}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    y, s = _check_inputs(y, scores)
    checked = _check_attrs(attrs, len(y))
    cols, source = _resolve_thresholds(
        threshold, {k: a for k, (a, _) in checked.items()}, default_threshold
    )
    n = len(y)
    order = np.argsort(s, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    ys, ss = y[order], s[order]
    yf = ys.astype(np.float64)
    need_auc = bool(wanted & {"auc", "es_auc", "group_auc"})

    def starts(x: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.r_[True, x[1:] != x[:-1]]) if len(x) else np.zeros(0, np.int64)

    all_starts = starts(ss)
    per_attr = {}  # name -> (members per group, their block starts, (n, 4(G+1)) indicator matrix)
    for name, (a, codes) in checked.items():
        c = codes[order]
        pred = ss >= cols[name][c]
        col = np.where(c >= 0, c, a.n_groups)
        ind = np.zeros((n, 4 * (a.n_groups + 1)))
        ind[np.arange(n), 4 * col + 2 * ys + pred] = 1.0  # tn, fp, fn, tp columns per code
        members = [np.flatnonzero(c == g) for g in range(a.n_groups)]
        per_attr[name] = (a, members, [starts(ss[m]) for m in members], ind)
    if source == "":
        top_pred = ss >= float(threshold)
    elif source is not None:
        top_pred = ss >= cols[source][checked[source][1][order]]
    else:
        top_pred = None

    parts: dict[str, list[np.ndarray]] = {}

    def keep(key: str, v: np.ndarray) -> None:
        parts.setdefault(key, []).append(v)

    rng = np.random.default_rng(seed)
    for idx in _resample_indices(rng, y, n_boot, resample):
        b = len(idx)
        w = np.bincount((rank[idx] * b + np.arange(b)[:, None]).ravel(), minlength=n * b)
        w = w.reshape(n, b).astype(np.float64)  # (n, b) count of each sorted case per resample
        overall = _weighted_auc(w, yf, all_starts) if need_auc else None
        if "auc" in wanted:
            keep("auc", overall)
        if "accuracy" in wanted and top_pred is not None:
            keep("accuracy", ((top_pred == ys) @ w) / n)
        for name, (a, members, st, ind) in per_attr.items():
            cnt = (ind.T @ w).T.reshape(b, a.n_groups + 1, 4)  # (b, G+1, 4) tn fp fn tp
            tn, fp, fn, tp = (cnt[..., i] for i in range(4))
            g_n, g_pos, g_neg = (tn + fp + fn + tp)[:, :-1], (tp + fn)[:, :-1], (tn + fp)[:, :-1]
            present = g_n > 0
            with np.errstate(invalid="ignore", divide="ignore"):
                sel = (tp + fp)[:, :-1] / g_n
                acc_g = (tp + tn)[:, :-1] / g_n
                tpr = np.where(g_pos > 0, tp[:, :-1] / g_pos, math.nan)
                fpr = np.where(g_neg > 0, fp[:, :-1] / g_neg, math.nan)
            if need_auc and wanted & {"es_auc", "group_auc"}:
                aucs = np.stack(
                    [_weighted_auc(w[m], yf[m], s_) for m, s_ in zip(members, st, strict=True)],
                    axis=1,
                )  # (b, G)
                if "es_auc" in wanted:
                    gap = np.nansum(np.abs(overall[:, None] - aucs), axis=1)
                    keep(f"{name}.es_auc", overall / (1 + gap))
                if "group_auc" in wanted:
                    keep(f"{name}.group_auc", aucs)
            if "es_acc" in wanted:
                acc = (tn + tp).sum(axis=1) / n
                gap = np.where(present, np.abs(acc[:, None] - acc_g), 0.0).sum(axis=1)
                keep(f"{name}.es_acc", acc / (1 + gap))
            if "dpd" in wanted:
                keep(f"{name}.dpd", _row_spread(sel, present))
            if "deodds" in wanted:
                tpr0, fpr0 = np.nan_to_num(tpr), np.nan_to_num(fpr)  # fairlearn: 0/0 -> 0
                keep(
                    f"{name}.deodds",
                    np.maximum(_row_spread(tpr0, present), _row_spread(fpr0, present)),
                )
            if "group_tpr" in wanted:
                keep(f"{name}.group_tpr", tpr)
            if "group_fpr" in wanted:
                keep(f"{name}.group_fpr", fpr)

    vals = {k: np.concatenate(v) for k, v in parts.items()}
    out: dict[str, Any] = {
        "n_boot": n_boot,
        "alpha": alpha,
        "resample": resample,
        "seed": seed,
        "threshold": _threshold_json(threshold),
    }
    for key in ("auc", "accuracy"):
        if key in wanted:
            out[key] = _ci(vals[key], alpha) if key in vals else None
    out["attributes"] = {}
    for name, (a, *_) in per_attr.items():
        sec: dict[str, Any] = {
            k: _ci(vals[f"{name}.{k}"], alpha)
            for k in ("es_auc", "es_acc", "dpd", "deodds")
            if k in wanted
        }
        group_keys = [k for k in ("group_auc", "group_tpr", "group_fpr") if k in wanted]
        if group_keys:
            sec["groups"] = [
                {"name": gname, "code": g}
                | {k[6:]: _ci(vals[f"{name}.{k}"][:, g], alpha) for k in group_keys}
                for g, gname in enumerate(a.groups)
            ]
        out["attributes"][name] = sec
    return out


# ----------------------------------------------------------------------------- text output


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def format_report_table(report: Mapping[str, Any]) -> str:
    """Markdown: a summary line, one row per attribute (equity and gaps), one row per group."""
    thr = report["threshold"]
    lines = [
        f"Overall: n = {report['n']}, positives = {report['n_pos']}, AUC {_fmt(report['auc'])}, "
        f"accuracy {_fmt(report['accuracy'])} at threshold "
        f"{_fmt(thr) if not isinstance(thr, Mapping) else 'per group'}",
        "",
        "| Attribute | ES-AUC | ES-ACC | DPD | DEOdds | Unknown |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, sec in report["attributes"].items():
        lines.append(
            f"| {name} | {_fmt(sec['es_auc'])} | {_fmt(sec['es_acc'])} | {_fmt(sec['dpd'])} "
            f"| {_fmt(sec['deodds'])} | {sec['n_unknown']} |"
        )
    lines += [
        "",
        "| Attribute | Group | n | Positives | AUC | TPR | FPR | Selection rate | Accuracy | Threshold |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, sec in report["attributes"].items():
        for g in sec["groups"]:
            lines.append(
                f"| {name} | {g['name']} | {g['n']} | {g['n_pos']} | {_fmt(g['auc'])} "
                f"| {_fmt(g['tpr'])} | {_fmt(g['fpr'])} | {_fmt(g['selection_rate'])} "
                f"| {_fmt(g['accuracy'])} | {_fmt(g['threshold'])} |"
            )
    return "\n".join(lines)
