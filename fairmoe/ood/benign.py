"""Benign copies of a scan: what a clinic's export, viewer or a user's screenshot does to it.

A resized, re-compressed, mirrored, slightly rotated, brighter or flatter copy of an assessable
scan is still assessable: the detector must not refuse it. These transforms are used three ways:
the detector's reference and calibration include a benign copy of each scan (``encode_scans``),
``benchmarks/bench_ood.py`` measures the refusal rate per transform on test scans, and
``tests/fairmoe/test_ood_benign.py`` checks a few. Rotations larger than a few degrees, vertical
flips and crops are not benign: the upside-down and shape checks are there to refuse them.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance

__all__ = ["BENCHMARK", "FITTING", "Transform", "apply", "benign_copy"]

Transform = tuple[str, float]  # (kind, amount): see ``apply``


def _resize(image: Image.Image, factor: float) -> Image.Image:
    w, h = image.size
    return image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BICUBIC)


def _jpeg(image: Image.Image, quality: float) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buf.getvalue())).convert("L")


_KINDS: dict[str, Callable[[Image.Image, float], Image.Image]] = {
    "resize": _resize,  # amount: scale factor of both sides
    "jpeg": _jpeg,  # amount: JPEG quality
    "mirror": lambda im, _: im.transpose(Image.FLIP_LEFT_RIGHT),  # both eyes are in the data
    "rotate": lambda im, deg: im.rotate(deg, Image.BILINEAR, fillcolor=0),  # degrees, CCW
    "brightness": lambda im, f: ImageEnhance.Brightness(im).enhance(f),  # factor
    "contrast": lambda im, f: ImageEnhance.Contrast(im).enhance(f),  # factor about the mean
}

# What bench_ood.py measures (issue "Every screen tells the truth", item 4).
BENCHMARK: dict[str, Transform] = {
    "resized 0.5x": ("resize", 0.5),
    "resized 0.75x": ("resize", 0.75),
    "resized 1.25x": ("resize", 1.25),
    "resized 1.5x": ("resize", 1.5),
    "JPEG q60": ("jpeg", 60),
    "JPEG q80": ("jpeg", 80),
    "mirrored": ("mirror", 0),
    "rotated +10": ("rotate", 10),
    "rotated -10": ("rotate", -10),
    "brightness +15%": ("brightness", 1.15),
    "brightness -15%": ("brightness", 0.85),
    "contrast +15%": ("contrast", 1.15),
    "contrast -15%": ("contrast", 0.85),
}

# Ranges of the random benign copy the detector is fitted with (a little wider than the benchmark
# on the photometric side, where no check needs the headroom); sizes are drawn on a log scale.
FITTING: dict[str, tuple[float, float]] = {
    "resize": (0.45, 1.6),
    "jpeg": (50, 95),
    "rotate": (-12.0, 12.0),
    "brightness": (0.8, 1.2),
    "contrast": (0.8, 1.2),
}


_SOMETIMES = ("rotate", "resize", "jpeg")  # in half of the copies; the others in every copy


def apply(image: np.ndarray, transform: Transform) -> np.ndarray:
    """``transform`` = (kind, amount) applied to a uint8 (H, W) scan; uint8 (H', W') back."""
    kind, amount = transform
    if kind not in _KINDS:
        raise ValueError(f"unknown transform {kind!r}; known: {', '.join(_KINDS)}")
    out = _KINDS[kind](Image.fromarray(np.asarray(image, np.uint8)), amount)
    return np.ascontiguousarray(np.asarray(out, np.uint8))


def benign_copy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random benign copy: mirrored half the time, turned half the time, always a little
    brighter or darker and flatter or crisper (the novelty features move most with these), then
    resized and JPEG-compressed half the time each, in the order an export applies them."""
    out = image[:, ::-1] if rng.random() < 0.5 else image
    for kind in ("rotate", "brightness", "contrast", "resize", "jpeg"):
        if kind in _SOMETIMES and rng.random() < 0.5:
            continue
        lo, hi = FITTING[kind]
        if kind == "resize":  # a size factor: as likely halved as doubled
            amount = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        else:
            amount = float(rng.uniform(lo, hi))
        out = apply(out, (kind, amount))
    return out
