"""Scores standardised against the scan's acquisition: how much retinal detail it shows.

An in-distribution scan's novelty distance and its upside-down score both spread out with the
amplitude of its structure: a crisp, high-contrast scan lies further from the reference mean
(and its macula reads more strongly) than a soft one. Where acquisition differs between patient
groups (the synthetic data's Black and Asian patients' scans are softer and flatter), one
threshold on the raw score refuses the crisp group's scans more often: release 2 refused 3.6% of
White patients' scans and 0.5% of Asian patients'. So each score is standardised by a location
and a scale that are linear in the scan's measured ``detail`` (``fairmoe.ood.quality``: from the
image alone, never from the patient's group), fitted on the calibration scans: a threshold then
flags about the same share of scans at every level of detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["DetailScale", "Standardisation"]

_DETAIL_FLOOR = 1e-4  # log of a blank frame's zero detail would be -inf
_DETAIL_TAIL = 0.01  # the covariate is clipped to this quantile range of the calibration scans
_SPREAD_FLOOR = 1e-6
_SCALE_FLOOR = 0.5  # the scale at any detail is at least half of the typical scan's


@dataclass(frozen=True)
class DetailScale:
    """The covariate: log ``detail`` relative to the calibration scans' median, clipped to their
    range, so that an image with far more or less structure than any scan (a photograph, a blank
    frame) gets no more adjustment than the most extreme calibration scan."""

    anchor: float  # median log detail of the calibration scans
    lo: float  # clip range of log detail
    hi: float

    @classmethod
    def fit(cls, detail: Sequence[float] | np.ndarray) -> DetailScale:
        x = np.log(np.maximum(np.asarray(detail, np.float64), _DETAIL_FLOOR))
        lo, med, hi = np.quantile(x, [_DETAIL_TAIL, 0.5, 1 - _DETAIL_TAIL])
        return cls(float(med), float(lo), float(hi))

    def covariate(self, detail: Sequence[float] | np.ndarray) -> np.ndarray:
        """(N,) clipped log detail minus the anchor: 0 for a typical scan."""
        x = np.log(np.maximum(np.asarray(detail, np.float64), _DETAIL_FLOOR))
        return np.clip(x, self.lo, self.hi) - self.anchor

    def to_dict(self) -> dict[str, Any]:
        return {"statistic": "detail", "anchor": self.anchor, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetailScale:
        return cls(float(data["anchor"]), float(data["lo"]), float(data["hi"]))


@dataclass(frozen=True)
class Standardisation:
    """(value - location(c)) / scale(c) with location = centre + slope * c and scale = spread *
    max(1 + spread_slope * c, 1/2), c the :class:`DetailScale` covariate; the identity by
    default, and without a covariate only ``centre`` and ``spread`` apply."""

    centre: float = 0.0
    spread: float = 1.0
    slope: float = 0.0
    spread_slope: float = 0.0  # relative change of the scale per unit of covariate

    @classmethod
    def fit(cls, values: np.ndarray, covariate: np.ndarray | None = None) -> Standardisation:
        """Location by least squares on the covariate, then the median and interquartile range
        (over 1.349, a normal's standard deviation) of what is left, and the scale's slope from
        the absolute deviations: a few atypical calibration scans must not widen it."""
        v = np.asarray(values, np.float64)
        slope = spread_slope = 0.0
        if covariate is not None and np.ptp(covariate) > 0:
            slope, intercept = (float(b) for b in np.polyfit(covariate, v, 1))
            v = v - slope * covariate - intercept
        else:
            intercept = 0.0
        q1, med, q3 = np.quantile(v, [0.25, 0.5, 0.75])
        spread = max(float(q3 - q1) / 1.349, _SPREAD_FLOOR)
        if covariate is not None and np.ptp(covariate) > 0:
            b, a = np.polyfit(covariate, np.abs(v - med), 1)
            spread_slope = float(b / a) if a > 0 else 0.0
        return cls(float(intercept + med), spread, slope, spread_slope)

    def __call__(self, values: np.ndarray, covariate: np.ndarray | None = None) -> np.ndarray:
        v = np.asarray(values, np.float64)
        if covariate is None:
            return (v - self.centre) / self.spread
        scale = np.maximum(1.0 + self.spread_slope * covariate, _SCALE_FLOOR)
        return (v - self.centre - self.slope * covariate) / (self.spread * scale)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Standardisation:
        return cls(**{k: float(data.get(k, v)) for k, v in asdict(cls()).items()})
