"""Is the scan upside down? A learned check on the anatomy around the optic disc.

An upside-down (180-degree rotated or vertically flipped) fundus scan passes every image check
and looks familiar to the model's pooled features: it has a disc, vessels and a macula. What
gives it away is anatomy: the fovea sits slightly *below* the disc centre (about 0.1 of the
disc-fovea distance in these scans), and the vessel arcades bow around it. The check

1. finds the disc (the brightest blob inside the field of view, after a grey closing that erases
   the dark vessels), mirrors the scan so the disc is on the left (both eyes are in the data,
   so left-right carries no information), and samples the brightness relative to its local
   background on a grid spanning the macula, centred on the disc's row. The grid is turned by
   the tilt of the field of view (an SLO field is an upright ellipse, taller than wide): a scan
   exported a few degrees rotated moves the macula by more than the fovea's natural offset below
   the disc, and would otherwise read as upside down, while an upside-down scan's field is
   still upright;
2. scores the grid with a logistic regression trained on reference scans against the same scans
   flipped vertically (self-supervised: no labelled upside-down scans are needed), and
   standardises the log-odds against the scan's detail (``acquisition``: a crisp scan's macula
   reads more strongly either way, so its scores spread wider);
3. flags scans whose score exceeds a threshold set on held-out calibration scans so that a
   chosen share of upright ones is flagged.

A scan without a field of view has no anatomy to read; the image checks refuse it already, and
its score is 0 (not flagged here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from fairmoe.ood.acquisition import Standardisation
from fairmoe.ood.quality import _field_of_view

__all__ = [
    "GRID",
    "OrientationCheck",
    "feature_rows",
    "fov_tilt",
    "orientation_features",
    "orientation_reason",
]

GRID = (12, 16)  # rows x columns sampled around the disc and macula
_WORK_WIDTH = 128  # columns of the reduced copy (an SLO scan: 512 / 4)
_DISC_RADIUS = 0.085  # disc radius / image width in SLO scans (36-48 of 512 pixels)
_MIN_FOV_PIXELS = 200
_MIN_ELONGATION = 1.1  # axis ratio of the FOV below which its tilt is not measurable
_MAX_TILT = np.radians(30.0)  # a larger tilt is not a slightly rotated scan: left unturned


def _reduced(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, np.uint8)
    factor = max(1, round(a.shape[1] / _WORK_WIDTH))
    pil = Image.fromarray(a)
    return np.asarray(pil.reduce(factor) if factor > 1 else pil, np.float32)


def _blur(x: np.ndarray, sigma: float, coarse: int) -> np.ndarray:
    """Gaussian blur of ``x``; with ``coarse`` > 1 computed on a box-reduced copy and brought
    back to full size bilinearly (20x cheaper for the background's wide blur)."""
    if coarse == 1:
        return ndi.gaussian_filter(x, sigma)
    img = Image.fromarray(x.astype(np.float32, copy=False), "F")
    low = ndi.gaussian_filter(np.asarray(img.reduce(coarse)), sigma / coarse)
    back = Image.fromarray(low, "F").resize(img.size, Image.BILINEAR)
    return np.asarray(back, np.float64)


def fov_tilt(fov: np.ndarray) -> float:
    """Angle (radians) of the field of view's long axis from the vertical, positive when the scan
    was turned counter-clockwise; 0 for a round field or a tilt over ``_MAX_TILT``."""
    ys, xs = np.nonzero(fov)
    if len(ys) < _MIN_FOV_PIXELS:
        return 0.0
    cov = np.cov(np.vstack([ys - ys.mean(), xs - xs.mean()]))
    eigval, eigvec = np.linalg.eigh(cov)  # ascending: column 1 is the long axis
    if eigval[1] < _MIN_ELONGATION**2 * max(eigval[0], 1e-9):
        return 0.0
    vy, vx = eigvec[:, 1] if eigvec[0, 1] >= 0 else -eigvec[:, 1]  # pointing down the scan
    tilt = float(np.arctan2(vx, vy))
    return tilt if abs(tilt) <= _MAX_TILT else 0.0


def orientation_features(image: np.ndarray) -> np.ndarray | None:
    """The relative-brightness grid (``GRID`` flattened) of a uint8 (H, W) scan, or None when no
    field of view is found."""
    small = _reduced(image)
    fov = _field_of_view(small)
    inner = ndi.binary_erosion(fov, iterations=4)  # the FOV rim is bright-dark, not a disc
    if inner.sum() < _MIN_FOV_PIXELS:
        return None
    r = small.shape[1] * _DISC_RADIUS
    closed = ndi.grey_closing(small, size=(5, 5))  # vessels (2-3 px here) would darken the disc
    bright = ndi.gaussian_filter(closed, r * 0.6)
    dy, dx = np.unravel_index(np.argmax(np.where(inner, bright, -np.inf)), bright.shape)
    weight = fov.astype(np.float32)

    def within_fov(x: np.ndarray, sigma: float, coarse: int = 1) -> np.ndarray:
        # normalised convolution: the dark surround does not leak into the rim's average; a
        # wide one runs on a copy reduced ``coarse`` times (a blur that wide loses nothing)
        num, den = _blur(x * weight, sigma, coarse), _blur(weight, sigma, coarse)
        return num / np.maximum(den, 1e-3)

    relative = within_fov(small, r * 0.5) / np.maximum(within_fov(small, r * 4, coarse=4), 1.0)
    if dx > small.shape[1] / 2:  # disc on the right: mirror, so the macula is always to its right
        relative, fov, dx = relative[:, ::-1], fov[:, ::-1], small.shape[1] - 1 - dx
    tilt = fov_tilt(fov)
    down, across = np.meshgrid(
        np.linspace(-3 * r, 3 * r, GRID[0]), np.linspace(0.5 * r, 7.5 * r, GRID[1]), indexing="ij"
    )
    # the grid's axes turned with the field: "down" is (cos, sin), "across" (-sin, cos) in (y, x)
    c, s = np.cos(tilt), np.sin(tilt)
    yy, xx = dy + down * c - across * s, dx + down * s + across * c
    return ndi.map_coordinates(relative, [yy, xx], order=1, mode="nearest").ravel()


def feature_rows(images: Sequence[np.ndarray], flip: bool = False) -> np.ndarray:
    """``orientation_features`` of each scan (flipped vertically first when ``flip``), as an
    (n, features) array; scans without a field of view give a row of NaN."""
    n = GRID[0] * GRID[1]
    rows = np.full((len(images), n), np.nan)
    for i, im in enumerate(images):
        f = orientation_features(np.ascontiguousarray(im[::-1]) if flip else im)
        if f is not None:
            rows[i] = f
    return rows


def _finite(rows: np.ndarray) -> np.ndarray:
    return rows[np.isfinite(rows).all(1)]


@dataclass(frozen=True)
class OrientationCheck:
    """Feature standardisation, weights and threshold of the upside-down score: the log-odds,
    standardised against the scan's detail (``standard``; the identity in older files)."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    flag_rate: float
    standard: Standardisation = field(default_factory=Standardisation)

    @classmethod
    def fit(
        cls,
        upright: np.ndarray,
        flipped: np.ndarray,
        calibration: np.ndarray,
        *,
        flag_rate: float = 0.015,
        c: float = 0.1,
        covariate: np.ndarray | None = None,
    ) -> OrientationCheck:
        """Train on ``feature_rows`` of reference scans (``upright``) against the same scans
        flipped vertically (``flipped``); the threshold flags about ``flag_rate`` of the upright
        ``calibration`` rows, whose log-odds are standardised against their detail
        ``covariate`` (``acquisition.DetailScale.covariate``) when given. Rows of NaN (no field
        of view) are left out."""
        if not 0 < flag_rate < 0.5:
            raise ValueError(f"flag_rate must be in (0, 0.5), got {flag_rate}")
        up, down, cal = _finite(upright), _finite(flipped), _finite(calibration)
        if min(len(up), len(down), len(cal)) < 10:
            raise ValueError(
                "need at least 10 reference and calibration scans with a field of view"
            )
        x = np.vstack([up, down])
        y = np.r_[np.zeros(len(up)), np.ones(len(down))]
        mean, scale = x.mean(0), x.std(0) + 1e-6
        from sklearn.linear_model import LogisticRegression  # fitting only: slow to import

        clf = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
        w, b = clf.coef_[0], float(clf.intercept_[0])
        log_odds = (cal - mean) / scale @ w + b
        cov = None if covariate is None else np.asarray(covariate)[np.isfinite(calibration).all(1)]
        standard = Standardisation.fit(log_odds, cov)
        threshold = float(np.quantile(standard(log_odds, cov), 1 - flag_rate))
        return cls(mean, scale, w, b, threshold, flag_rate, standard)

    def scores(self, rows: np.ndarray, covariate: np.ndarray | None = None) -> np.ndarray:
        """Standardised log-odds that each scan is upside down, from ``feature_rows`` and the
        scans' detail covariate; 0.0 (typical of upright scans) for a row of NaN (no field of
        view: no anatomy to read)."""
        rows = np.atleast_2d(rows)
        ok = np.isfinite(rows).all(1)
        z = self.standard((np.nan_to_num(rows) - self.mean) / self.scale @ self.weights + self.bias,
                          covariate)  # fmt: skip
        return np.where(ok, z, 0.0)

    def score(self, image: np.ndarray, covariate: float | None = None) -> float:
        cov = None if covariate is None else np.array([covariate])
        return float(self.scores(feature_rows([image]), cov)[0])

    def flags(self, score: float) -> bool:
        return score > self.threshold

    def arrays(self) -> dict[str, np.ndarray]:
        """The vectors, for the detector's safetensors file."""
        return {
            "orientation.mean": self.mean.astype(np.float32),
            "orientation.scale": self.scale.astype(np.float32),
            "orientation.weights": self.weights.astype(np.float32),
        }

    def to_dict(self) -> dict[str, Any]:
        """The scalars, for the detector's JSON file."""
        return {
            "bias": self.bias,
            "threshold": self.threshold,
            "flag_rate": self.flag_rate,
            "standard": self.standard.to_dict(),
        }

    @classmethod
    def from_parts(cls, doc: Mapping[str, Any], arrays: Mapping[str, Any]) -> OrientationCheck:
        def vec(name: str) -> np.ndarray:
            return np.asarray(arrays[f"orientation.{name}"], np.float64)

        return cls(
            vec("mean"),
            vec("scale"),
            vec("weights"),
            float(doc["bias"]),
            float(doc["threshold"]),
            float(doc["flag_rate"]),
            Standardisation.from_dict(doc.get("standard") or {}),
        )


def orientation_reason(score: float, threshold: float) -> str:
    return (
        "The scan looks upside down (rotated by 180 degrees or flipped vertically): the macula "
        f"is above the optic disc (orientation score {score:.1f}, threshold {threshold:.1f}). "
        "Upload it the right way up."
    )
