"""Synthetic Harvard-FairVLMed: SLO-like fundus scans, clinical notes and controllable group bias.

Writes the real folder layout (``data_summary.csv`` + ``{Training,Validation,Test}/data_NNNNN.npz``, same
keys, dtypes and CSV spellings), so ``fairmoe.data.fairvlmed`` reads it on the same path as real data.

The glaucoma signal lives in the optic disc: a larger cup-to-disc ratio (CDR), a vertically elongated cup
(thin superior/inferior rim) and sometimes an inferior notch. Classes overlap, so no single pixel decides.

Group bias: four mechanisms, each a ``SyntheticConfig`` knob multiplied by ``bias`` (0 = every group gets
the same acquisition and label process; 1 = default; at most 2):

1. Group-dependent acquisition: Black and Asian patients' scans get lower contrast, more blur and
   stronger vignetting (darker pigmented fundi reflect less light), so the cup boundary is harder to see.
2. Spurious marker: a small bright device stamp whose presence tracks the recorded label in White
   patients only (80% of glaucoma vs 20% of non-glaucoma scans at bias 1; 50/50 in other groups). A
   plain model can learn it as a shortcut that then fails the minority groups.
3. Physiological confound: Black patients have larger discs and, without glaucoma, a higher
   baseline CDR (a clinical fact), so the CDR cue misfires for them.
4. Label noise: the recorded diagnosis (label, note and summary) is flipped with some probability in
   small groups (Hispanic, Spanish- or Other-speaking), while the scan shows the true disease.

Not scaled by ``bias``: the real group sizes and glaucoma prevalences (base rates, not bias).

Use: ``generate(out, n=..., seed=..., bias=...)`` for a folder; for one example case,
``p = sample_params(i, force={"race": 1, "glaucoma": 1})``, then ``render_scan(p)`` and
``write_note(p)`` (note, summary). ``SampleParams`` holds every latent value (CDR, acquisition,
marker, label flip) for checks and documentation.

Determinism: every sample draws from ``np.random.default_rng([seed, index, stream])``, so files do not
depend on the worker count, and npz files are zipped with a fixed timestamp: the same
``(n, seed, bias)`` gives byte-identical folders.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import multiprocessing as mp
import os
import shutil
import struct
import sys
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from fairmoe.schema import ATTRIBUTES, LABEL_CSV, MARITAL_STATUS, SPLITS, SUMMARY_COLUMNS, UNKNOWN

__all__ = [
    "Acquisition",
    "CSV_COLUMNS",
    "SampleParams",
    "SyntheticConfig",
    "draw_acquisition",
    "generate",
    "main",
    "make_sample",
    "render_scan",
    "sample_params",
    "write_note",
    "write_npz",
]

MAX_BIAS = 2.0  # above this the probability knobs saturate and contrast would go negative
MAX_N = 99_999  # 5-digit file ids, as in the real release
SPLIT_NAMES = tuple(SPLITS)  # training, validation, test (CSV "use" spellings)
SPLIT_DIRS = {s: SPLITS[s][0] for s in SPLIT_NAMES}  # canonical folder names
_DOS_TIME = (0, (1980 - 1980) << 9 | 1 << 5 | 1)  # 1980-01-01 00:00: np.savez stamps the clock
# per-sample random streams: independent, so e.g. acquisition draws do not shift with demographics
_DEMOGRAPHICS, _LABEL, _ANATOMY, _ACQUISITION, _MARKER, _TEXT, _RENDER, _FIELD = range(8)
_SPLIT_STREAM = 0x5E1  # stream of the split permutation, apart from every sample index
_TRI_SD = 256 / math.sqrt(6)  # sd of the difference of two uniform bytes
CSV_COLUMNS = SUMMARY_COLUMNS  # data_summary.csv columns in the real order
_LABEL_SPELLING = {code: word for word, code in LABEL_CSV.items()}  # 1 -> "yes"


@dataclass(frozen=True)
class SyntheticConfig:
    """Every knob of the generator. Bias knobs are the strength at ``bias=1``."""

    # --- layout --------------------------------------------------------------------------------
    height: int = 664  # rows of the real slo_fundus arrays
    width: int = 512  # columns
    render_scale: float = 0.5  # anatomy is drawn at this scale and upsampled: 4x fewer pixels
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)  # 7,000/1,000/2,000 of 10,000
    # --- demographics: real proportions of Harvard-FairVLMed -----------------------------------
    race_p: tuple[float, float, float] = (0.0819, 0.1491, 0.7690)  # Asian, Black, White
    female_p: float = 0.5631
    language_p: tuple[float, float, float, float] = (
        0.9250,
        0.0176,
        0.0076,
        0.0498,
    )  # en/es/other/?
    hispanic_p_spanish: float = 0.85  # most Spanish speakers are Hispanic ...
    hispanic_p_other: float = 0.028  # ... and this brings the overall Hispanic share to about 4.0%
    ethnicity_unknown_p: float = 0.054
    marital_p: tuple[float, ...] = (0.52, 0.21, 0.11, 0.10, 0.01, 0.05)  # MARITAL_STATUS + unknown
    age_mean: float = 61.0
    age_sd: float = 15.0
    age_range: tuple[float, float] = (18.0, 95.0)
    age_glaucoma_shift: float = 3.5  # glaucoma patients are older: mean +shift, controls -shift
    # --- prevalence: real per-group rates, overall about 50% -----------------------------------
    # English-speaking female base rate per race (Asian, Black, White); with the shifts below the
    # marginals match the data: Asian 48.7%, Black 64.9%, White 47.9%
    prevalence_by_race: tuple[float, float, float] = (0.463, 0.629, 0.455)
    # logit shifts by language (en/es/other/unknown): Spanish 68%, Other 54%, unknown 73% in the data
    language_logit_shift: tuple[float, float, float, float] = (0.0, 0.85, 0.25, 1.05)
    male_logit_shift: float = 0.07  # male 51.5% vs female 49.7%
    # --- difficulty: anatomy (the label signal) ------------------------------------------------
    cdr_normal: tuple[float, float] = (0.42, 0.10)  # mean, sd of the vertical CDR without glaucoma
    cdr_glaucoma: tuple[float, float, float] = (0.50, 0.30, 0.07)  # base, +x severity, sd: overlap
    cdr_clip: tuple[float, float] = (0.12, 0.92)
    severity_beta: tuple[float, float] = (2.0, 3.0)  # most glaucoma is mild to moderate
    cup_elongation: float = 0.22  # vertical cup stretch at severity 1: thin superior/inferior rim
    notch_p: float = 0.35  # share of glaucoma discs with a focal (mostly inferior) rim notch
    disc_radius_px: tuple[float, float] = (36.0, 48.0)  # full-resolution pixels; ~1.8 mm disc
    disc_fovea_dd: tuple[float, float] = (2.2, 2.6)  # disc-fovea distance in disc diameters
    ppa_p: tuple[float, float] = (0.15, 0.45)  # peripapillary atrophy: controls, glaucoma
    # --- acquisition, shared by every group at bias 0 ------------------------------------------
    contrast_range: tuple[float, float] = (0.75, 1.15)  # multiplies structure around the mean
    blur_range: tuple[float, float] = (0.7, 2.0)  # Gaussian sigma in full-resolution pixels
    vignette_range: tuple[float, float] = (0.10, 0.35)  # darkening at the edge of the field
    noise_range: tuple[float, float] = (0.015, 0.04)  # pixel noise sd (intensity scale 0..1)
    gain_range: tuple[float, float] = (0.85, 1.10)  # overall brightness
    # --- bias 1: group-dependent acquisition (weight per race; Asian milder than Black) ---------
    acquisition_groups: tuple[tuple[str, float], ...] = (("Asian", 0.7), ("Black", 1.0))
    minority_contrast_drop: float = 0.35  # contrast x (1 - drop)
    minority_blur_add: float = 1.6  # + sigma px: the cup edge smears into the rim
    minority_vignette_add: float = 0.30
    # --- bias 2: spurious marker ---------------------------------------------------------------
    marker_groups: tuple[str, ...] = ("White",)  # races where the stamp tracks the label
    marker_strength: float = 0.30  # P(stamp) = 0.5 +/- strength by recorded label
    # --- bias 3: physiological confound --------------------------------------------------------
    confound_race: str = "Black"
    confound_cdr_shift: float = 0.10  # + CDR for controls of confound_race (physiologic cupping)
    confound_disc_scale: float = 0.12  # discs x (1 + scale) for confound_race
    # --- bias 4: label noise in small groups ---------------------------------------------------
    flip_groups: tuple[tuple[str, str], ...] = (
        ("ethnicity", "Hispanic"),
        ("language", "Spanish"),
        ("language", "Other"),
    )
    flip_prob: float = 0.20  # recorded diagnosis flipped with this probability
    # --- text noise ----------------------------------------------------------------------------
    omit_diagnosis_p: float = 0.10  # notes/summaries that never state the diagnosis
    suspect_p: float = 0.12  # ambiguous "glaucoma suspect" wording, for either label
    cdr_report_sd: float = 0.05  # CDR quoted in notes = image CDR + noise, rounded to 0.05


@dataclass(frozen=True)
class Acquisition:
    """Per-scan acquisition settings (device and eye, not disease)."""

    contrast: float
    blur: float  # Gaussian sigma, full-resolution pixels
    vignette: float
    noise: float
    gain: float


@dataclass(frozen=True)
class SampleParams:
    """Latent parameters of one synthetic patient; codes follow fairmoe.schema (-1 unknown)."""

    index: int  # file id (data_{index:05d}.npz)
    seed: int
    age: float
    gender: int
    race: int
    ethnicity: int
    language: int
    maritalstatus: int
    glaucoma_true: int  # what the scan and visual field show
    glaucoma: int  # recorded label (note, summary, CSV, npz): differs when label_flipped
    label_flipped: bool
    severity: float  # 0..1, 0 for controls
    cdr: float  # vertical cup-to-disc ratio drawn in the image
    cup_elongation: float  # vertical / horizontal cup stretch - 1
    notch: float  # depth of a focal rim notch (0 = none), as a fraction of the cup radius
    notch_angle: float  # radians, image coordinates (pi/2 = inferior)
    disc_radius: float  # full-resolution pixels (vertical radius)
    disc_xy: tuple[float, float]  # disc centre, full-resolution pixels (x, y)
    fovea_xy: tuple[float, float]
    ppa: float  # peripapillary atrophy strength
    eye: str  # "OD" or "OS" (disc on the right or left)
    acquisition: Acquisition
    marker: bool  # spurious device stamp present
    md: float  # visual-field mean deviation, dB
    tds: tuple[float, ...]  # 52 total-deviation values, dB
    iop: tuple[int, int]  # intraocular pressure OD, OS (mmHg)


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


def _check_bias(bias: float) -> float:
    bias = float(bias)
    if not 0.0 <= bias <= MAX_BIAS:
        raise ValueError(
            f"bias={bias} is out of range; use 0 (unbiased) to {MAX_BIAS} (1 = default)"
        )
    return bias


def _group_code(attr: str, name: str) -> int:
    return ATTRIBUTES[attr].groups.index(name)


def draw_acquisition(
    seed: int, index: int, race: int, *, bias: float = 1.0, config: SyntheticConfig | None = None
) -> Acquisition:
    """Acquisition settings of sample ``index``; at ``bias=0`` they do not depend on ``race``."""
    cfg = config or SyntheticConfig()
    bias = _check_bias(bias)
    r = _rng(seed, index, _ACQUISITION)
    u = r.random(5)

    def lerp(lo_hi: tuple[float, float], t: float) -> float:
        return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * float(t)

    weights = {_group_code("race", g): w for g, w in cfg.acquisition_groups}
    s = bias * weights.get(race, 0.0)
    return Acquisition(
        contrast=lerp(cfg.contrast_range, u[0]) * (1.0 - cfg.minority_contrast_drop * s),
        blur=lerp(cfg.blur_range, u[1]) + cfg.minority_blur_add * s,
        vignette=lerp(cfg.vignette_range, u[2]) + cfg.minority_vignette_add * s,
        noise=lerp(cfg.noise_range, u[3]),
        gain=lerp(cfg.gain_range, u[4]),
    )


def _draw_demographics(
    seed: int, index: int, cfg: SyntheticConfig, force: Mapping[str, float]
) -> dict[str, int]:
    r = _rng(seed, index, _DEMOGRAPHICS)
    u = r.random(6)
    race = int(np.searchsorted(np.cumsum(cfg.race_p), u[0] * sum(cfg.race_p), side="right"))
    gender = 0 if u[1] < cfg.female_p else 1
    lang = int(np.searchsorted(np.cumsum(cfg.language_p), u[2] * sum(cfg.language_p), side="right"))
    language = UNKNOWN if lang == 3 else lang
    language = int(force.get("language", language))
    p_hisp = cfg.hispanic_p_spanish if language == 1 else cfg.hispanic_p_other
    ethnicity = UNKNOWN if u[3] < cfg.ethnicity_unknown_p else int(u[4] < p_hisp)
    m = int(np.searchsorted(np.cumsum(cfg.marital_p), u[5] * sum(cfg.marital_p), side="right"))
    marital = UNKNOWN if m >= len(MARITAL_STATUS) else m
    out = {
        "race": min(race, 2),
        "gender": gender,
        "ethnicity": ethnicity,
        "language": language,
        "maritalstatus": marital,
    }
    out.update({k: int(v) for k, v in force.items() if k in out})
    return out


def _check_force(force: Mapping[str, float]) -> dict[str, float]:
    """Validate ``sample_params(force=...)``: known keys, codes in range."""
    out = dict(force)
    for key, value in out.items():
        if key == "age":
            continue
        if key == "glaucoma":
            n, unknown_ok = 2, False
        elif key == "maritalstatus":
            n, unknown_ok = len(MARITAL_STATUS), True
        elif key in ATTRIBUTES:
            n, unknown_ok = ATTRIBUTES[key].n_groups, ATTRIBUTES[key].has_unknown
        else:
            raise ValueError(
                f"force: unknown key {key!r}; use age, glaucoma, maritalstatus or "
                f"an attribute ({', '.join(ATTRIBUTES)})"
            )
        if value != int(value) or not (0 <= value < n or (unknown_ok and value == UNKNOWN)):
            raise ValueError(
                f"force: {key}={value!r} is not a valid code (0..{n - 1}"
                f"{' or -1' if unknown_ok else ''})"
            )
    return out


def _visual_field(
    r: np.random.Generator, glaucoma: int, severity: float
) -> tuple[float, tuple[float, ...]]:
    """24-2 total deviations (26 superior then 26 inferior points) and their mean deviation."""
    tds = r.normal(-0.3, 1.2, 52)
    if glaucoma:
        # arcuate defect, deepest in one hemifield (superior field <-> inferior rim damage)
        depth = 4.0 + 26.0 * severity**1.3
        hemi = r.integers(2)
        w = r.beta(2.0, 2.0, 26) * (0.6 + 0.8 * r.random(26))
        tds[hemi * 26 : hemi * 26 + 26] -= depth * w
        tds[(1 - hemi) * 26 : (2 - hemi) * 26] -= 0.3 * depth * r.random(26)
    tds = np.clip(tds, -35.0, 5.0)
    md = float(np.mean(tds) + r.normal(0.0, 0.3))
    return md, tuple(float(v) for v in tds.astype(np.float32))


def sample_params(
    index: int,
    *,
    seed: int = 0,
    bias: float = 1.0,
    config: SyntheticConfig | None = None,
    force: Mapping[str, float] | None = None,
) -> SampleParams:
    """All latent parameters of sample ``index``.

    ``force`` overrides drawn values before the dependent ones are drawn (keys: age, gender, race,
    ethnicity, language, maritalstatus, glaucoma); forcing ``glaucoma`` sets the true and recorded
    label alike (no flip), which is what an example case for the app wants.
    """
    cfg = config or SyntheticConfig()
    bias = _check_bias(bias)
    force = _check_force(force or {})
    demo = _draw_demographics(seed, index, cfg, force)
    race, language = demo["race"], demo["language"]

    # label: real per-group base rates, then label noise in small groups (mechanism 4)
    r = _rng(seed, index, _LABEL)
    u_label, u_flip = r.random(2)
    logit = math.log(cfg.prevalence_by_race[race] / (1 - cfg.prevalence_by_race[race]))
    logit += cfg.language_logit_shift[language] + cfg.male_logit_shift * demo["gender"]
    y_true = int(u_label < 1 / (1 + math.exp(-logit)))
    in_flip_group = any(demo[a] == _group_code(a, g) for a, g in cfg.flip_groups)
    flipped = bool(in_flip_group and u_flip < min(1.0, cfg.flip_prob * bias))
    if "glaucoma" in force:
        y_true, flipped = int(force["glaucoma"]), False
    y_obs = 1 - y_true if flipped else y_true
    age = r.normal(cfg.age_mean + cfg.age_glaucoma_shift * (2 * y_true - 1), cfg.age_sd)
    age = float(force.get("age", np.clip(age, *cfg.age_range)))

    # anatomy: the label signal and the physiological confound (mechanism 3)
    a = _rng(seed, index, _ANATOMY)
    confound = bias if race == _group_code("race", cfg.confound_race) else 0.0
    if y_true:
        severity = float(a.beta(*cfg.severity_beta))
        base, slope, sd = cfg.cdr_glaucoma
        cdr = base + slope * severity + a.normal(0, sd)
        elong = cfg.cup_elongation * severity * a.uniform(0.5, 1.2)
        notch = float(a.uniform(0.15, 0.45)) if a.random() < cfg.notch_p else 0.0
    else:
        severity = 0.0
        cdr = a.normal(*cfg.cdr_normal) + cfg.confound_cdr_shift * confound
        elong = a.uniform(-0.05, 0.06)
        notch = 0.0
    notch_angle = float(a.normal(math.pi / 2, 0.35) if a.random() < 0.75 else -math.pi / 2)
    cdr = float(np.clip(cdr, *cfg.cdr_clip))
    disc_r = float(a.uniform(*cfg.disc_radius_px)) * (1 + cfg.confound_disc_scale * confound)
    eye = "OD" if a.random() < 0.5 else "OS"
    side = 1.0 if eye == "OD" else -1.0  # OD: disc right of the fovea in a fundus image
    W, H = cfg.width, cfg.height
    dist = 2 * disc_r * a.uniform(*cfg.disc_fovea_dd)
    cx, cy = W / 2 + a.normal(0, 12), H / 2 + a.normal(0, 25)
    disc = (cx + side * dist * 0.5, cy + a.normal(-10, 10))
    fovea = (cx - side * dist * 0.5, cy + a.normal(12, 8))
    ppa = float(a.uniform(0.3, 1.0)) if a.random() < cfg.ppa_p[y_true] else 0.0
    iop_mean = 15.0 + (4.0 + 6.0 * severity) * y_true
    iop_od = a.normal(iop_mean, 3.0)
    iop = tuple(int(round(v)) for v in np.clip([iop_od, iop_od + a.normal(0, 1.5)], 8, 40))

    # spurious marker (mechanism 2): tracks the recorded label in marker_groups only
    p_marker = 0.5
    if ATTRIBUTES["race"].groups[race] in cfg.marker_groups:
        p_marker += cfg.marker_strength * bias * (1 if y_obs else -1)
    marker = bool(_rng(seed, index, _MARKER).random() < np.clip(p_marker, 0.0, 1.0))

    md, tds = _visual_field(_rng(seed, index, _FIELD), y_true, severity)
    return SampleParams(
        index=index,
        seed=seed,
        age=round(age, 2),
        gender=demo["gender"],
        race=race,
        ethnicity=demo["ethnicity"],
        language=language,
        maritalstatus=demo["maritalstatus"],
        glaucoma_true=y_true,
        glaucoma=y_obs,
        label_flipped=flipped,
        severity=severity,
        cdr=cdr,
        cup_elongation=float(elong),
        notch=notch,
        notch_angle=notch_angle,
        disc_radius=disc_r,
        disc_xy=disc,
        fovea_xy=fovea,
        ppa=ppa,
        eye=eye,
        acquisition=draw_acquisition(seed, index, race, bias=bias, config=cfg),
        marker=marker,
        md=md,
        tds=tds,
        iop=iop,
    )


# ------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------


def _smooth_field(r: np.random.Generator, h: int, w: int, terms: int, freq: float) -> np.ndarray:
    """Low-frequency texture as a sum of separable cosine products (cheap outer products)."""
    y = np.arange(h, dtype=np.float32)[:, None] / h
    x = np.arange(w, dtype=np.float32)[None, :] / w
    out = np.zeros((h, w), np.float32)
    for _ in range(terms):
        fy, fx = r.uniform(0.3, 1.0, 2) * freq
        py, px = r.uniform(0, 2 * np.pi, 2)
        out += np.cos(2 * np.pi * fy * y + py) * np.cos(2 * np.pi * fx * x + px)
    return out / math.sqrt(terms)


def _vessel_paths(
    r: np.random.Generator, p: SampleParams, s: float
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Centre lines (x, y, width) of the vessel tree at render scale ``s``.

    Temporal arcades (a vein and an artery above and below) sweep around the fovea on an ellipse;
    nasal vessels run outwards with a decaying curvature; branches leave the arcades outwards, or
    inwards but stopping short of the avascular fovea.
    """
    dx, dy = p.disc_xy[0] * s, p.disc_xy[1] * s
    fx, fy = p.fovea_xy[0] * s, p.fovea_xy[1] * s
    dist = math.hypot(dx - fx, dy - fy)
    phi0 = math.atan2(dy - fy, dx - fx)
    w_main = 0.17 * p.disc_radius * s  # vein calibre ~ 1/6 of the disc radius
    paths: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def grow(
        x0: float,
        y0: float,
        ang0: float,
        length: float,
        w0: float,
        curv: float,
        tau: float,
        depth: int,
    ) -> None:
        """Append one vessel (angle = start + decaying curvature + jitter) and its branches."""
        n = max(4, int(length))
        k = np.arange(n, dtype=np.float64)
        ang = ang0 + np.cumsum(curv * np.exp(-k / tau) + r.normal(0, 0.03, n))
        xs, ys = x0 + np.cumsum(np.cos(ang)), y0 + np.cumsum(np.sin(ang))
        ws = w0 * np.linspace(1.0, 0.35, n)
        paths.append((xs, ys, ws))
        for _ in range(int(r.integers(0, 3)) if depth else 0):
            j = int(n * r.uniform(0.2, 0.8))
            sign = 1.0 if r.random() < 0.5 else -1.0
            grow(
                xs[j],
                ys[j],
                ang[j] + sign * r.uniform(0.4, 0.9),
                (n - j) * r.uniform(0.4, 0.8),
                ws[j] * r.uniform(0.55, 0.75),
                sign * r.uniform(0, 0.01),
                40.0,
                depth - 1,
            )

    for vert in (-1.0, 1.0):  # superior, inferior arcade pair
        for w_rel, db in ((1.0, 0.0), (0.7, r.uniform(-0.12, 0.12))):  # vein, artery
            sweep = r.uniform(2.0, 2.5)
            m = int(dist * sweep * 1.3)
            t = np.linspace(0.0, 1.0, m)
            # polar angle about the fovea; the radius spirals outwards with a slow wobble, so the
            # arcade bows around the macula and heads for the periphery instead of closing a circle
            phi = vert * math.copysign(1, math.cos(phi0)) * sweep * t
            b = r.uniform(0.68, 0.82) + db
            f1, f2, p1, p2 = r.uniform(1.0, 3.0), r.uniform(3.0, 6.0), *r.uniform(0, 6.3, 2)
            wob = 0.03 * np.sin(f1 * 6.3 * t + p1) + 0.012 * np.sin(f2 * 6.3 * t + p2)
            wob -= wob[0]
            rho = dist * (1 + wob + r.uniform(0.8, 1.6) * np.clip(t - 0.45, 0, None) ** 2)
            lx, ly = rho * np.cos(phi), rho * np.sin(phi) * b
            rx, ry = math.cos(phi0), math.sin(phi0)  # rotate onto the fovea->disc axis
            xs, ys = fx + lx * rx - ly * ry, fy + lx * ry + ly * rx
            ws = w_main * w_rel * np.linspace(1.0, 0.4, m)
            paths.append((xs, ys, ws))
            for _ in range(int(r.integers(3, 6))):  # branches
                j = int(m * r.uniform(0.12, 0.85))
                out_ang = math.atan2(ys[j] - fy, xs[j] - fx)
                if r.random() < 0.6:
                    ang, length = out_ang + r.normal(0, 0.35), dist * r.uniform(0.4, 0.9)
                else:  # towards the macula, stopping well before the fovea
                    ang = out_ang + math.pi + r.normal(0, 0.3)
                    length = max(6.0, math.hypot(xs[j] - fx, ys[j] - fy) - 0.45 * dist)
                grow(
                    xs[j],
                    ys[j],
                    ang,
                    length,
                    ws[j] * r.uniform(0.45, 0.7),
                    r.normal(0, 0.006),
                    40.0,
                    1,
                )
        # nasal vessels: away from the fovea, gently curved
        nas = math.atan2(vert * r.uniform(0.6, 1.6), math.cos(phi0) * 1.0)
        grow(dx, dy, nas, dist * r.uniform(0.7, 1.1), w_main * 0.75, r.normal(0, 0.004), 60.0, 2)
    for _ in range(int(r.integers(1, 4))):  # small vessels straight towards the macula
        a = phi0 + math.pi + r.normal(0, 0.5)
        grow(dx, dy, a, dist * r.uniform(0.3, 0.5), w_main * 0.35, r.normal(0, 0.006), 50.0, 0)
    return paths


def _vessel_layer(paths: list[tuple[np.ndarray, ...]], h: int, w: int) -> np.ndarray:
    """Vessel darkness map: distance to the nearest centre-line pixel against its half-width."""
    xs = np.concatenate([q[0] for q in paths])
    ys = np.concatenate([q[1] for q in paths])
    ws = np.concatenate([q[2] for q in paths]).astype(np.float32)
    xi, yi = np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    wmap = np.zeros((h, w), np.float32)
    np.maximum.at(wmap, (yi[ok], xi[ok]), ws[ok])
    dist, (iy, ix) = ndi.distance_transform_edt(wmap == 0, return_indices=True)
    wn = wmap[iy, ix]
    half = 0.5 * wn + 0.6  # at least ~2 px wide: no stair-stepped 1-px lines
    prof = np.clip(1.0 - (dist / half) ** 2, 0.0, 1.0)  # parabolic cross-section
    return (prof * np.minimum(1.0, 0.35 + wn / 2.2)).astype(np.float32)  # thin vessels paler


def _disc_layer(p: SampleParams, s: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Disc brightness and cup brightness maps, computed in a window around the disc."""
    disc = np.zeros((h, w), np.float32)
    cup = np.zeros((h, w), np.float32)
    cx, cy, R = p.disc_xy[0] * s, p.disc_xy[1] * s, p.disc_radius * s
    half = int(R * 2.2) + 2
    x0, x1 = max(0, int(cx) - half), min(w, int(cx) + half)
    y0, y1 = max(0, int(cy) - half), min(h, int(cy) + half)
    if x0 >= x1 or y0 >= y1:
        return disc, cup
    yy = (np.arange(y0, y1, dtype=np.float32)[:, None] - cy) / R
    # discs are vertical ovals: x is stretched so the unit circle is the disc margin
    xx = (np.arange(x0, x1, dtype=np.float32)[None, :] - cx) / (R * 0.92)
    rr = np.sqrt(xx**2 + yy**2)
    theta = np.arctan2(yy, xx)
    edge = 0.05
    disc_w = 0.5 - 0.5 * np.tanh((rr - 1.0) / edge * 1.25)
    # cup: vertical radius = CDR, horizontal shrunk by the elongation; a notch pushes it out locally
    temporal = -1.0 if p.eye == "OD" else 1.0
    cxo = 0.08 * temporal  # the cup sits slightly temporal in the disc
    cyy = yy / max(p.cdr, 0.05)
    cxx = (xx - cxo) * (1.0 + p.cup_elongation) / max(p.cdr, 0.05)
    rc = np.sqrt(cxx**2 + cyy**2)
    if p.notch > 0:
        dth = np.angle(np.exp(1j * (theta - p.notch_angle)))
        rc = rc / (1.0 + p.notch * np.exp(-(dth**2) / 0.12))
    cup_w = 0.5 - 0.5 * np.tanh((rc - 1.0) / 0.12)
    ring = np.exp(-(((rr - 1.12) / 0.12) ** 2)) * p.ppa  # peripapillary atrophy halo
    disc[y0:y1, x0:x1] = disc_w + 0.35 * ring
    cup[y0:y1, x0:x1] = cup_w * disc_w
    return disc, cup


def render_scan(p: SampleParams, config: SyntheticConfig | None = None) -> np.ndarray:
    """The SLO-like grayscale scan of ``p``: uint8 (height, width)."""
    cfg = config or SyntheticConfig()
    H, W, s = cfg.height, cfg.width, cfg.render_scale
    h, w = round(H * s), round(W * s)
    r = _rng(p.seed, p.index, _RENDER)
    acq = p.acquisition

    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    # field of view: a bright ellipse almost filling the frame, soft edge
    fy, fx = h / 2 + r.normal(0, 2), w / 2 + r.normal(0, 2)
    ay, ax = h * r.uniform(0.47, 0.50), w * r.uniform(0.47, 0.50)
    rr = np.sqrt(((yy - fy) / ay) ** 2 + ((xx - fx) / ax) ** 2)
    fov = np.clip((1.0 - rr) / 0.02, 0.0, 1.0)

    base = r.uniform(0.42, 0.55)
    retina = base + 0.06 * _smooth_field(r, h, w, 4, 2.5) + 0.025 * _smooth_field(r, h, w, 5, 9.0)
    choroid = ndi.gaussian_filter(r.standard_normal((h, w), dtype=np.float32), 1.6)
    retina += 0.05 * choroid
    # macula: broad dark zone with a darker foveal pit
    fxm, fym = p.fovea_xy[0] * s, p.fovea_xy[1] * s
    d2 = ((xx - fxm) ** 2 + (yy - fym) ** 2) / (p.disc_radius * s) ** 2
    retina -= r.uniform(0.08, 0.14) * np.exp(-d2 / 2.2) + r.uniform(0.05, 0.09) * np.exp(-d2 / 0.12)

    disc, cup = _disc_layer(p, s, h, w)
    retina += r.uniform(0.09, 0.15) * disc + r.uniform(0.22, 0.32) * cup
    vessels = _vessel_layer(_vessel_paths(r, p, s), h, w)
    retina -= r.uniform(0.22, 0.32) * vessels * (1.0 + 0.4 * disc)  # vessels stand out on the disc

    # acquisition: contrast about the mean, vignetting, blur, gain, noise
    mean = float(retina[fov > 0.5].mean())
    img = mean + acq.contrast * (retina - mean)
    rc = np.minimum(rr, 1.0)
    img *= 1.0 - acq.vignette * (rc * rc * rc)  # darkening grows towards the rim
    img = img * fov + 0.03 * (1 - fov)
    img = ndi.gaussian_filter(img, acq.blur * s)
    # sensor noise at render scale: SLO speckle spans a couple of pixels, and upsampling it keeps
    # the full-resolution work to one 8-bit resize; triangular noise from two uint8 draws is
    # near-Gaussian and ~10x cheaper than standard_normal
    noise = r.integers(0, 256, (h, w), dtype=np.uint8).astype(np.float32)
    noise -= r.integers(0, 256, (h, w), dtype=np.uint8)
    img *= np.float32(acq.gain * 255.0)
    img += noise * np.float32(acq.noise * 255.0 / _TRI_SD)
    img += 0.5
    small = np.clip(img, 0, 255, out=img).astype(np.uint8)
    scan = np.array(Image.fromarray(small).resize((W, H), Image.BILINEAR))
    if p.marker:
        _stamp(scan, r)
    return scan


def _stamp(img: np.ndarray, r: np.random.Generator) -> None:
    """A small bright device stamp in a corner of the dark surround, inside CLIP's centre crop."""
    H, W = img.shape
    crop = (H - W) // 2  # rows that Resize(shorter side) + CenterCrop drop at top and bottom
    sh, sw = 12, 30
    top = crop + 14 if r.random() < 0.5 else H - crop - 14 - sh
    left = 10 if r.random() < 0.5 else W - 10 - sw
    block = np.full((sh, sw), 235, np.uint8)
    block[3:-3, 3::6] = 90  # tick marks: reads as a printed label, not a blob
    img[top : top + sh, left : left + sw] = block


# ------------------------------------------------------------------------------------------------
# Text
# ------------------------------------------------------------------------------------------------

_POS_DX = (
    "primary open-angle glaucoma",
    "open-angle glaucoma",
    "primary open-angle glaucoma (POAG)",
    "normal-tension glaucoma",
    "pseudoexfoliation glaucoma",
    "pigmentary glaucoma",
    "chronic angle-closure glaucoma",
)
_NEG_DX = (
    "no glaucoma",
    "non-glaucoma",
    "no evidence of glaucoma",
    "normal optic nerve, no glaucoma",
    "healthy optic nerves, non-glaucoma",
)
_SUSPECT_DX = (
    "glaucoma suspect",
    "glaucoma suspect based on optic nerve appearance",
    "ocular hypertension, glaucoma suspect",
)
_OTHER_DX = (
    "cataract",
    "dry eye syndrome",
    "diabetes without retinopathy",
    "posterior vitreous detachment",
    "refractive error",
    "blepharitis",
)
_MEDS = (
    ("latanoprost 0.005% qhs", "latanoprost"),
    ("timolol 0.5% bid", "timolol"),
    ("dorzolamide tid", "dorzolamide"),
    ("brimonidine tid", "brimonidine"),
    ("dorzolamide-timolol bid", "dorzolamide-timolol"),
    ("bimatoprost qhs", "bimatoprost"),
)
_STAGE = ("mild", "moderate", "severe")
_HISTORY = (
    "History of cataract surgery OU on DATE_TIME.",
    "Family history of glaucoma (mother).",
    "PMH: hypertension, diabetes type 2.",
    "Referred by PERSON at LOCATION.",
    "Patient reports no problems with vision at night.",
    "No eye pain or flashes.",
    "Gonioscopy: open angles OU.",
    "Pachymetry 540/545 microns.",
    "Pupils equal, no APD.",
)


def _pick(r: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(r.integers(len(options)))]


def _cdr_text(v: float) -> str:
    return f"{min(0.95, max(0.05, round(v * 20) / 20)):.2f}".rstrip("0").rstrip(".")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def write_note(p: SampleParams, config: SyntheticConfig | None = None) -> tuple[str, str]:
    """Clinical note (PHI placeholders, ~200-600 chars) and summary (<= 180 chars) for ``p``.

    Both follow the recorded label ``p.glaucoma``; a flipped label makes them disagree with the scan.
    Most positive summaries state "... glaucoma" and most negative ones "no glaucoma" /
    "non-glaucoma", the words the zero-shot prompts match; some omit the diagnosis or hedge.
    """
    cfg = config or SyntheticConfig()
    r = _rng(p.seed, p.index, _TEXT)
    y = p.glaucoma
    sex = "female" if p.gender == 0 else "male"
    age = int(p.age)
    ambiguous = r.random() < cfg.suspect_p
    omit = r.random() < cfg.omit_diagnosis_p
    cdr_od = p.cdr + r.normal(0, cfg.cdr_report_sd)
    cdr_os = cdr_od + r.normal(0, 0.04)
    meds = [m for m in _MEDS if r.random() < 0.25][:2] or [_MEDS[int(r.integers(len(_MEDS)))]]
    on_meds = bool(y and r.random() < 0.8)
    eye = _pick(r, ("OU", "OD", "OS", "OU"))
    if ambiguous:
        dx = _pick(r, _SUSPECT_DX)
    elif y:
        dx = f"{_STAGE[min(2, int(p.severity * 3))]} {_pick(r, _POS_DX)}"
    else:
        dx = _pick(r, _NEG_DX)

    if y:
        reason = _pick(r, ("glaucoma follow-up", "IOP check", "visual field review", "follow-up"))
        rim = _pick(
            r,
            (
                "thin inferior rim",
                "superior and inferior rim thinning",
                "deep cupping",
                "vertical elongation of the cup",
            ),
        )
        rim = "inferior notch" if p.notch and r.random() < 0.7 else rim
        rnfl = _pick(
            r,
            (
                "OCT RNFL shows inferior thinning",
                "RNFL thinning superior and inferior",
                "OCT: inferotemporal RNFL thinning",
                "RNFL borderline inferiorly",
            ),
        )
        defect = _pick(r, ("superior arcuate", "inferior arcuate", "nasal step", "paracentral"))
        vf = f"HVF 24-2 with {defect} defect, MD {p.md:.1f} dB"
        if on_meds:
            plan = f"Continue {' and '.join(m[0] for m in meds)}"
        else:
            plan = f"Start {meds[0][0]}" + ("; consider SLT" if r.random() < 0.4 else "")
        rtc = _pick(r, ("RTC 3 months with HVF", "RTC 4 months with OCT", "follow up in 3 months"))
    else:
        reason = _pick(
            r,
            (
                "routine eye exam",
                "evaluation of optic nerve cupping",
                "blurry vision",
                "annual diabetic eye exam",
                "elevated IOP on screening",
            ),
        )
        rim = _pick(r, ("healthy rim", "pink rim, sharp margins", "rim intact 360"))
        rnfl = _pick(r, ("OCT RNFL within normal limits", "RNFL full OU", "OCT RNFL normal"))
        vf = f"HVF full, MD {p.md:.1f} dB" if r.random() < 0.6 else "Visual fields full to CF"
        plan = _pick(r, ("No treatment needed", "Artificial tears prn", "Observe, no drops"))
        rtc = _pick(r, ("RTC 1 year", "Routine follow-up in 12 months", "RTC 1 yr for DFE"))
    other = f"; {_pick(r, _OTHER_DX)}" if r.random() < 0.3 else ""
    history = [h for h in _HISTORY if r.random() < 0.15]
    sentences = [
        f"PERSON is a {age} yo {sex} seen on DATE_TIME for {reason}.",
        *history,
        f"IOP {p.iop[0]}/{p.iop[1]} mmHg" + (f" on {meds[0][1]}." if on_meds else "."),
        f"C/D {_cdr_text(cdr_od)} OD, {_cdr_text(cdr_os)} OS, {rim}.",
        f"{rnfl}. {vf}.",
        "" if omit else f"Assessment: {dx}{' ' + eye if y or ambiguous else ''}{other}.",
        f"Plan: {plan}. {_cap(rtc)}. Seen with Dr. PERSON.",
    ]
    note = " ".join(x for x in sentences if x)

    # summary: the diagnosis leads, details are added while they fit in 180 characters
    who = f"{age}-year-old {sex}"
    if omit:
        head = f"{who} seen for {reason}"
    elif y and not ambiguous:
        head = _pick(r, (f"{who} with {dx} {eye}", f"Patient has {dx}", f"{_cap(dx)} in a {who}"))
    elif ambiguous:
        head = _pick(r, (f"{who}, {dx}", f"{_cap(dx)}; {who}"))
    else:
        head = _pick(
            r,
            (
                f"{who} with {dx}",
                f"Non-glaucoma exam in a {who}",
                f"{who}: {dx}, normal optic nerve",
                f"{_cap(dx)}; {who}",
            ),
        )
    parts = [
        f"CDR {_cdr_text(cdr_od)}",
        f"IOP {p.iop[0]} mmHg" + (f" on {meds[0][1]}" if on_meds else ""),
        rnfl.replace("OCT: ", "").replace("OCT ", ""),
        rim,
        rtc,
    ]
    keep = r.random(len(parts)) < 0.75
    summary = _cap(head)
    for part, k in zip(parts, keep, strict=True):
        if k and len(summary) + len(part) + 3 <= 180:
            summary = f"{summary}; {part}"
    return note, summary + "."


def _note_extra(p: SampleParams, note: str) -> str:
    """The note with the demographics prepended, as the real ``note_extra`` key."""
    return f"{_demographic_text(p)} {note}"


def _csv_value(attr: str, code: int) -> str:
    return "unknown" if code == UNKNOWN else ATTRIBUTES[attr].csv_values[code]


def _marital(code: int) -> str:
    return "unknown" if code == UNKNOWN else MARITAL_STATUS[code]


def _demographic_text(p: SampleParams) -> str:
    return (
        f"Age: {p.age:.2f}. Gender: {_csv_value('gender', p.gender)}. "
        f"Race: {_csv_value('race', p.race)}. Ethnicity: {_csv_value('ethnicity', p.ethnicity)}. "
        f"Language: {_csv_value('language', p.language)}. "
        f"Marital status: {_marital(p.maritalstatus)}."
    )


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------


def make_sample(
    p: SampleParams, config: SyntheticConfig | None = None, *, note: str | None = None
) -> dict[str, np.ndarray]:
    """The npz members of ``p`` (real keys, dtypes and 0-d scalars)."""
    note = write_note(p, config)[0] if note is None else note
    return {
        "slo_fundus": render_scan(p, config),
        "md": np.array(p.md, np.float32),
        "tds": np.array(p.tds, np.float32),
        "age": np.array(p.age, np.float64),
        "gender": np.array(p.gender, np.int64),
        "race": np.array(p.race, np.int64),
        "ethnicity": np.array(p.ethnicity, np.int64),
        "language": np.array(p.language, np.int64),
        "maritalstatus": np.array(p.maritalstatus, np.int64),
        "glaucoma": np.array(p.glaucoma, np.int64),
        "note": np.array(note),
        "note_extra": np.array(_note_extra(p, note)),
    }


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray], *, level: int = 1) -> None:
    """Like ``np.savez_compressed`` (deflated zip of .npy members), but byte-reproducible and faster.

    ``zipfile`` stamps members with the wall clock and cannot choose a deflate strategy; Huffman-only
    coding halves the time on noisy scans for ~1% more bytes. Plain zip, no zip64: members < 4 GiB.
    """
    central = []
    with open(path, "wb") as f:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(value), allow_pickle=False)
            raw = buf.getvalue()
            z = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_HUFFMAN_ONLY)
            data = z.compress(raw) + z.flush()
            name = f"{key}.npy".encode()
            # version 2.0, no flags, deflate, fixed time/date, crc, sizes, name length, no extra
            meta = (20, 0, 8, *_DOS_TIME, zlib.crc32(raw), len(data), len(raw), len(name), 0)
            central.append((name, meta, f.tell()))
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *meta) + name + data)
        start = f.tell()
        for name, meta, offset in central:
            # made by 2.0, then the local fields, comment/disk/internal attrs, rw-r--r--, offset
            entry = (20, *meta, 0, 0, 0, 0o644 << 16, offset)
            f.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", *entry) + name)
        size, count = f.tell() - start, len(central)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, size, start, 0))


def _split_of(n: int, seed: int, fractions: tuple[float, float, float]) -> list[str]:
    """Split name of each id 1..n: shuffled ids, exact 70/10/20 counts."""
    n_train = round(n * fractions[0])
    n_val = min(n - n_train, round(n * fractions[1]))
    order = np.random.default_rng([seed, n, _SPLIT_STREAM]).permutation(n)
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = SPLIT_NAMES[0]
    split[order[n_train : n_train + n_val]] = SPLIT_NAMES[1]
    split[order[n_train + n_val :]] = SPLIT_NAMES[2]
    return list(split)


def _work(args: tuple[str, int, float, SyntheticConfig, list[tuple[int, str]]]) -> list[list[str]]:
    out, seed, bias, cfg, items = args
    rows = []
    for index, split in items:
        p = sample_params(index, seed=seed, bias=bias, config=cfg)
        note, summary = write_note(p, cfg)
        name = f"data_{index:05d}.npz"
        write_npz(Path(out) / SPLIT_DIRS[split] / name, make_sample(p, cfg, note=note))
        rows.append(
            [
                name,
                f"{p.age:.2f}",
                _csv_value("gender", p.gender),
                _csv_value("race", p.race),
                _csv_value("ethnicity", p.ethnicity),
                _csv_value("language", p.language),
                _marital(p.maritalstatus),
                note,
                summary,
                _LABEL_SPELLING[p.glaucoma],
                split,
            ]
        )
    return rows


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def generate(
    out: str | Path,
    *,
    n: int = 10_000,
    seed: int = 0,
    bias: float = 1.0,
    workers: int | None = None,
    config: SyntheticConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic FairVLMed folder to ``out`` and return its path.

    Refuses a folder that already holds a data set unless ``overwrite`` (which then removes only the
    files this function writes).
    """
    cfg = config or SyntheticConfig()
    bias = _check_bias(bias)
    if not 1 <= int(n) <= MAX_N:
        raise ValueError(f"n={n} is out of range; use 1 to {MAX_N} (ids have 5 digits)")
    n = int(n)
    root = Path(out)
    ours = [
        root / "data_summary.csv",
        root / "SYNTHETIC.md",
        *(root / d for d in SPLIT_DIRS.values()),
    ]
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder; choose another --out")
    if any(q.exists() for q in ours):
        if not overwrite:
            raise ValueError(f"{root}: already holds a data set; pass --overwrite or another --out")
        for q in ours:
            if q.is_dir():
                shutil.rmtree(q)
            else:
                q.unlink(missing_ok=True)
    for d in SPLIT_DIRS.values():
        (root / d).mkdir(parents=True, exist_ok=True)

    splits = _split_of(n, seed, cfg.split_fractions)
    items = [(i + 1, splits[i]) for i in range(n)]
    workers = max(1, min(workers or os.cpu_count() or 1, n))
    chunk = max(1, min(64, math.ceil(n / (workers * 4))))
    jobs = [(str(root), seed, bias, cfg, c) for c in _chunks(items, chunk)]
    if workers == 1:
        results = [_work(j) for j in jobs]
    else:
        # spawn/forkserver: safe even if the caller already started threads (torch, gradio)
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(workers) as pool:
            results = pool.map(_work, jobs, chunksize=1)
    rows = [row for chunk_rows in results for row in chunk_rows]

    with (root / "data_summary.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    (root / "SYNTHETIC.md").write_text(_readme(n, seed, bias, cfg), encoding="utf-8")
    return root


def _readme(n: int, seed: int, bias: float, cfg: SyntheticConfig) -> str:
    knobs = "\n".join(f"| `{f.name}` | `{getattr(cfg, f.name)!r}` |" for f in fields(cfg))
    doc = (__doc__ or "").split("\n\n", 1)[1]
    return (
        "# Synthetic Harvard-FairVLMed\n\n"
        "Not real patients: written by `fairmoe.data.synthetic` for tests and demos.\n\n"
        f"Command: `python -m fairmoe.data.synthetic --out DIR --n {n} --seed {seed} --bias {bias}`\n\n"
        f"- n = {n}, seed = {seed}, bias = {bias}\n\n"
        f"{doc}\n## Knobs (SyntheticConfig; bias knobs at bias = 1)\n\n"
        f"| knob | value |\n|---|---|\n{knobs}\n"
    )


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m fairmoe.data.synthetic --out DIR --n N --seed S [--bias B] [--workers W]``."""
    ap = argparse.ArgumentParser(
        prog="python -m fairmoe.data.synthetic",
        description="Write a synthetic Harvard-FairVLMed folder with controllable group bias.",
    )
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--n", type=int, default=10_000, help="number of patients (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bias", type=float, default=1.0, help=f"0 unbiased .. {MAX_BIAS}; default 1")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    ap.add_argument("--overwrite", action="store_true", help="replace a data set already in --out")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        root = generate(
            args.out,
            n=args.n,
            seed=args.seed,
            bias=args.bias,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} samples to {root} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
