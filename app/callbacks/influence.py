"""The image experts' influence on one explained scan, in words and on the maps' colour scale."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from app.theme import icon

__all__ = [
    "MINOR_INFLUENCE",
    "NO_PATCH_INFLUENCE",
    "colour_scale",
    "influence",
    "influence_health_md",
    "influence_text",
    "tile_label",
]

# Below this share of a scan's calibrated log-odds the experts' maps are routing, not a finding.
MINOR_INFLUENCE = 0.05
NO_PATCH_INFLUENCE = (
    "In this model the patch experts cannot change the prediction (CLS pooling after the last "
    "block); their maps show routing, not influence."
)


# The goals for a model whose experts matter (fairmoe.influence figures, test split).
GOAL_DELTA_LOGIT, GOAL_DELTA_AUC = 0.5, 0.05


def influence_health_md(report: Mapping[str, Any] | None) -> str:
    """The loaded model's image experts' influence on its test split (RunMetadata.influence)."""
    if not report:
        return (
            "**Experts' influence: unknown.** This checkpoint's metadata has no influence "
            "figures (it was trained before they were recorded)."
        )
    s, r = report["silenced"], report["routing"]
    delta_auc = s.get("delta_auc")
    figures = (
        f"silencing every image expert moves the calibrated log-odds by {s['mean_abs_delta_logit']:.3f} "
        f"on average (of {s['mean_abs_logit']:.2f})"
        + (f" and the AUC by {-delta_auc:+.3f}" if delta_auc is not None else "")
        + f"; median {r['median_over_capacity_share']:.0%} of routing requests over capacity; "
        f"mean gate of a kept expert {r['mean_kept_gate']:.2f}; over {s['n']:,} test scans."
    )
    if s["mean_abs_delta_logit"] >= GOAL_DELTA_LOGIT or (delta_auc or 0.0) >= GOAL_DELTA_AUC:
        return icon("ok") + "**The experts carry the decision:** " + figures
    return (
        icon("warn")
        + "**The experts carry little of the decision:** "
        + figures
        + " Read the per-expert maps as routing, not as what decided a result."
    )


def _without_experts(without: float, with_: float) -> str:
    """The probability with all experts silent, in as many decimals as tell the two apart."""
    for digits in (0, 1, 2):
        a, b = f"{without:.{digits}%}", f"{with_:.{digits}%}"
        if a != b:
            return f"with all of them silent the probability would be {a} instead of {b}"
    return f"with all of them silent the probability would stay at {with_:.0%}"


def influence(att: Mapping[str, Any]) -> tuple[float, float]:
    """(change of the calibrated log-odds the image experts make, its share of the log-odds):
    ``fairmoe.influence.scan_influence`` as the explanation carries it."""
    return float(att["influence"]["delta_logit"]), float(att["influence"]["share"])


def influence_text(att: Mapping[str, Any], probability: float) -> str:
    """The experts' influence on this scan as a figure, with a warning where it is minor."""
    delta, share = influence(att)
    text = (
        f"**Influence:** the image experts move this scan's calibrated log-odds by "
        f"{delta:+.3f} (of {float(att['logit']):+.2f}: {share:.1%}); "
        + _without_experts(att["probability_without_experts"], probability)
        + "."
    )
    if share < MINOR_INFLUENCE:
        text = (
            f"{icon('info')}**The experts carry under {MINOR_INFLUENCE:.0%} of this scan's "
            f"log-odds ({share:.1%}):** their maps show where patches were routed, not what "
            "decided the result.\n\n" + text
        )
    if att.get("patch_experts_reach_output") is False:
        text = f"{icon('info')}{NO_PATCH_INFLUENCE}\n\n" + text
    return text


def tile_label(name: str, grid: Sequence[Sequence[float]], logit: float) -> str:
    """A map's title with its patches' share of the scan's log-odds, so that a faint map is
    read as faint whatever its colours."""
    share = float(np.sum(grid)) / max(abs(logit), 1e-6)
    return f"{name} ({share:+.1%} of log-odds)"


def colour_scale(att: Mapping[str, Any]) -> float:
    """Full colour of the expert maps: their largest patch, but never less than a patch's even
    share of ``MINOR_INFLUENCE`` of the scan's log-odds, so that a map carrying a 1e-4 of the
    decision never looks like a finding."""
    logit = abs(float(att.get("logit", 0.0)))
    n_patches = max(1, int(np.asarray(att["total"]).size))
    return max(float(att["scale"]), MINOR_INFLUENCE * logit / n_patches)
