"""Latent parameters of one synthetic patient: demographics, label, anatomy and the bias mechanisms.

Each group of draws has its own random stream (``Stream``), so the draws of one group never shift
when another group draws more or fewer numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fairmoe.schema import ATTRIBUTES, MARITAL_STATUS, UNKNOWN

from .config import Stream, SyntheticConfig, check_bias


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


def rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The random stream ``stream`` of sample ``index``: independent of the worker count."""
    return np.random.default_rng([seed, index, stream])


def group_code(attr: str, name: str) -> int:
    """Code of group ``name`` (e.g. "Black") of attribute ``attr`` in fairmoe.schema."""
    return ATTRIBUTES[attr].groups.index(name)


def draw_acquisition(
    seed: int, index: int, race: int, *, bias: float = 1.0, config: SyntheticConfig | None = None
) -> Acquisition:
    """Acquisition settings of sample ``index``; at ``bias=0`` they do not depend on ``race``."""
    cfg = config or SyntheticConfig()
    bias = check_bias(bias)
    r = rng(seed, index, Stream.ACQUISITION)
    u = r.random(5)

    def lerp(lo_hi: tuple[float, float], t: float) -> float:
        return lo_hi[0] + (lo_hi[1] - lo_hi[0]) * float(t)

    weights = {group_code("race", g): w for g, w in cfg.acquisition_groups}
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
    r = rng(seed, index, Stream.DEMOGRAPHICS)
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


def _draw_label(
    seed: int,
    index: int,
    cfg: SyntheticConfig,
    bias: float,
    demo: Mapping[str, int],
    force: Mapping[str, float],
) -> tuple[int, int, bool, float]:
    """True label, recorded label, flipped, age: real per-group base rates, then label noise in
    small groups (mechanism 4). Age is drawn here because it depends on the true label."""
    race, language = demo["race"], demo["language"]
    r = rng(seed, index, Stream.LABEL)
    u_label, u_flip = r.random(2)
    logit = math.log(cfg.prevalence_by_race[race] / (1 - cfg.prevalence_by_race[race]))
    logit += cfg.language_logit_shift[language] + cfg.male_logit_shift * demo["gender"]
    y_true = int(u_label < 1 / (1 + math.exp(-logit)))
    in_flip_group = any(demo[a] == group_code(a, g) for a, g in cfg.flip_groups)
    flipped = bool(in_flip_group and u_flip < min(1.0, cfg.flip_prob * bias))
    if "glaucoma" in force:
        y_true, flipped = int(force["glaucoma"]), False
    y_obs = 1 - y_true if flipped else y_true
    age = r.normal(cfg.age_mean + cfg.age_glaucoma_shift * (2 * y_true - 1), cfg.age_sd)
    age = float(force.get("age", np.clip(age, *cfg.age_range)))
    return y_true, y_obs, flipped, age


def _draw_anatomy(
    seed: int, index: int, cfg: SyntheticConfig, y_true: int, confound: float
) -> dict[str, Any]:
    """Disc, cup, fovea and IOP (``SampleParams`` fields): the label signal and the physiological
    confound (mechanism 3), whose strength for this patient is ``confound``."""
    a = rng(seed, index, Stream.ANATOMY)
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
    return {
        "severity": severity,
        "cdr": cdr,
        "cup_elongation": float(elong),
        "notch": notch,
        "notch_angle": notch_angle,
        "disc_radius": disc_r,
        "disc_xy": disc,
        "fovea_xy": fovea,
        "ppa": ppa,
        "eye": eye,
        "iop": iop,
    }


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
    bias = check_bias(bias)
    force = _check_force(force or {})
    demo = _draw_demographics(seed, index, cfg, force)
    race = demo["race"]
    y_true, y_obs, flipped, age = _draw_label(seed, index, cfg, bias, demo, force)
    confound = bias if race == group_code("race", cfg.confound_race) else 0.0
    anatomy = _draw_anatomy(seed, index, cfg, y_true, confound)

    # spurious marker (mechanism 2): tracks the recorded label in marker_groups only
    p_marker = cfg.marker_base
    if ATTRIBUTES["race"].groups[race] in cfg.marker_groups:
        p_marker += cfg.marker_strength * bias * (1 if y_obs else -1)
    marker = bool(rng(seed, index, Stream.MARKER).random() < np.clip(p_marker, 0.0, 1.0))

    md, tds = _visual_field(rng(seed, index, Stream.FIELD), y_true, anatomy["severity"])
    return SampleParams(
        index=index,
        seed=seed,
        age=round(age, 2),
        gender=demo["gender"],
        race=race,
        ethnicity=demo["ethnicity"],
        language=demo["language"],
        maritalstatus=demo["maritalstatus"],
        glaucoma_true=y_true,
        glaucoma=y_obs,
        label_flipped=flipped,
        acquisition=draw_acquisition(seed, index, race, bias=bias, config=cfg),
        marker=marker,
        md=md,
        tds=tds,
        **anatomy,
    )
