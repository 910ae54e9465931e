"""Words the app shows: method names, metric definitions, the operating point, disclaimers.

Kept in one place so the UI, the API docs and the tests use the same definitions.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from app.theme import icon
from fairmoe.checkpoint import RunMetadata
from fairmoe.schema import OPERATING_POINT
from fairmoe.scores import N_BOOT

__all__ = [
    "METRIC_HELP",
    "NOTE_HELP",
    "STRATEGY_HELP",
    "STRATEGY_LABELS",
    "disclaimer",
    "glossary_markdown",
    "help_span",
    "not_assessable_markdown",
    "operating_point_text",
    "scan_line",
]

NOT_ASSESSABLE_TITLE = "Not assessable by this model"

# What the clinical note does, said where it is typed: the decision never reads it.
NOTE_HELP = (
    "Read only to explain: the Experts tab colours its words by how far they agree with the "
    "scan. The note does not change the probability or the decision, which use the scan only, "
    "as in the Fair-MoE evaluation."
)

METRIC_HELP: dict[str, str] = {
    "AUC": "Area under the ROC curve: the chance that a random glaucoma case scores higher than a "
    "random non-glaucoma case. 0.5 = guessing, 1 = perfect. Does not depend on the threshold.",
    "Group AUC": "AUC computed within one group only.",
    "ES-AUC": "Equity-scaled AUC (FairCLIP): AUC / (1 + sum over groups of |AUC - group AUC|). "
    "Equals the AUC when every group is served equally well; lower means larger gaps.",
    "DPD": "Demographic parity difference (fairlearn): largest minus smallest selection rate "
    "across groups at the threshold. 0 = every group is flagged equally often.",
    "DEOdds": "Equalized odds difference (fairlearn, worst case): the larger of the TPR gap and the "
    "FPR gap across groups at the threshold. 0 = equal error rates.",
    "TPR": "True positive rate (sensitivity): share of glaucoma cases the model flags.",
    "FPR": "False positive rate (1 - specificity): share of healthy eyes the model flags.",
    "FNR": "False negative rate (under-diagnosis, 1 - sensitivity): share of glaucoma cases the "
    "model misses.",
    "PPV": "Positive predictive value: share of flagged cases that have glaucoma.",
    "NPV": "Negative predictive value: share of cases not flagged that are free of glaucoma.",
    "ECE": "Expected calibration error (Guo et al. 2017, 10 equal-width bins): how far, on "
    "average, the shown probability is from the observed glaucoma rate of cases given it. 0 = "
    "perfectly calibrated.",
    "CITL": "Calibration-in-the-large: mean probability minus the observed glaucoma rate. Above "
    "0: the model over-estimates the risk for this group; below 0: under-estimates it.",
    "Selection rate": "Share of all cases in a group the model flags as glaucoma.",
    "Accuracy": "Share of cases the model classifies correctly at the threshold.",
    "n": "Number of test cases in the group (cases with an unknown value are left out of groups).",
    "Threshold": "A case is called glaucoma when its calibrated probability is at or above this "
    f"value. {OPERATING_POINT:g} is the model's operating point.",
    "Cost ratio": "Cost of a missed glaucoma case (false negative) divided by the cost of a false "
    "alarm (false positive); 4 means a miss is four times as costly. Used by the strategies.",
    "95% CI": f"Percentile bootstrap interval over {N_BOOT:,} resamples of the test cases "
    "(fairmoe.metrics.bootstrap_ci). Wide intervals mean small groups: read gaps with care.",
}

STRATEGY_LABELS: dict[str, str] = {
    "single": "Single threshold",
    "group": "Group thresholds",
    "demographic_parity": "Demographic parity",
    "equal_opportunity": "Equal opportunity",
    "equal_accuracy": "Equal accuracy",
}

STRATEGY_HELP: dict[str, str] = {
    "single": "One threshold for everyone, the one with the least cost.",
    "group": "Each group gets its own least-cost threshold.",
    "demographic_parity": "Thresholds that flag every group at the same rate, at the least cost.",
    "equal_opportunity": "Thresholds that give every group the same TPR, at the least cost.",
    "equal_accuracy": "Thresholds that give every group the same accuracy, at the least cost.",
}


def help_span(term: str, label: str | None = None) -> str:
    """``label`` with its definition as a hover title (HTML allowed by gr.Markdown)."""
    text = METRIC_HELP.get(term, "")
    shown = html.escape(label or term)
    if not text:
        return shown
    # "|" would end a markdown table cell even inside an attribute
    title = html.escape(text, quote=True).replace("|", "&#124;")
    return f'<abbr title="{title}">{shown}</abbr>'


def glossary_markdown() -> str:
    rows = "\n".join(f"| **{k}** | {v} |" for k, v in METRIC_HELP.items())
    strategies = "\n".join(f"| **{STRATEGY_LABELS[k]}** | {v} |" for k, v in STRATEGY_HELP.items())
    return (
        "| Term | Definition |\n|---|---|\n"
        + rows
        + "\n\n| Strategy | What it does |\n|---|---|\n"
        + strategies
    )


def operating_point_text(threshold: float) -> str:
    return (
        f"The operating point is **{threshold:.2f}**: a calibrated probability at or above it is "
        "called *glaucoma*. The probability was calibrated on validation scans by temperature "
        "scaling, which aims for this meaning: of the scans scored 0.7, about 7 in 10 have "
        "glaucoma. Near the operating point the model is not sure; far from it, it is more "
        "confident, but it can still be wrong, and for patients unlike the training data the "
        "calibration may not hold."
    )


def disclaimer(meta: RunMetadata) -> str:
    """One line: research tool, and how the model was trained when the metadata says so."""
    parts = ["Research tool, not for clinical use."]
    device = meta.device.lower()
    synthetic = meta.data_synthetic
    if device == "cpu" and synthetic:
        parts.append("This model was trained on a CPU on synthetic data.")
    elif device == "cpu":
        parts.append("This model was trained on a CPU.")
    elif synthetic:
        parts.append("This model was trained on synthetic data.")
    return " ".join(parts)


def not_assessable_markdown(p: float, assessed: Mapping[str, Any]) -> str:
    """The Case tab's headline for a scan the assessability check refused: the statement, the
    reasons, and the probability struck through as unreliable (never as a confident number)."""
    reasons = "\n".join(f"- {html.escape(r)}" for r in assessed.get("reasons") or [])
    return (
        f"### {icon('refuse')} {NOT_ASSESSABLE_TITLE}\n"
        f"{reasons}\n\n"
        f'<span style="color:#595959">~~Probability (unreliable: not assessable): {p:.0%}~~</span>'
        "\n\n**Do not use this result**: the model's probability and decision mean nothing for a "
        "scan it cannot assess. Use a usable SLO fundus scan, or assess the eye clinically."
    )


def scan_line(name: str | None) -> str:
    """The line naming the scan a result belongs to, its file name escaped (an upload's name is
    the user's text: it brings no markdown or HTML of its own)."""
    if not name:
        return "**Scan:** none"
    # every ASCII punctuation character can be backslash-escaped in markdown
    return "**Scan:** " + re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", name)
