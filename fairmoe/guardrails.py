"""Guardrails on fairness numbers: the warnings a reader needs before trusting a metric.

Every view of a fairness report (the app's Fairness and Cohort tabs, ``/fairness``, the audit)
shows these next to the numbers. Rules, and the case that triggers each:
- a group with fewer than ``MIN_GROUP_N`` cases is *too small*: its AUC and rates swing with a few
  patients (the report's bootstrap interval says how much);
- a group with only one class has an *undefined* AUC; ES-AUC then sums over the groups whose AUC
  is defined (FairCLIP's formula would be undefined), so that group does not count in it;
- a model that flags (almost) everyone or no one has DPD and DEOdds near 0 only because every
  group is flagged alike: a *degenerate* operating point, not fairness;
- a threshold strategy that flags more than half of a group's healthy patients (FPR > 0.5), or
  costs more than ``MAX_ACCURACY_DROP`` accuracy against the single threshold, is flagged;
- per-group thresholds need the patient's attribute at deployment, which is itself a choice;
- a group whose calibration error (ECE) is over ``ECE_RATIO`` times everyone's, or whose observed
  glaucoma rate contradicts a confident band (scores below 0.2 or from 0.8 up), is *miscalibrated*.
Group reliability itself (too small, undefined) is defined once, in
:func:`fairmoe.metrics.result.group_flag`.
"""

from __future__ import annotations

from fairmoe.metrics.reliability import Band
from fairmoe.metrics.result import MIN_GROUP_N, Caveat, FairnessResult, Interval

__all__ = [
    "DEGENERATE_RATE",
    "ECE_RATIO",
    "MAX_ACCURACY_DROP",
    "MAX_GROUP_FPR",
    "MIN_BAND_N",
    "MIN_GROUP_N",
    "BAND_MARGIN",
    "band_contradicts",
    "result_warnings",
    "strategy_warnings",
]

DEGENERATE_RATE = 0.98  # flagging >= 98% (or <= 2%) of everyone makes parity gaps meaningless
MAX_GROUP_FPR = 0.5  # a strategy that flags more than half of a group's healthy eyes
MAX_ACCURACY_DROP = 0.05  # accuracy lost against the single cost-minimising threshold
ECE_RATIO = 2.0  # a group whose calibration error is over twice everyone's
MIN_BAND_N = 10  # a confident band's observed rate means little with fewer cases in it
BAND_MARGIN = 0.05  # observed rate this far outside a confident band contradicts "confident"


def _fmt_ci(ci: Interval | None) -> str:
    return f" (95% CI {ci.low:.2f} to {ci.high:.2f})" if ci else ""


def band_contradicts(band: Band) -> bool:
    """Whether enough cases in a score band show a glaucoma rate outside it (by BAND_MARGIN):
    a score there is then not a confident answer for them. Bands start at 0 or end at 1."""
    obs = band.observed
    if band.n < MIN_BAND_N or obs is None:
        return False
    if band.low == 0.0:
        return obs > band.high + BAND_MARGIN
    return obs < band.low - BAND_MARGIN


def _band_caveat(name: str, band: Band) -> Caveat | None:
    """A confident band whose observed rate contradicts it, for one group."""
    if not band_contradicts(band):
        return None
    where = f"below {band.high:.1f}" if band.low == 0.0 else f"{band.low:.1f} or more"
    return Caveat(
        "warning",
        "confident_band",
        f"{name}: of {band.n} test patients scored {where}, {band.observed:.0%} had glaucoma; "
        "the model's confident scores do not hold for this group.",
        name,
    )


def result_warnings(result: FairnessResult) -> tuple[Caveat, ...]:
    """Warnings for a fairness result: small, empty and one-class groups (quoting the AUC interval
    where known), a degenerate operating point, and miscalibrated groups."""
    out: list[Caveat] = []
    for g in result.groups:
        if g.n == 0:
            out.append(
                Caveat("info", "empty_group", f"{g.name}: no cases, left out of every gap.", g.name)
            )
            continue
        if g.auc is None:
            missing = "glaucoma" if g.n_pos == 0 else "healthy"
            out.append(
                Caveat(
                    "warning",
                    "one_class",
                    f"{g.name}: no {missing} cases among {g.n}, so its "
                    "AUC is undefined and it does not count in ES-AUC.",
                    g.name,
                )
            )
        if g.n < MIN_GROUP_N:
            out.append(
                Caveat(
                    "caution",
                    "small_group",
                    f"{g.name}: only {g.n} cases (fewer than "
                    f"{MIN_GROUP_N}); its AUC{_fmt_ci(g.ci.auc)} and rates are unreliable.",
                    g.name,
                )
            )
            continue  # calibration of a handful of cases says nothing
        if result.ece and g.ece is not None and g.ece > ECE_RATIO * result.ece:
            out.append(
                Caveat(
                    "warning",
                    "group_ece",
                    f"{g.name}: calibration error {g.ece:.3f}, over {ECE_RATIO:g}x everyone's "
                    f"({result.ece:.3f}); its probabilities are off by "
                    f"{g.citl:+.2f} on average.",
                    g.name,
                )
            )
        for band in g.bands:
            c = _band_caveat(g.name, band)
            if c:
                out.append(c)
    known = result.known
    rate = result.flagged / known if known else None
    if rate is not None and (rate >= DEGENERATE_RATE or rate <= 1 - DEGENERATE_RATE):
        who = "everyone" if rate >= DEGENERATE_RATE else "no one"
        out.append(
            Caveat(
                "warning",
                "degenerate",
                f"The model flags {rate:.0%} of cases (almost "
                f"{who}) at this threshold: DPD ({result.dpd:.3f}) and DEOdds "
                f"({result.deodds:.3f}) look fair only because every group is treated "
                "alike by a useless rule.",
            )
        )
    return tuple(out)


def strategy_warnings(
    baseline: FairnessResult, chosen: FairnessResult, *, per_group: bool
) -> tuple[Caveat, ...]:
    """Warnings for thresholds chosen by a strategy (``chosen``) against the single threshold
    (``baseline``); both results of the same attribute."""
    out: list[Caveat] = []
    for g in chosen.groups:
        if g.fpr is not None and g.fpr > MAX_GROUP_FPR:
            out.append(
                Caveat(
                    "warning",
                    "high_fpr",
                    f"{g.name}: {g.fpr:.0%} of healthy "
                    f"patients are flagged (FPR above {MAX_GROUP_FPR:.0%}).",
                    g.name,
                )
            )
    drop = baseline.accuracy - chosen.accuracy
    if drop > MAX_ACCURACY_DROP:
        out.append(
            Caveat(
                "warning",
                "accuracy_drop",
                f"Overall accuracy falls from {baseline.accuracy:.3f} "
                f"to {chosen.accuracy:.3f} ({drop:.3f}) against the single threshold.",
            )
        )
    if chosen.known:
        out.append(
            Caveat(
                "info",
                "flag_rate",
                f"These thresholds flag {chosen.flagged / chosen.known:.0%} of "
                f"patients (accuracy {chosen.accuracy:.3f}).",
            )
        )
    if per_group:
        out.append(
            Caveat(
                "caution",
                "needs_attribute",
                f"Per-group thresholds need each patient's "
                f"{chosen.attribute} at deployment, to choose the threshold.",
            )
        )
    return tuple(out)
