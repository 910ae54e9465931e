"""Every knob of the synthetic generator, the constants its modules share and the CSV spellings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fairmoe.schema import ATTRIBUTES, LABEL_CSV, MARITAL_STATUS, SPLITS, SUMMARY_COLUMNS, UNKNOWN

MAX_BIAS = 2.0  # above this the probability knobs saturate and contrast would go negative
MAX_N = 99_999  # 5-digit file ids, as in the real release
SPLIT_NAMES = tuple(SPLITS)  # training, validation, test (CSV "use" spellings)
SPLIT_DIRS = {s: SPLITS[s][0] for s in SPLIT_NAMES}  # canonical folder names
CSV_COLUMNS = SUMMARY_COLUMNS  # data_summary.csv columns in the real order
LABEL_SPELLING = {code: word for word, code in LABEL_CSV.items()}  # 1 -> "yes"


class Stream:
    """Ids of the per-sample random streams, ``np.random.default_rng([seed, index, stream])``.

    Independent streams, so e.g. acquisition draws do not shift with demographics. The values are
    part of the output: changing one changes every file.
    """

    DEMOGRAPHICS, LABEL, ANATOMY, ACQUISITION, MARKER, TEXT, RENDER, FIELD = range(8)
    SPLIT = 0x5E1  # the split permutation, apart from every sample index


@dataclass(frozen=True)
class NoteConfig:
    """Wording odds of the clinical note and summary; not bias knobs (the same for every group).

    They only vary the text around the diagnosis, so that a text model cannot key on a fixed
    template. Changing any of them changes every note and summary (and so the CSV and npz bytes).
    """

    # fellow eye: OS CDR = quoted OD CDR + noise; the two eyes are similar, not identical
    cdr_fellow_sd: float = 0.04
    # the chart lists each drug with this chance; if none is listed, one is drawn at random
    med_p: float = 0.25
    max_meds: int = 2  # a plan names at most two drugs ("Continue A and B")
    on_meds_p: float = 0.8  # glaucoma patients already on drops ("Continue"), else "Start"
    slt_p: float = 0.4  # an untreated glaucoma plan adds "consider SLT"
    notch_rim_p: float = 0.7  # a notched disc is written up as "inferior notch", else rim wording
    hvf_md_p: float = 0.6  # a normal note quotes the HVF MD, else "Visual fields full to CF"
    other_dx_p: float = 0.3  # an unrelated second diagnosis follows the assessment
    history_p: float = 0.15  # each history sentence appears independently: notes vary in length
    summary_part_p: float = 0.75  # each detail (CDR, IOP, RNFL, rim, RTC) is offered to a summary
    summary_max_chars: int = 180  # GPT-4 summaries of the real release are at most 180 characters
    cdr_quote_steps: int = 20  # CDRs are quoted to the nearest 1/20 (0.05), as clinicians do
    cdr_quote_range: tuple[float, float] = (0.05, 0.95)  # nobody writes a C/D of 0 or 1


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
    marker_strength: float = 0.30  # P(stamp) = marker_base +/- strength by recorded label
    marker_base: float = 0.5  # P(stamp) where it does not track the label; 0 = no stamp at all
    # stamp (rows, columns) in full-resolution pixels: 12x30 is about 2x6 px at 96 px, far below
    # one 12-px patch; 72x72 covers a whole patch (64 full-resolution px at 96 px / patch 12)
    marker_size: tuple[int, int] = (12, 30)
    # gap (rows, columns) between the stamp and the corner of CLIP's centre crop; (0, 0) puts a
    # 64-px-or-larger stamp over the crop's corner patch
    marker_margin: tuple[int, int] = (14, 10)
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
    # wording odds of the note text: not bias or data knobs, so SYNTHETIC.md's table leaves them out
    note: NoteConfig = field(default_factory=NoteConfig)


def check_bias(bias: float) -> float:
    """``bias`` as a float, or ValueError outside 0..MAX_BIAS."""
    bias = float(bias)
    if not 0.0 <= bias <= MAX_BIAS:
        raise ValueError(
            f"bias={bias} is out of range; use 0 (unbiased) to {MAX_BIAS} (1 = default)"
        )
    return bias


# --- CSV spellings: the notes' demographic text and data_summary.csv use the same words ----------


def csv_value(attr: str, code: int) -> str:
    """CSV spelling of an attribute code (``"unknown"`` for -1)."""
    return "unknown" if code == UNKNOWN else ATTRIBUTES[attr].csv_values[code]


def marital_value(code: int) -> str:
    """CSV spelling of a marital-status code (``"unknown"`` for -1)."""
    return "unknown" if code == UNKNOWN else MARITAL_STATUS[code]


def mechanisms_config(which: str) -> SyntheticConfig:
    """The default knobs with only some bias mechanisms on, for the bias variants and scenarios.

    "all": every mechanism (the default); "shortcut": only the small device stamp that tracks the
    label in the marker groups; "acquisition": only the minority groups' worse acquisition quality;
    "stamp": only a large stamp (one full patch at 96 px) that tracks the label in White patients,
    every other mechanism off; "confound": only the Black-control physiological confound, no
    stamp. "NAME-free" (``TWINS``): a scenario's twin, the same patients (same seed) with its cause
    switched off and nothing else changed: no stamp at all, every group's bias-0 acquisition, no
    confound. A CLIP fine-tuned on the twin is the scenario's oracle.
    """
    base = SyntheticConfig()
    off_confound = {"confound_cdr_shift": 0.0, "confound_disc_scale": 0.0, "flip_groups": ()}
    stamp = replace(
        base,
        acquisition_groups=(),
        marker_strength=0.35,
        marker_size=(72, 72),
        marker_margin=(0, 0),
        **off_confound,
    )
    presets = {
        "all": base,
        "shortcut": replace(base, acquisition_groups=(), **off_confound),
        "acquisition": replace(base, marker_groups=(), **off_confound),
        "stamp": stamp,
        "stamp-free": replace(stamp, marker_groups=(), marker_base=0.0),
        "confound": replace(
            base, acquisition_groups=(), marker_groups=(), marker_base=0.0, flip_groups=()
        ),
    }
    # each scenario's twin: the same patients with its cause switched off (the oracle's data)
    presets["acquisition-free"] = replace(presets["acquisition"], acquisition_groups=())
    presets["confound-free"] = replace(
        presets["confound"], confound_cdr_shift=0.0, confound_disc_scale=0.0
    )
    if which not in presets:
        raise ValueError(f"unknown mechanisms {which!r}; expected one of {', '.join(presets)}")
    return presets[which]


MECHANISMS = (
    "all",
    "shortcut",
    "acquisition",
    "stamp",
    "stamp-free",
    "confound",
    "acquisition-free",
    "confound-free",
)
TWINS = {"stamp": "stamp-free", "acquisition": "acquisition-free", "confound": "confound-free"}


@dataclass(frozen=True)
class Scenario:
    """A generator preset with a known cause and its role in the fair test (SYNTHETIC.md)."""

    role: str  # one of ROLES
    mechanisms: str  # the preset of mechanisms_config it generates
    cause: str  # one line: what makes the groups differ


ROLES = ("positive_control", "primary", "secondary", "negative_control")
SCENARIOS = {
    "stamp-control": Scenario(
        "positive_control",
        "stamp",
        "A 72x72-px device stamp (one whole patch at 96 px) on 85% of White glaucoma scans and 15%"
        " of White controls; nothing else differs by group. CLIP's reliance is measured against"
        " the stamp-free twin (--mechanisms stamp-free, same seed).",
    ),
    "stamp": Scenario(
        "primary",
        "stamp",
        "The shortcut the positive control proves learnable (the same data): the stamp tracks"
        " glaucoma in White patients only, so a model that reads it is better for them alone.",
    ),
    "acquisition": Scenario(
        "secondary",
        "acquisition",
        "Black and Asian scans have lower contrast, more blur and vignetting: their scores shift"
        " while the ranking within each group stays largely intact.",
    ),
    "confound": Scenario(
        "negative_control",
        "confound",
        "Black patients have larger discs and, without glaucoma, a higher CDR: a disc reader at"
        " 96 px cannot separate this from glaucoma, so no fairness loss should close the gap.",
    ),
}


def scenario_record() -> dict[str, dict[str, str]]:
    """``{name: {"role", "mechanisms", "cause"}}``: the form runs.json records them in."""
    return {
        name: dict(role=s.role, mechanisms=s.mechanisms, cause=s.cause)
        for name, s in SCENARIOS.items()
    }
