"""One typed fairness result: :class:`FairnessResult`, what every view of a fairness report reads.

As fairlearn's ``MetricFrame`` is for its users: overall figures, one attribute's equity figures
and a :class:`GroupRow` per group (or intersectional cell), each with its bootstrap interval where
one was computed. :meth:`FairnessResult.to_json` / :meth:`FairnessResult.from_json` are the only
places where its JSON keys are spelled; :func:`_from_report` is the only reader of the metric
engine's report dictionary (:func:`fairmoe.metrics.evaluate`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

from fairmoe.metrics.reliability import (
    CONFIDENT_BANDS,
    Band,
    band_rate,
    citl,
    ece,
    reliability_curve,
)
from fairmoe.schema import Attribute

__all__ = [
    "MIN_GROUP_N",
    "Caveat",
    "FairnessResult",
    "GroupCI",
    "GroupRow",
    "Interval",
    "ReliabilityCurve",
    "group_flag",
]

MIN_GROUP_N = 30  # below this a group's AUC moves by ~0.1 with a handful of patients

Level = Literal["info", "caution", "warning"]


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval over the ``n_defined`` resamples where the metric exists."""

    low: float
    high: float
    n_defined: int

    def to_json(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "n_defined": self.n_defined}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Interval | None:
        return None if d is None else cls(float(d["low"]), float(d["high"]), int(d["n_defined"]))

    def flipped(self) -> Interval:
        """The interval of 1 - x (FNR from TPR)."""
        return Interval(1 - self.high, 1 - self.low, self.n_defined)


@dataclass(frozen=True)
class Caveat:
    """A guardrail warning attached to a result (see :mod:`fairmoe.guardrails`)."""

    level: Level
    code: str
    message: str
    group: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "code": self.code,
            "group": self.group,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Caveat:
        return cls(d["level"], d["code"], d["message"], d.get("group"))


@dataclass(frozen=True)
class ReliabilityCurve:
    """A reliability diagram: per probability bin its centre, mean prediction, observed glaucoma
    rate (None where the bin is empty) and count."""

    centre: tuple[float, ...]
    mean_predicted: tuple[float | None, ...]
    observed: tuple[float | None, ...]
    count: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ReliabilityCurve:
        return cls(*(tuple(d[f.name]) for f in fields(cls)))

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray) -> ReliabilityCurve:
        return cls.from_json(reliability_curve(y, p))


_GROUP_CI_KEYS = ("auc", "tpr", "fpr", "fnr", "ppv", "npv", "ece")


@dataclass(frozen=True)
class GroupCI:
    """A group's intervals; None where not computed (threshold CIs are on demand) or undefined."""

    auc: Interval | None = None
    tpr: Interval | None = None
    fpr: Interval | None = None
    fnr: Interval | None = None
    ppv: Interval | None = None
    npv: Interval | None = None
    ece: Interval | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: _ci_json(getattr(self, k)) for k in _GROUP_CI_KEYS}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> GroupCI:
        return cls(**{k: Interval.from_json((d or {}).get(k)) for k in _GROUP_CI_KEYS})


def group_flag(n: int, auc: float | None) -> str:
    """A group's reliability, defined once: 'no cases', 'undefined' (one class: AUC undefined),
    'too small' (n < MIN_GROUP_N), 'undefined, too small', or '' for a usable group."""
    if n == 0:
        return "no cases"
    flags = []
    if auc is None:
        flags.append("undefined")
    if n < MIN_GROUP_N:
        flags.append("too small")
    return ", ".join(flags)


# The rates of a group row, as the engine's report and the JSON name them.
_RATES = ("auc", "tpr", "fpr", "ppv", "npv", "selection_rate", "accuracy")


@dataclass(frozen=True)
class GroupRow:
    """One group (or intersectional cell) at the result's thresholds."""

    name: str
    code: int
    n: int
    n_pos: int
    threshold: float
    auc: float | None
    tpr: float | None  # sensitivity
    fpr: float | None
    fnr: float | None  # under-diagnosis: 1 - TPR
    ppv: float | None
    npv: float | None
    selection_rate: float | None
    accuracy: float | None
    ece: float | None  # expected calibration error, 10 bins, calibrated probability
    citl: float | None  # calibration-in-the-large: mean probability minus prevalence
    tn: int
    fp: int
    fn: int
    tp: int
    reliability: ReliabilityCurve
    bands: tuple[Band, ...] = ()  # the confident bands (reliability.CONFIDENT_BANDS)
    ci: GroupCI = field(default_factory=GroupCI)

    @property
    def flag(self) -> str:
        return group_flag(self.n, self.auc)

    @property
    def prevalence(self) -> float | None:
        return self.n_pos / self.n if self.n else None

    def to_json(self) -> dict[str, Any]:
        out = {"name": self.name, "code": self.code, "n": self.n, "n_pos": self.n_pos}
        out |= {k: getattr(self, k) for k in _RATES}
        out |= {"threshold": self.threshold, "fnr": self.fnr, "ece": self.ece, "citl": self.citl}
        out |= {k: getattr(self, k) for k in ("tn", "fp", "fn", "tp")}
        return out | {
            "reliability": self.reliability.to_json(),
            "bands": [b.to_json() for b in self.bands],
            "flag": self.flag,
            "ci": self.ci.to_json(),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GroupRow:
        return cls(
            name=d["name"],
            code=int(d["code"]),
            n=int(d["n"]),
            n_pos=int(d["n_pos"]),
            threshold=float(d["threshold"]),
            **{k: d[k] for k in _RATES},
            fnr=d["fnr"],
            ece=d["ece"],
            citl=d["citl"],
            **{k: int(d[k]) for k in ("tn", "fp", "fn", "tp")},
            reliability=ReliabilityCurve.from_json(d["reliability"]),
            bands=tuple(Band.from_json(b) for b in d.get("bands", [])),
            ci=GroupCI.from_json(d.get("ci")),
        )


_SECTION = ("es_auc", "es_acc", "dpd", "deodds", "tpr_gap", "fpr_gap", "accuracy")
_OVERALL = ("tpr", "fpr", "selection_rate")


@dataclass(frozen=True)
class FairnessResult:
    """Overall figures, one attribute's equity figures, its groups, and the guardrails' caveats."""

    model: str
    attribute: str  # an attribute or two crossed ("race*gender")
    threshold: float | dict[str, list[float]]
    n: int
    n_pos: int
    auc: float | None
    ece: float | None
    citl: float | None
    reliability: ReliabilityCurve
    accuracy: float | None  # everyone at this attribute's thresholds
    tpr: float | None  # everyone's sensitivity at these thresholds
    fpr: float | None
    selection_rate: float | None
    es_auc: float | None
    es_acc: float | None
    dpd: float | None
    deodds: float | None
    tpr_gap: float | None
    fpr_gap: float | None
    n_unknown: int  # cases whose attribute value is unknown: in the overall figures only
    groups: tuple[GroupRow, ...]
    ci: Mapping[str, Interval | None] = field(default_factory=dict)  # auc, ece, es_auc, dpd, ...
    warnings: tuple[Caveat, ...] = ()
    threshold_ci: bool = False  # whether the threshold-dependent intervals were computed

    def group(self, name: str) -> GroupRow:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"{self.attribute} has no group {name!r}")

    @property
    def present(self) -> tuple[GroupRow, ...]:
        """The groups with at least one case."""
        return tuple(g for g in self.groups if g.n > 0)

    @property
    def flagged(self) -> int:
        """Cases of known attribute value that the thresholds flag."""
        return sum(g.tp + g.fp for g in self.groups)

    @property
    def known(self) -> int:
        return sum(g.n for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        """The /fairness answer: every key of release 2, plus calibration, the clinical rates and
        intervals per group."""
        out = {"model": self.model, "attribute": self.attribute, "threshold": self.threshold}
        out |= {"n": self.n, "n_pos": self.n_pos, "auc": self.auc}
        out |= {k: getattr(self, k) for k in _SECTION}
        out |= {"n_unknown": self.n_unknown, "ece": self.ece, "citl": self.citl}
        out |= {"tpr": self.tpr, "fpr": self.fpr, "selection_rate": self.selection_rate}
        return out | {
            "reliability": self.reliability.to_json(),
            "groups": [g.to_json() for g in self.groups],
            "ci": {k: _ci_json(v) for k, v in self.ci.items()},
            "threshold_ci": self.threshold_ci,
            "warnings": [w.to_json() for w in self.warnings],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FairnessResult:
        return cls(
            model=d["model"],
            attribute=d["attribute"],
            threshold=d["threshold"],
            n=int(d["n"]),
            n_pos=int(d["n_pos"]),
            auc=d["auc"],
            ece=d["ece"],
            citl=d["citl"],
            reliability=ReliabilityCurve.from_json(d["reliability"]),
            **{k: d[k] for k in _SECTION},
            **{k: d.get(k) for k in _OVERALL},
            n_unknown=int(d["n_unknown"]),
            groups=tuple(GroupRow.from_json(g) for g in d["groups"]),
            ci={k: Interval.from_json(v) for k, v in d.get("ci", {}).items()},
            warnings=tuple(Caveat.from_json(w) for w in d.get("warnings", [])),
            threshold_ci=bool(d.get("threshold_ci", False)),
        )


def _ci_json(v: Interval | None) -> dict[str, Any] | None:
    return None if v is None else v.to_json()


def _none(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def _ci_section(ci: Mapping[str, Any] | None, attr: str) -> tuple[dict, dict]:
    """(section intervals, {group name: group intervals}) of a bootstrap_ci output."""
    if not ci:
        return {}, {}
    sec = ci.get("attributes", {}).get(attr, {})
    return sec, {g["name"]: g for g in sec.get("groups", [])}


def _from_report(
    report: Mapping[str, Any],
    attr: Attribute,
    key: str,
    *,
    model: str,
    y: np.ndarray,
    p: np.ndarray,
    codes: np.ndarray,
    auc_ci: Mapping[str, Any] | None = None,
    thr_ci: Mapping[str, Any] | None = None,
) -> FairnessResult:
    """The typed result of one attribute (``key`` in the report) of an engine report, with the
    calibration figures computed from the probabilities and the intervals of ``bootstrap_ci``."""
    sec = report["attributes"][key]
    a_sec, a_groups = _ci_section(auc_ci, key)
    t_sec, t_groups = _ci_section(thr_ci, key)
    groups = []
    for g in sec["groups"]:
        m = codes == g["code"]
        ac, tc = a_groups.get(g["name"], {}), t_groups.get(g["name"], {})
        tpr_ci = Interval.from_json(tc.get("tpr"))
        groups.append(
            GroupRow(
                name=g["name"],
                code=g["code"],
                n=g["n"],
                n_pos=g["n_pos"],
                threshold=g["threshold"],
                **{k: g[k] for k in _RATES},
                fnr=None if g["tpr"] is None else 1.0 - g["tpr"],
                ece=_none(ece(y[m], p[m])),
                citl=_none(citl(y[m], p[m])),
                tn=g["tn"],
                fp=g["fp"],
                fn=g["fn"],
                tp=g["tp"],
                reliability=ReliabilityCurve.of(y[m], p[m]),
                bands=tuple(band_rate(y[m], p[m], lo, hi) for lo, hi in CONFIDENT_BANDS),
                ci=GroupCI(
                    auc=Interval.from_json(ac.get("auc")),
                    ece=Interval.from_json(ac.get("ece")),
                    tpr=tpr_ci,
                    fnr=tpr_ci.flipped() if tpr_ci else None,
                    **{k: Interval.from_json(tc.get(k)) for k in ("fpr", "ppv", "npv")},
                ),
            )
        )
    ci = {
        "auc": Interval.from_json((auc_ci or {}).get("auc")),
        "ece": Interval.from_json((auc_ci or {}).get("ece")),
        "es_auc": Interval.from_json(a_sec.get("es_auc")),
    }
    ci |= {k: Interval.from_json(t_sec.get(k)) for k in ("dpd", "deodds")}
    ci["accuracy"] = Interval.from_json((thr_ci or {}).get("accuracy"))
    return FairnessResult(
        model=model,
        attribute=attr.name,
        threshold=report["threshold"],
        n=report["n"],
        n_pos=report["n_pos"],
        auc=report["auc"],
        ece=_none(ece(y, p)),
        citl=_none(citl(y, p)),
        reliability=ReliabilityCurve.of(y, p),
        **{k: sec[k] for k in _SECTION},
        **{k: report[k] for k in _OVERALL},
        n_unknown=sec["n_unknown"],
        groups=tuple(groups),
        ci=ci,
        threshold_ci=thr_ci is not None,
    )
