"""How a prediction's certainty reads to a clinician: the ``uncertainty`` line of every result."""

from __future__ import annotations

__all__ = ["NOT_ASSESSABLE", "uncertainty"]


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
