"""Failed checks in words a clinician reads: which check failed, what was measured, what is usual.

The statistics inside the field of view (exposure, sharpness, noise) only mean something once a
field of view was found, so on a blank frame or an image without one only that is said. Likewise
a colour upload is called a colour fundus photograph only when it has a fundus-like field of view
(a round or elliptical bright field on a dark surround): a photograph of a cat is not one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fairmoe.ood.quality import QualityReference

__all__ = [
    "CHECKS",
    "COLOUR_WARNING",
    "fundus_like",
    "input_reasons",
    "is_colour",
    "novelty_reason",
]

# Checks in the order their reasons are given; "orientation" is the upside-down check of
# fairmoe.ood.orientation, "novelty" the feature-space check.
CHECKS = (
    "colour",
    "blank",
    "size",
    "shape",
    "field_of_view",
    "exposure",
    "blur",
    "noise",
    "orientation",
    "novelty",
)
# What fairmoe.inputs.load_scan says when it converted a colour image to grayscale: the detector
# sees the grayscale scan, so the colour is known only from the decoding. Either phrase marks it
# (the second is what a warning that does not guess the image's kind would say).
COLOUR_WARNING = "looks like a colour fundus photograph"
_CONVERTED = "converted to grayscale"
_BLANK_CONTRAST = 2.0  # grey levels of standard deviation: a uniform frame
# A fundus-like field of view, whatever the camera: an ellipse (SLO scans 0.99, colour fundus
# photographs 1.0; photographs of scenes and animals mostly under 0.9), on a dark surround
# (corners under 0.3 of the centre's brightness), covering a plausible share of the frame.
_FUNDUS_FOV_FIT = 0.95
_FUNDUS_CORNERS = 0.3
_FUNDUS_FRACTION = (0.3, 0.95)


def fundus_like(stats: Mapping[str, float]) -> bool:
    """Whether the image has a fundus-like field of view: a bright ellipse on a dark surround
    (``fairmoe.ood.quality`` statistics ``fov_fit``, ``corner_ratio``, ``fov_fraction``)."""
    lo, hi = _FUNDUS_FRACTION
    return (
        stats["fov_fit"] >= _FUNDUS_FOV_FIT
        and stats["corner_ratio"] <= _FUNDUS_CORNERS
        and lo <= stats["fov_fraction"] <= hi
    )


def _colour_reason(stats: Mapping[str, float]) -> str:
    if fundus_like(stats):
        return (
            "This is a colour image with a round field of view, like a colour fundus "
            "photograph; the model was trained on grayscale SLO scans only."
        )
    return (
        "This is a colour image without a fundus field of view: it does not look like a retinal "
        "image at all, and the model reads grayscale SLO scans only."
    )


def _range_text(q: QualityReference, name: str, digits: int = 0) -> str:
    r = q.ranges[name]
    if r.lo is not None and r.hi is not None:
        return f"{r.lo:.{digits}f}-{r.hi:.{digits}f}"
    return f"at least {r.lo:.{digits}f}" if r.lo is not None else f"at most {r.hi:.{digits}f}"


def _fov_reasons(stats: Mapping[str, float], failed: set[str]) -> dict[str, str]:
    out = {}
    if failed & {"fov_fraction", "fov_fit", "corner_ratio"}:
        out["field_of_view"] = (
            "No field of view found: this does not look like an SLO fundus scan (the bright "
            f"elliptical field on a dark surround is missing; it covers {stats['fov_fraction']:.0%}"
            " of the frame)."
        )
    return out


def _inside_reasons(
    q: QualityReference, stats: Mapping[str, float], failed: set[str]
) -> dict[str, str]:
    """Exposure, blur and noise, measured inside the field of view."""
    out = {}
    usual = _range_text(q, "fov_mean")
    if "fov_mean" in failed and stats["fov_mean"] < (q.ranges["fov_mean"].lo or 0):
        out["exposure"] = (
            f"The scan is too dark (mean brightness {stats['fov_mean']:.0f} of 255 in the field "
            f"of view; usable scans: {usual}): the optic disc cannot be assessed."
        )
    elif "fov_mean" in failed or "saturated" in failed:
        out["exposure"] = (
            f"The scan is overexposed ({stats['saturated']:.0%} of the field of view is "
            f"saturated, mean brightness {stats['fov_mean']:.0f} of 255; usable scans: {usual})."
        )
    elif "contrast" in failed:
        out["exposure"] = "The scan has almost no contrast: the optic disc cannot be assessed."
    sharp = q.ranges["sharpness"]
    if "sharpness" in failed and sharp.lo is not None and stats["sharpness"] < sharp.lo:
        out["blur"] = (
            "The scan is heavily blurred: vessel and disc edges are not sharp enough to assess "
            f"(sharpness {stats['sharpness']:.3f}; usable scans: {_range_text(q, 'sharpness', 3)})."
        )
    elif "noise" in failed or "sharpness" in failed:
        out["noise"] = (
            "The scan is very noisy (grainy): noise would be read as structure "
            f"(noise level {stats['noise']:.1f} grey levels; usable scans: "
            f"{_range_text(q, 'noise', 1)})."
        )
    return out


def input_reasons(
    q: QualityReference, stats: Mapping[str, float], *, colour: bool = False
) -> dict[str, str]:
    """Reason per failed input check (keys from :data:`CHECKS`), in order.

    ``colour``: the upload was a colour image (converted to grayscale when decoded).
    """
    failed = set(q.failures(stats))
    out = {}
    if colour:
        out["colour"] = _colour_reason(stats)
    if stats["contrast"] < _BLANK_CONTRAST:
        out["blank"] = "The image is blank (a uniform grey frame): there is nothing to assess."
        return out
    if "short_side" in failed:
        out["size"] = (
            f"The image is too small ({stats['short_side']:.0f} pixels on its shorter side; "
            f"at least {q.ranges['short_side'].lo:.0f} are needed)."
        )
    if "aspect" in failed:
        out["shape"] = (
            f"The image's shape (height/width {stats['aspect']:.2f}) is unlike the SLO scans the "
            f"model was trained on ({_range_text(q, 'aspect', 2)}): it may be rotated, cropped or "
            "from another camera."
        )
    fov = _fov_reasons(stats, failed)
    out.update(fov)
    if not fov:
        out.update(_inside_reasons(q, stats, failed))
    return out


def novelty_reason(score: float, threshold: float) -> str:
    return (
        "The scan is unlike the scans the model was trained on (novelty score "
        f"{score:.1f}, threshold {threshold:.1f}): its probability would not mean anything."
    )


def is_colour(warnings: Sequence[str]) -> bool:
    """Whether ``fairmoe.inputs.load_scan`` converted the upload from colour (its warnings)."""
    return any(COLOUR_WARNING in w or _CONVERTED in w for w in warnings)
