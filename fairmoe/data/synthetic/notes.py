"""Clinical note and GPT-4-style summary of one synthetic patient.

Notes carry the real release's PHI placeholders (PERSON, DATE_TIME, LOCATION). Both texts follow
the recorded label, so a flipped label (bias mechanism 4) makes them disagree with the scan.
The wording odds are ``SyntheticConfig.note`` (``NoteConfig``); the word lists are below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import NoteConfig, Stream, SyntheticConfig, csv_value, marital_value
from .sampling import SampleParams, rng

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
_STAGE = ("mild", "moderate", "severe")  # severity 0..1 in equal thirds
_EYES = ("OU", "OD", "OS", "OU")  # OU listed twice: both eyes is the commonest wording
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


@dataclass(frozen=True)
class _Visit:
    """Everything drawn for one note, shared by the note and its summary."""

    age: int
    sex: str
    dx: str  # assessment wording (diagnosis, suspect or negative)
    eye: str
    ambiguous: bool  # "glaucoma suspect" wording
    omit: bool  # the diagnosis is never stated
    cdr_od: float
    cdr_os: float
    meds: list[tuple[str, str]]
    on_meds: bool
    reason: str
    rim: str
    rnfl: str
    vf: str
    plan: str
    rtc: str


def _pick(r: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(r.integers(len(options)))]


def _cdr_text(v: float, nc: NoteConfig) -> str:
    lo, hi = nc.cdr_quote_range
    steps = nc.cdr_quote_steps
    return f"{min(hi, max(lo, round(v * steps) / steps)):.2f}".rstrip("0").rstrip(".")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _glaucoma_findings(
    r: np.random.Generator,
    p: SampleParams,
    meds: list[tuple[str, str]],
    on_meds: bool,
    nc: NoteConfig,
) -> tuple[str, str, str, str, str, str]:
    """Reason, rim, RNFL, visual field, plan and return visit of a glaucoma note."""
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
    rim = "inferior notch" if p.notch and r.random() < nc.notch_rim_p else rim
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
        plan = f"Start {meds[0][0]}" + ("; consider SLT" if r.random() < nc.slt_p else "")
    rtc = _pick(r, ("RTC 3 months with HVF", "RTC 4 months with OCT", "follow up in 3 months"))
    return reason, rim, rnfl, vf, plan, rtc


def _normal_findings(
    r: np.random.Generator, p: SampleParams, nc: NoteConfig
) -> tuple[str, str, str, str, str, str]:
    """Reason, rim, RNFL, visual field, plan and return visit of a non-glaucoma note."""
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
    vf = f"HVF full, MD {p.md:.1f} dB" if r.random() < nc.hvf_md_p else "Visual fields full to CF"
    plan = _pick(r, ("No treatment needed", "Artificial tears prn", "Observe, no drops"))
    rtc = _pick(r, ("RTC 1 year", "Routine follow-up in 12 months", "RTC 1 yr for DFE"))
    return reason, rim, rnfl, vf, plan, rtc


def _draw_visit(r: np.random.Generator, p: SampleParams, cfg: SyntheticConfig) -> _Visit:
    """Every random choice of the note, in the stream order that the output depends on."""
    nc = cfg.note
    y = p.glaucoma
    ambiguous = r.random() < cfg.suspect_p
    omit = r.random() < cfg.omit_diagnosis_p
    cdr_od = p.cdr + r.normal(0, cfg.cdr_report_sd)
    cdr_os = cdr_od + r.normal(0, nc.cdr_fellow_sd)
    # one draw per drug (all of them, even past max_meds), then one more only if none was listed
    listed = [m for m in _MEDS if r.random() < nc.med_p][: nc.max_meds]
    meds = listed or [_MEDS[int(r.integers(len(_MEDS)))]]
    on_meds = bool(y and r.random() < nc.on_meds_p)
    eye = _pick(r, _EYES)
    if ambiguous:
        dx = _pick(r, _SUSPECT_DX)
    elif y:
        stage = _STAGE[min(len(_STAGE) - 1, int(p.severity * len(_STAGE)))]
        dx = f"{stage} {_pick(r, _POS_DX)}"
    else:
        dx = _pick(r, _NEG_DX)
    findings = _glaucoma_findings(r, p, meds, on_meds, nc) if y else _normal_findings(r, p, nc)
    reason, rim, rnfl, vf, plan, rtc = findings
    return _Visit(
        age=int(p.age),
        sex="female" if p.gender == 0 else "male",
        dx=dx,
        eye=eye,
        ambiguous=ambiguous,
        omit=omit,
        cdr_od=cdr_od,
        cdr_os=cdr_os,
        meds=meds,
        on_meds=on_meds,
        reason=reason,
        rim=rim,
        rnfl=rnfl,
        vf=vf,
        plan=plan,
        rtc=rtc,
    )


def _note_text(r: np.random.Generator, p: SampleParams, v: _Visit, nc: NoteConfig) -> str:
    y = p.glaucoma
    other = f"; {_pick(r, _OTHER_DX)}" if r.random() < nc.other_dx_p else ""
    history = [h for h in _HISTORY if r.random() < nc.history_p]
    diagnosis = f"{v.dx}{' ' + v.eye if y or v.ambiguous else ''}{other}"
    sentences = [
        f"PERSON is a {v.age} yo {v.sex} seen on DATE_TIME for {v.reason}.",
        *history,
        f"IOP {p.iop[0]}/{p.iop[1]} mmHg" + (f" on {v.meds[0][1]}." if v.on_meds else "."),
        f"C/D {_cdr_text(v.cdr_od, nc)} OD, {_cdr_text(v.cdr_os, nc)} OS, {v.rim}.",
        f"{v.rnfl}. {v.vf}.",
        "" if v.omit else f"Assessment: {diagnosis}.",
        f"Plan: {v.plan}. {_cap(v.rtc)}. Seen with Dr. PERSON.",
    ]
    return " ".join(x for x in sentences if x)


def _summary_text(r: np.random.Generator, p: SampleParams, v: _Visit, nc: NoteConfig) -> str:
    """The diagnosis leads; details are added while they fit in ``nc.summary_max_chars``."""
    who = f"{v.age}-year-old {v.sex}"
    dx = v.dx
    if v.omit:
        head = f"{who} seen for {v.reason}"
    elif p.glaucoma and not v.ambiguous:
        head = _pick(r, (f"{who} with {dx} {v.eye}", f"Patient has {dx}", f"{_cap(dx)} in a {who}"))
    elif v.ambiguous:
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
        f"CDR {_cdr_text(v.cdr_od, nc)}",
        f"IOP {p.iop[0]} mmHg" + (f" on {v.meds[0][1]}" if v.on_meds else ""),
        v.rnfl.replace("OCT: ", "").replace("OCT ", ""),
        v.rim,
        v.rtc,
    ]
    keep = r.random(len(parts)) < nc.summary_part_p
    summary = _cap(head)
    for part, k in zip(parts, keep, strict=True):
        # + 3: the "; " before the part and the final "."
        if k and len(summary) + len(part) + 3 <= nc.summary_max_chars:
            summary = f"{summary}; {part}"
    return summary + "."


def write_note(p: SampleParams, config: SyntheticConfig | None = None) -> tuple[str, str]:
    """Clinical note (PHI placeholders, ~200-600 chars) and summary (<= 180 chars) for ``p``.

    Both follow the recorded label ``p.glaucoma``; a flipped label makes them disagree with the scan.
    Most positive summaries state "... glaucoma" and most negative ones "no glaucoma" /
    "non-glaucoma", the words the zero-shot prompts match; some omit the diagnosis or hedge.
    """
    cfg = config or SyntheticConfig()
    r = rng(p.seed, p.index, Stream.TEXT)
    visit = _draw_visit(r, p, cfg)
    note = _note_text(r, p, visit, cfg.note)
    return note, _summary_text(r, p, visit, cfg.note)


def demographic_text(p: SampleParams) -> str:
    """The demographics sentence that the real ``note_extra`` puts before the note."""
    return (
        f"Age: {p.age:.2f}. Gender: {csv_value('gender', p.gender)}. "
        f"Race: {csv_value('race', p.race)}. Ethnicity: {csv_value('ethnicity', p.ethnicity)}. "
        f"Language: {csv_value('language', p.language)}. "
        f"Marital status: {marital_value(p.maritalstatus)}."
    )


def note_extra(p: SampleParams, note: str) -> str:
    """The note with the demographics prepended, as the real ``note_extra`` key."""
    return f"{demographic_text(p)} {note}"
