"""How a prediction reads to a clinician: its decision, the ``uncertainty`` line of every result.

One rule for refusals (:func:`decision_of`): a scan the assessability check refuses gets no
decision, wherever it is scored (``Predictor.predict``, ``/predict``, a cohort, ``python -m
fairmoe.score``); its probability is still reported, marked unreliable, and must not be used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from fairmoe.guardrails import band_contradicts as contradicts
from fairmoe.metrics.reliability import Band

__all__ = [
    "NOT_ASSESSABLE",
    "NOT_ASSESSABLE_CELL",
    "Decision",
    "assessable_cell",
    "band_for",
    "band_sentence",
    "contradicts",
    "decision_cell",
    "decision_of",
    "is_refused",
    "refused_cell",
    "uncertainty",
]

Decision = Literal["glaucoma", "no glaucoma"]
NOT_ASSESSABLE_CELL = "not assessable"  # a refused scan's decision in a scores CSV


def is_refused(assessed: Mapping[str, Any]) -> bool:
    """Whether an assessment (``Assessment.to_dict()`` or ``unchecked()``) refuses the scan: a
    fitted check ran and failed. A model without a fitted check refuses nothing."""
    return bool(assessed.get("checked")) and not assessed.get("assessable", True)


def decision_of(p: float, threshold: float, *, assessable: bool = True) -> Decision | None:
    """The decision at the operating point, or None for a scan that is not assessable: its
    probability means nothing, so no side of the threshold is a decision."""
    if not assessable:
        return None
    return "glaucoma" if p >= threshold else "no glaucoma"


def decision_cell(decision: Decision | None) -> str:
    """A decision as a scores CSV writes it: "not assessable" for a refused scan."""
    return decision if decision is not None else NOT_ASSESSABLE_CELL


def assessable_cell(assessed: Mapping[str, Any]) -> Literal["yes", "no", "not checked"]:
    """A scores CSV's ``assessable`` cell: "no" (refused: the probability is unreliable), "yes",
    or "not checked" (the model has no fitted check)."""
    if not assessed.get("checked"):
        return "not checked"
    return "no" if is_refused(assessed) else "yes"


def refused_cell(cell: str | None) -> bool:
    """Whether a scores CSV's ``assessable`` cell (:func:`assessable_cell`, or a user's own file)
    marks a refused scan."""
    return (cell or "").strip().lower() == "no"


# contradicts: fairmoe.guardrails.band_contradicts, the rule the Fairness tab's warnings use too


def uncertainty(p: float, threshold: float) -> str:
    """How sure the model is of a decision, in words: inconclusive within 0.1 of the operating
    point, moderate within 0.25, high beyond."""
    margin = abs(p - threshold)
    if margin < 0.1:
        # one decimal more, so that a "50%" below a 50% operating point does not look contradictory
        side = "below" if p < threshold else "at or above"
        decision = "no glaucoma" if p < threshold else "glaucoma"
        return (
            f"Inconclusive: {p:.1%} is {side} the {threshold:.1%} operating point, hence "
            f"'{decision}', but so close to it that the model cannot tell these cases apart "
            "reliably. Treat it as 'not sure'."
        )
    if margin < 0.25:
        return "Moderate confidence: the probability is on one side of the operating point but not far."
    return "High model confidence. This is still a research model, not a diagnosis."


NOT_ASSESSABLE = (
    "Unreliable: this scan is not assessable by this model, so its probability means nothing. "
    "Do not use this decision."
)


def band_for(p: float, threshold: float) -> tuple[float, float]:
    """The test-set score band a clinician compares a probability with: below the next tenth
    under the operating point ("scored below 0.2" for 0.15), from the tenth below above it."""
    tenth = math.floor(p * 10 + 1e-9)
    if p < threshold:
        return 0.0, min((tenth + 1) / 10, threshold)
    return max(tenth / 10, threshold), 1.0


def band_sentence(who: str, band: Band) -> str:
    """ "Of Black patients scored below 0.2 in the test set, 28% had glaucoma (9 of 32)."""
    where = f"below {band.high:.1f}" if band.low == 0.0 else f"{band.low:.1f} or more"
    if not band.n:
        return f"No {who} in the test set scored {where}."
    return (
        f"Of {who} scored {where} in the test set, {band.observed:.0%} had glaucoma "
        f"({band.n_pos} of {band.n})."
    )
