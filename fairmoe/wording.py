"""How a prediction's certainty reads to a clinician: the ``uncertainty`` line of every result."""

from __future__ import annotations

import math

from fairmoe.guardrails import band_contradicts as contradicts
from fairmoe.metrics.reliability import Band

__all__ = ["NOT_ASSESSABLE", "band_for", "band_sentence", "contradicts", "uncertainty"]
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
