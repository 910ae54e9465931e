"""Input checks on the raw grayscale scan: size, shape, field of view, exposure, sharpness.

Each check measures one statistic of the uint8 (H, W) scan as uploaded (before the model's resize
and centre crop) and compares it with the range seen on reference scans, widened by a margin: the
ranges are fitted, not hard-coded, so a detector refitted on another device's scans adapts. The
statistics are computed on a box-downsampled copy (longer side ~160 px): the checks are about the
whole image, and this keeps them at a few milliseconds per scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

__all__ = [
    "STATISTICS",
    "QualityReference",
    "QualitySettings",
    "StatRange",
    "scan_statistics",
]

# Statistics in the order the checks report them.
STATISTICS = (
    "short_side",  # pixels of the shorter side
    "aspect",  # height / width
    "contrast",  # grey-level standard deviation of the whole image; ~0 for a blank frame
    "fov_fraction",  # share of the frame covered by the field of view (FOV)
    "fov_fit",  # overlap (IoU) of the FOV with the ellipse of its moments: 1 for an ellipse
    "corner_ratio",  # brightness of the frame's corners over its centre: SLO surrounds are dark
    "fov_mean",  # mean grey level inside the FOV
    "saturated",  # share of the FOV at or near 255
    "sharpness",  # std of the Laplacian inside the FOV over its mean grey level
    "noise",  # pixel noise (grey levels) in the centre at a fixed resolution, Immerkaer's estimate
    "detail",  # std of the fine structure inside the FOV over its mean grey level (not a check)
)
_WORK_SIDE = 160  # longer side of the copy the statistics are computed on
# Shorter side of the copy the noise is measured on (an SLO scan is 512 wide: half of it). Noise
# measured per pixel depends on the resolution: halving a scan averages pixels whose speckle is
# correlated, which *raises* the per-pixel estimate, so a scan downsized by an export read as
# "grainy" when measured at its own size.
_NOISE_SIDE = 256
_SATURATED = 250
# ``detail``: the fine band (the reduced copy minus its blur at this sigma, in its pixels), away
# from the FOV rim. It is the amplitude of retinal structure that the acquisition sets
# (contrast, sharpness): the novelty check is standardised against it (``novelty``).
_DETAIL_SIGMA = 2.0
_DETAIL_RIM = 3  # erosions beyond the 3 of the other FOV statistics: the blur spreads the rim
_BLANK_STD = 2.0  # grey levels: below this the image holds no structure at all


@dataclass(frozen=True)
class StatRange:
    """Accepted interval of one statistic; ``None`` leaves that side open."""

    lo: float | None
    hi: float | None

    def contains(self, value: float) -> bool:
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)


@dataclass(frozen=True)
class QualitySettings:
    """How each range is fitted: which sides are checked, the quantiles, and the margins.

    A range is [q(tail) - margin, q(1 - tail) + margin] of the reference scans, with margin =
    max(widen * (q(1 - tail) - q(tail)), min_margin): the reference scans themselves pass, and an
    input must be clearly outside what the model saw to be refused. Statistics in ``log_scale``
    are fitted on their logarithm (margins are then factors: 0.5 is x/÷ 1.65), since a scan
    half as bright is as far from typical as one twice as bright. ``min_margin`` keeps a
    statistic that never varies in the reference (every SLO scan is 664x512) from refusing a
    scan one pixel off. ``min_side`` is an absolute floor under the fitted size range.
    """

    tail: float = 0.002
    widen: float = 0.5
    sides: Mapping[str, str] = field(
        default_factory=lambda: {
            "short_side": "lo",
            "aspect": "both",
            "contrast": "lo",
            "fov_fraction": "both",
            "fov_fit": "lo",
            "corner_ratio": "hi",
            "fov_mean": "both",
            "saturated": "hi",
            "sharpness": "both",
            "noise": "hi",
            "detail": "none",  # no check: a covariate of the novelty check
        }
    )
    min_margin: Mapping[str, float] = field(
        default_factory=lambda: {
            "short_side": 0.9,  # log: down to 40% of the reference resolution
            "aspect": 0.15,  # log: +-16%, a 4:3 or square frame is outside
            "contrast": 0.7,  # log: half the weakest reference contrast
            "fov_fraction": 0.08,
            "fov_fit": 0.05,
            "corner_ratio": 0.1,
            "fov_mean": 0.5,  # log
            "saturated": 0.02,
            "sharpness": 0.5,  # log
            "noise": 0.5,  # log
        }
    )
    log_scale: tuple[str, ...] = (
        "short_side",
        "aspect",
        "contrast",
        "fov_mean",
        "sharpness",
        "noise",
    )
    min_side: int = 128

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["sides"], out["min_margin"] = dict(self.sides), dict(self.min_margin)
        out["log_scale"] = list(self.log_scale)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualitySettings:
        return cls(
            tail=float(data["tail"]),
            widen=float(data["widen"]),
            sides=dict(data["sides"]),
            min_margin={k: float(v) for k, v in data["min_margin"].items()},
            log_scale=tuple(data["log_scale"]),
            min_side=int(data["min_side"]),
        )


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of uint8-range values: the split maximising between-class variance."""
    hist = np.bincount(np.clip(values, 0, 255).astype(np.int64).ravel(), minlength=256)
    p = hist / max(hist.sum(), 1)
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1 - omega))
    return float(np.nanargmax(between)) + 0.5 if np.isfinite(between).any() else 127.5


def _field_of_view(small: np.ndarray) -> np.ndarray:
    """The largest bright connected region, holes filled: the FOV of an SLO scan."""
    smooth = ndi.uniform_filter(small, 5)  # speckle would split the region at its dim rim
    mask = smooth > _otsu(smooth)
    labels, n = ndi.label(mask)
    if n == 0:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return ndi.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))


def _ellipse_fit(mask: np.ndarray) -> float:
    """IoU of ``mask`` with the ellipse of the same centroid and second moments.

    A uniform ellipse with semi-axes (a, b) has coordinate variances a^2/4 and b^2/4, so its
    moments give it back; a blob, a ring or a ragged segmentation of a photo does not.
    """
    ys, xs = np.nonzero(mask)
    if len(ys) < 16:
        return 0.0
    cy, cx = ys.mean(), xs.mean()
    syy, sxx = ((ys - cy) ** 2).mean() + 1e-6, ((xs - cx) ** 2).mean() + 1e-6
    sxy = ((ys - cy) * (xs - cx)).mean()
    det = syy * sxx - sxy * sxy
    dy = np.arange(mask.shape[0])[:, None] - cy  # broadcast: no (H, W, 2) coordinate array
    dx = np.arange(mask.shape[1])[None, :] - cx
    inside = (sxx * dy * dy - 2 * sxy * dy * dx + syy * dx * dx) <= 4.0 * det
    return float((mask & inside).sum() / max((mask | inside).sum(), 1))


def _corner_ratio(small: np.ndarray) -> float:
    """Median of the four corner patches over the median of the central region."""
    h, w = small.shape
    ch, cw = max(1, h // 12), max(1, w // 12)
    corners = np.concatenate(
        [
            c.ravel()
            for c in (small[:ch, :cw], small[:ch, -cw:], small[-ch:, :cw], small[-ch:, -cw:])
        ]
    )
    centre = small[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    return float(np.median(corners) / max(float(np.median(centre)), 1.0))


_NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def _noise_sigma(image: np.ndarray) -> float:
    """Immerkaer's (1996) fast noise estimate on the central quarter of the scan, resampled so
    that its shorter side is ``_NOISE_SIDE`` pixels (the same resolution whatever the upload's).

    The mask is the difference of two Laplacians: it cancels image structure up to second order,
    so what remains is mostly pixel noise, unlike the sharpness measured on the reduced copy.
    """
    h, w = image.shape
    scale = _NOISE_SIDE / min(h, w)
    pil = Image.fromarray(np.asarray(image, np.uint8))
    if abs(scale - 1) > 0.02:  # box when shrinking: every pixel counts once, as a sensor bins
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        pil = pil.resize(size, Image.BOX if scale < 1 else Image.BILINEAR)
    a = np.asarray(pil, np.float32)
    h, w = a.shape
    centre = a[h // 4 : h - h // 4, w // 4 : w - w // 4]
    if min(centre.shape) < 3:
        return 0.0
    residual = np.abs(ndi.convolve(centre, _NOISE_MASK, mode="nearest"))[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * residual.mean() / 6.0)


def scan_statistics(image: np.ndarray) -> dict[str, float]:
    """The statistics of :data:`STATISTICS` for a uint8 (H, W) grayscale scan."""
    a = np.asarray(image)
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale scan, got shape {a.shape}")
    h, w = a.shape
    factor = max(1, round(max(h, w) / _WORK_SIDE))
    pil = Image.fromarray(a.astype(np.uint8, copy=False))  # 2-D uint8: mode "L"
    small = np.asarray(pil.reduce(factor) if factor > 1 else pil, dtype=np.float32)
    stats = {"short_side": float(min(h, w)), "aspect": h / w, "contrast": float(small.std())}
    fov = _field_of_view(small)
    inner = ndi.binary_erosion(fov, iterations=3)  # the FOV rim is an edge, not retina detail
    inner = inner if inner.sum() >= 16 else np.ones_like(fov)
    fov_mean = float(small[inner].mean())
    laplace = ndi.laplace(small)[inner]
    core = ndi.binary_erosion(inner, iterations=_DETAIL_RIM)
    core = core if core.sum() >= 16 else inner
    band = (small - ndi.gaussian_filter(small, _DETAIL_SIGMA))[core]
    stats.update(
        fov_fraction=float(fov.mean()),
        fov_fit=_ellipse_fit(fov),
        corner_ratio=_corner_ratio(small),
        fov_mean=fov_mean,
        saturated=float((small[inner] >= _SATURATED).mean()),
        sharpness=float(laplace.std() / max(fov_mean, 1.0)),
        noise=_noise_sigma(a),
        detail=float(band.std() / max(float(small[core].mean()), 1.0)),
    )
    return stats


def _fit_range(values: np.ndarray, name: str, settings: QualitySettings) -> StatRange:
    log = name in settings.log_scale
    v = np.log(np.maximum(values, 1e-9)) if log else values
    lo, hi = (float(x) for x in np.quantile(v, [settings.tail, 1 - settings.tail]))
    m = max(settings.widen * (hi - lo), settings.min_margin.get(name, 0.0))
    lo, hi = lo - m, hi + m
    if log:
        lo, hi = float(np.exp(lo)), float(np.exp(hi))
    side = settings.sides.get(name, "both")  # "lo", "hi", "both" or "none" (not checked)
    return StatRange(lo if side in ("lo", "both") else None, hi if side in ("hi", "both") else None)


@dataclass(frozen=True)
class QualityReference:
    """Fitted ranges of the input statistics, and the settings they were fitted with."""

    ranges: Mapping[str, StatRange]
    settings: QualitySettings

    @classmethod
    def fit(
        cls, stats: Iterable[Mapping[str, float]], settings: QualitySettings | None = None
    ) -> QualityReference:
        """Ranges from the statistics of reference scans (see :class:`QualitySettings`)."""
        settings = settings or QualitySettings()
        rows = list(stats)
        if len(rows) < 10:
            raise ValueError(f"need at least 10 reference scans to fit the checks, got {len(rows)}")
        ranges = {
            name: _fit_range(np.array([r[name] for r in rows], np.float64), name, settings)
            for name in STATISTICS
            if settings.sides.get(name, "both") != "none"
        }
        floor = ranges["short_side"].lo
        ranges["short_side"] = StatRange(max(floor or 0.0, float(settings.min_side)), None)
        return cls(ranges, settings)

    def failures(self, stats: Mapping[str, float]) -> list[str]:
        """Names of the statistics outside their range."""
        return [n for n in STATISTICS if n in self.ranges and not self.ranges[n].contains(stats[n])]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ranges": {k: [r.lo, r.hi] for k, r in self.ranges.items()},
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QualityReference:
        ranges = {k: StatRange(*(None if x is None else float(x) for x in v)) for k, v in
                  data["ranges"].items()}  # fmt: skip
        return cls(ranges, QualitySettings.from_dict(data["settings"]))
