"""Cached test-set scores of one model (or one scored cohort), with fast fairness reports.

Every number comes from :mod:`fairmoe.metrics`; this module only reads the scores file, keeps one
:class:`~fairmoe.metrics.ScoreTable` per score set and memoises reports and bootstrap intervals, so a
threshold slider never touches the model and rarely recomputes anything.
"""

from __future__ import annotations

import csv
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fairmoe.metrics import ScoreTable, Thresholds, bootstrap_ci, choose_thresholds
from fairmoe.schema import ATTRIBUTE_NAMES, attribute

__all__ = ["ScoreSet", "ScoresError", "threshold_key"]

N_BOOT = 1000  # bootstrap resamples: about 0.1 s for 2,000 cases, and CIs stable to ~0.005
REPORT_CACHE = 256  # reports kept per score set (a slider has ~1,000 positions)
THRESHOLD_CI_METRICS = ("accuracy", "dpd", "deodds", "group_tpr", "group_fpr")
AUC_CI_METRICS = ("auc", "es_auc", "group_auc")


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
    table: ScoreTable = field(init=False)
    _reports: OrderedDict = field(init=False, default_factory=OrderedDict)
    _cis: dict = field(init=False, default_factory=dict)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.table = ScoreTable(self.y, self.scores, self.attrs)

    @property
    def n(self) -> int:
        return len(self.y)

    @classmethod
    def from_csv(cls, path: str | Path, name: str | None = None) -> ScoreSet:
        """Read a ``*.scores.csv`` (id,label,score,...,race,gender,ethnicity,language[,load_e*])."""
        path = Path(path)
        if not path.is_file():
            raise ScoresError(f"{path}: scores file not found")
        try:
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                cols = reader.fieldnames or []
                rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as e:
            raise ScoresError(f"{path}: not a readable CSV ({e})") from None
        missing = [c for c in ("label", "score", *ATTRIBUTE_NAMES) if c not in cols]
        if missing:
            raise ScoresError(f"{path}: missing columns {missing}")
        if not rows:
            raise ScoresError(f"{path}: no rows")
        load_cols = sorted(
            (c for c in cols if c.startswith("load_e") and c[6:].isdigit()),
            key=lambda c: int(c[6:]),
        )
        try:
            y = np.array([int(float(r["label"])) for r in rows])
            s = np.array([float(r["score"]) for r in rows])
            attrs = {a: np.array([int(float(r[a])) for r in rows]) for a in ATTRIBUTE_NAMES}
            loads = (
                np.array([[float(r[c]) for c in load_cols] for r in rows]) if load_cols else None
            )
        except (TypeError, ValueError) as e:
            raise ScoresError(f"{path}: non-numeric value ({e})") from None
        ids = [r.get("id") or str(i) for i, r in enumerate(rows)]
        try:
            return cls(name or path.name.removesuffix(".scores.csv"), ids, y, s, attrs, loads)
        except ValueError as e:  # fairmoe.metrics input checks
            raise ScoresError(f"{path}: {e}") from None

    def report(self, threshold: Thresholds = 0.5) -> dict[str, Any]:
        """``fairmoe.metrics.evaluate`` report at ``threshold``, memoised."""
        key = threshold_key(threshold)
        with self._lock:
            hit = self._reports.get(key)
            if hit is not None:
                self._reports.move_to_end(key)
                return hit
        rep = self.table.report(threshold)
        with self._lock:
            self._reports[key] = rep
            while len(self._reports) > REPORT_CACHE:
                self._reports.popitem(last=False)
        return rep

    def auc_ci(self, attr: str) -> dict[str, Any]:
        """Bootstrap CIs of AUC, ES-AUC and group AUCs (threshold-free), memoised."""
        return self._ci(("auc", attr), attr, 0.5, AUC_CI_METRICS)

    def threshold_ci(self, attr: str, threshold: Thresholds) -> dict[str, Any]:
        """Bootstrap CIs of accuracy, DPD, DEOdds, group TPR/FPR at ``threshold``, memoised."""
        return self._ci(
            ("thr", attr, threshold_key(threshold)), attr, threshold, THRESHOLD_CI_METRICS
        )

    def cached_threshold_ci(self, attr: str, threshold: Thresholds) -> dict[str, Any] | None:
        return self._cis.get(("thr", attr, threshold_key(threshold)))

    def _ci(self, key: tuple, attr: str, threshold: Thresholds, metrics: Sequence[str]) -> dict:
        hit = self._cis.get(key)
        if hit is None:
            hit = bootstrap_ci(
                self.y,
                self.scores,
                {attr: self.attrs[attr]},
                threshold=threshold,
                metrics=metrics,
                n_boot=N_BOOT,
            )
            self._cis[key] = hit
        return hit

    def choose(self, attr: str, strategy: str, cost_ratio: float) -> list[float]:
        """Per-group thresholds of a What-If-Tool strategy (``fairmoe.metrics.choose_thresholds``)."""
        a = attribute(attr)
        t = choose_thresholds(
            self.y,
            self.scores,
            self.attrs[attr],
            strategy=strategy,  # type: ignore[arg-type]
            cost_ratio=cost_ratio,
            n_groups=a.n_groups,
        )
        return [float(v) for v in t]

    def roc(self, attr: str | None = None, code: int | None = None) -> tuple[list, list]:
        """(fpr, tpr) lists of one group (or everyone), empty when a class is missing."""
        fpr, tpr, _ = self.table.roc(attr, code)
        if len(fpr) == 0 or math.isnan(float(fpr[-1])) or math.isnan(float(tpr[-1])):
            return [], []
        return fpr.tolist(), tpr.tolist()

    def mean_loads(self, attr: str) -> dict[str, list[float]] | None:
        """Mean expert load per group of ``attr``: {group name: [E floats]}; None without loads."""
        if self.loads is None:
            return None
        a = attribute(attr)
        codes = self.attrs[attr]
        out = {}
        for g, gname in enumerate(a.groups):
            m = codes == g
            if m.any():
                out[gname] = self.loads[m].mean(axis=0).tolist()
        return out
