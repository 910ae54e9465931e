"""The scores CSV (one row per case) and :class:`ScoreSet`, its in-memory form with fast reports.

Written by training (the test split), by cohort scoring and by ``fairmoe.score``; read by the app,
the audit and the report builder. Columns: ``id, label, score, cos_non_glaucoma, cos_glaucoma``,
the four attributes as integer codes (-1 unknown), then optional ``load_e{k}`` (share of patch
tokens image expert k kept) and ``gate_e{k}`` (its mean gate weight over the patches), and any
extra columns a writer adds (ignored by the reader).
Every number a ScoreSet reports comes from :mod:`fairmoe.metrics`; this module memoises them so
that a threshold slider never touches the model and rarely recomputes anything.
"""

from __future__ import annotations

import csv
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fairmoe.guardrails import result_warnings
from fairmoe.metrics import ScoreTable, Thresholds, bootstrap_ci, choose_thresholds
from fairmoe.metrics.reliability import Band, band_rate
from fairmoe.metrics.result import FairnessResult, _from_report
from fairmoe.metrics.thresholds import threshold_for_sensitivity
from fairmoe.schema import ATTRIBUTE_NAMES, OPERATING_POINT, attribute, attribute_codes

__all__ = [
    "BASE_COLUMNS",
    "ScoreSet",
    "ScoresError",
    "read_scores",
    "threshold_key",
    "write_scores",
]

BASE_COLUMNS = ("id", "label", "score", "cos_non_glaucoma", "cos_glaucoma", *ATTRIBUTE_NAMES)
N_BOOT = 1000  # bootstrap resamples: about 0.1 s for 2,000 cases, and CIs stable to ~0.005
REPORT_CACHE = 256  # reports kept per score set (a slider has ~1,000 positions)
THRESHOLD_CI_METRICS = (
    "accuracy",
    "dpd",
    "deodds",
    "group_tpr",
    "group_fpr",
    "group_ppv",
    "group_npv",
)
AUC_CI_METRICS = ("auc", "es_auc", "group_auc", "ece", "group_ece")  # threshold-free
CIMode = Literal["none", "auc", "all"]


class ScoresError(ValueError):
    """A scores file is missing or malformed; the message names the file."""


def threshold_key(threshold: Thresholds) -> tuple:
    """A hashable, rounding-stable key for a threshold or a per-group threshold mapping."""
    if isinstance(threshold, Mapping):
        return tuple(
            sorted((k, tuple(round(float(v), 9) for v in t)) for k, t in threshold.items())
        )
    return (round(float(threshold), 9),)


@dataclass(eq=False)
class ScoreSet:
    """Labels, calibrated scores, attribute codes and expert loads of one model on one set."""

    name: str
    ids: list[str]
    y: np.ndarray  # (n,) 0/1
    scores: np.ndarray  # (n,) calibrated P(glaucoma)
    attrs: dict[str, np.ndarray]  # attribute -> (n,) codes, -1 unknown
    loads: np.ndarray | None = None  # (n, E) share of patch tokens each image expert kept
    cosines: np.ndarray | None = None  # (n, 2) raw cosines to the prompts, when known
    gate_loads: np.ndarray | None = None  # (n, E) mean gate weight of each image expert
    table: ScoreTable = field(init=False)
    _reports: OrderedDict = field(init=False, default_factory=OrderedDict)
    _cis: dict = field(init=False, default_factory=dict)
    _crossed: dict = field(init=False, default_factory=dict)  # crossed attribute -> ScoreTable
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.table = ScoreTable(self.y, self.scores, self.attrs)

    @property
    def n(self) -> int:
        return len(self.y)

    @classmethod
    def from_csv(cls, path: str | Path, name: str | None = None) -> ScoreSet:
        """Read a scores CSV (see the module docstring); :func:`read_scores`."""
        return read_scores(path, name)

    def codes(self, attr: str) -> np.ndarray:
        """(n,) group codes of an attribute or of two crossed ("race*gender"), -1 unknown."""
        return attribute_codes(self.attrs, attr)

    def _table(self, name: str) -> ScoreTable:
        """The base table, or a crossed attribute's own table (built on first use)."""
        if name in self.attrs:
            return self.table
        with self._lock:
            hit = self._crossed.get(name)
        if hit is None:
            hit = ScoreTable(self.y, self.scores, {name: self.codes(name)})
            with self._lock:
                hit = self._crossed.setdefault(name, hit)
        return hit

    def report(self, threshold: Thresholds = OPERATING_POINT, attr: str | None = None) -> dict:
        """The metric engine's report at ``threshold``, memoised: every base attribute, or only
        ``attr`` when it is crossed. Views read :meth:`fairness` instead."""
        name = attribute(attr).name if attr else None
        table_name = name if name and name not in self.attrs else None
        key = (table_name, threshold_key(threshold))
        with self._lock:
            hit = self._reports.get(key)
            if hit is not None:
                self._reports.move_to_end(key)
                return hit
        rep = (
            self._table(table_name).report(threshold)
            if table_name
            else self.table.report(threshold)
        )
        with self._lock:
            self._reports[key] = rep
            while len(self._reports) > REPORT_CACHE:
                self._reports.popitem(last=False)
        return rep

    def fairness(
        self, attr: str, threshold: Thresholds = OPERATING_POINT, *, ci: CIMode = "auc"
    ) -> FairnessResult:
        """The typed fairness result of one attribute (or two crossed) at ``threshold``.

        ``ci``: "none"; "auc" (default) the threshold-free intervals (AUC, ES-AUC, ECE: cached
        per set) plus threshold intervals already computed for these thresholds; "all" computes
        the threshold intervals too (about 0.1 s for 2,000 cases, then cached).
        """
        name = attribute(attr).name
        rep = self.report(threshold, name)
        auc_ci = self.auc_ci(name) if ci != "none" else None
        thr_ci = None
        if ci == "all":
            thr_ci = self.threshold_ci(name, threshold)
        elif ci == "auc":
            thr_ci = self.cached_threshold_ci(name, threshold)
        res = _from_report(
            rep,
            attribute(name),
            name,
            model=self.name,
            y=self.y,
            p=self.scores,
            codes=self.codes(name),
            auc_ci=auc_ci,
            thr_ci=thr_ci,
        )
        return replace(res, warnings=result_warnings(res))

    def threshold_for_sensitivity(self, target: float) -> float:
        """The highest threshold reaching overall sensitivity ``target`` (see
        :func:`fairmoe.metrics.threshold_for_sensitivity`)."""
        return threshold_for_sensitivity(self.y, self.scores, target)

    def band(self, attr: str | None, code: int | None, low: float, high: float) -> Band:
        """Observed glaucoma rate among the cases of one group (everyone: ``attr`` None) scored
        in [low, high)."""
        m = slice(None) if attr is None else self.codes(attr) == code
        return band_rate(self.y[m], self.scores[m], low, high)

    def auc_ci(self, attr: str) -> dict[str, Any]:
        """Bootstrap CIs of AUC, ES-AUC and group AUCs (threshold-free), memoised."""
        attr = attribute(attr).name
        return self._ci(("auc", attr), attr, OPERATING_POINT, AUC_CI_METRICS)

    def threshold_ci(self, attr: str, threshold: Thresholds) -> dict[str, Any]:
        """Bootstrap CIs of accuracy, DPD, DEOdds, group TPR/FPR at ``threshold``, memoised."""
        attr = attribute(attr).name
        return self._ci(
            ("thr", attr, threshold_key(threshold)), attr, threshold, THRESHOLD_CI_METRICS
        )

    def cached_threshold_ci(self, attr: str, threshold: Thresholds) -> dict[str, Any] | None:
        return self._cis.get(("thr", attribute(attr).name, threshold_key(threshold)))

    def auc_ci_job(self, attr: str) -> dict[str, Any]:
        """The keyword arguments of :func:`bootstrap_ci` behind :meth:`auc_ci` (for computing it
        elsewhere, e.g. in another process, then :meth:`remember_auc_ci`)."""
        return self._ci_job(attr, OPERATING_POINT, AUC_CI_METRICS)

    def remember_auc_ci(self, attr: str, ci: dict[str, Any]) -> None:
        """Memoise ``bootstrap_ci(**auc_ci_job(attr))`` computed elsewhere."""
        self._cis.setdefault(("auc", attr), ci)

    def _ci_job(self, attr: str, threshold: Thresholds, metrics: Sequence[str]) -> dict[str, Any]:
        return {
            "y": self.y,
            "scores": self.scores,
            "attrs": {attr: self.codes(attr)},
            "threshold": threshold,
            "metrics": metrics,
            "n_boot": N_BOOT,
        }

    def _ci(self, key: tuple, attr: str, threshold: Thresholds, metrics: Sequence[str]) -> dict:
        hit = self._cis.get(key)
        if hit is None:
            hit = self._cis[key] = bootstrap_ci(**self._ci_job(attr, threshold, metrics))
        return hit

    def choose(self, attr: str, strategy: str, cost_ratio: float) -> list[float]:
        """Per-group thresholds of a What-If-Tool strategy (``fairmoe.metrics.choose_thresholds``)."""
        a = attribute(attr)
        t = choose_thresholds(
            self.y,
            self.scores,
            self.codes(attr),
            strategy=strategy,  # type: ignore[arg-type]
            cost_ratio=cost_ratio,
            n_groups=a.n_groups,
        )
        return [float(v) for v in t]

    def roc(self, attr: str | None = None, code: int | None = None) -> tuple[list, list]:
        """(fpr, tpr) lists of one group (or everyone), empty when a class is missing."""
        name = attribute(attr).name if attr else None
        table = self._table(name) if name and name not in self.attrs else self.table
        fpr, tpr, _ = table.roc(name, code)
        if len(fpr) == 0 or math.isnan(float(fpr[-1])) or math.isnan(float(tpr[-1])):
            return [], []
        return fpr.tolist(), tpr.tolist()

    def mean_loads(self, attr: str, *, gate: bool = False) -> dict[str, list[float]] | None:
        """Mean expert load per group of ``attr``: {group name: [E floats]}; None without loads.

        ``gate``: the mean gate weight each expert gives a patch (``gate_e*`` columns) instead of
        the share of patches it kept (``load_e*``), which looks balanced when the gates are not.
        """
        values = self.gate_loads if gate else self.loads
        if values is None:
            return None
        a = attribute(attr)
        codes = self.codes(attr)
        out = {}
        for g, gname in enumerate(a.groups):
            m = codes == g
            if m.any():
                out[gname] = values[m].mean(axis=0).tolist()
        return out


def write_scores(
    path: str | Path,
    scores: ScoreSet,
    *,
    extra: Mapping[str, Sequence[Any]] | None = None,
    failed: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write ``scores`` as a scores CSV; ``extra`` adds columns (one value per case).

    ``failed`` rows (cases that could not be scored) are appended with only the ``id`` and the
    extra columns they name (e.g. ``error``), so a cohort's download lists every input row; the
    reader skips rows without a score.
    """
    path = Path(path)
    extra = dict(extra or {})
    loads = scores.loads if scores.loads is not None else np.zeros((scores.n, 0))
    gates = scores.gate_loads if scores.gate_loads is not None else np.zeros((scores.n, 0))
    cos = scores.cosines
    header = [*BASE_COLUMNS, *(f"load_e{e}" for e in range(loads.shape[1]))]
    header += [f"gate_e{e}" for e in range(gates.shape[1])]
    header += [k for k in extra if k not in header]
    header += sorted({k for row in failed for k in row} - set(header))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i, sid in enumerate(scores.ids):
            row = [sid, int(scores.y[i]), f"{scores.scores[i]:.6f}"]
            row += [f"{c:.6f}" for c in cos[i]] if cos is not None else ["", ""]
            row += [int(scores.attrs[a][i]) for a in ATTRIBUTE_NAMES]
            row += [f"{v:.4f}" for v in loads[i]]
            row += [f"{v:.4f}" for v in gates[i]]
            row += [extra[k][i] for k in header[len(row) :]] if extra else []
            w.writerow(row)
        for bad in failed:
            w.writerow([bad.get(k, "") for k in header])
    return path


def _numbers(values: Any) -> np.ndarray:
    """float64 of a CSV column, each field as Python's float() reads it (ValueError if one is
    not a number). pandas' C reader has parsed a clean column (its default converter gives
    float()'s values: tests/fairmoe/test_scores.py); one with text in it, spaces included, is
    parsed here field by field."""
    if values.dtype.kind in "fiu":
        return values.to_numpy(np.float64)
    return np.asarray(values.fillna(""), dtype=str).astype(np.float64)


def _blank(values: Any) -> Any:
    """Where a CSV column's fields are empty (or spaces only)."""
    if values.dtype.kind in "fiu":
        return values.isna()
    return values.isna() | (values.astype(str).str.strip() == "")


def _integers(values: Any) -> np.ndarray:
    """int64 of CSV fields as int(float(v)) would give (ValueError for nan or inf)."""
    x = _numbers(values)
    if not np.isfinite(x).all():
        raise ValueError(f"{x[~np.isfinite(x)][0]} where a whole number belongs")
    return x.astype(np.int64)


def read_scores(path: str | Path, name: str | None = None) -> ScoreSet:
    """Read a scores CSV into a :class:`ScoreSet`; :class:`ScoresError` names what is wrong.

    Parsed by pandas' C reader (numbers as numbers; a column with text in it field by field,
    see :func:`_numbers`): 0.8 s instead of 2.3 s with the csv module for the 67 shipped runs,
    which the app reads at start."""
    import pandas as pd  # a dependency of gradio already; only readers of score files need it

    path = Path(path)
    if not path.is_file():
        raise ScoresError(f"{path}: scores file not found")
    try:
        table = pd.read_csv(path, dtype={"id": str}, keep_default_na=False, na_values=[""],
                            encoding="utf-8")  # fmt: skip
    except pd.errors.EmptyDataError:
        table = pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as e:
        raise ScoresError(f"{path}: not a readable CSV ({e})") from None
    cols = [str(c) for c in table.columns]
    missing = [c for c in ("label", "score", *ATTRIBUTE_NAMES) if c not in cols]
    if missing:
        raise ScoresError(f"{path}: missing columns {missing}")
    table = table[~_blank(table["score"])]
    if table.empty:
        raise ScoresError(f"{path}: no rows")
    load_cols, gate_cols = (
        sorted((c for c in cols if c.startswith(p) and c[6:].isdigit()), key=lambda c: int(c[6:]))
        for p in ("load_e", "gate_e")
    )
    try:
        y = _integers(table["label"])
        s = _numbers(table["score"])
        attrs = {a: _integers(table[a]) for a in ATTRIBUTE_NAMES}
        loads, gates = (
            np.stack([_numbers(table[c]) for c in cs], axis=1) if cs else None
            for cs in (load_cols, gate_cols)
        )
        cos = [table[c] for c in ("cos_non_glaucoma", "cos_glaucoma") if c in cols]
        complete = len(cos) == 2 and not any(_blank(c).any() for c in cos)
        cosines = np.stack([_numbers(c) for c in cos], axis=1) if complete else None
    except (TypeError, ValueError) as e:
        raise ScoresError(f"{path}: non-numeric value ({e})") from None
    given = table["id"].fillna("").tolist() if "id" in cols else [""] * len(table)
    ids = [i or str(k) for k, i in enumerate(given)]
    try:
        return ScoreSet(
            name or path.name.removesuffix(".scores.csv"), ids, y, s, attrs, loads, cosines, gates
        )
    except ValueError as e:  # fairmoe.metrics input checks
        raise ScoresError(f"{path}: {e}") from None
