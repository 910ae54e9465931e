"""The assessability check's verdict on one scan, and the same shape for a model without one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Assessment", "unchecked"]


@dataclass(frozen=True)
class Assessment:
    """The verdict on one scan. ``reasons`` are sentences for the clinician, in check order."""

    assessable: bool
    reasons: tuple[str, ...]
    failed_checks: tuple[str, ...]  # names from fairmoe.ood.reasons.CHECKS
    novelty: float  # combined novelty score; flagged above ``threshold``
    threshold: float
    layer_scores: dict[str, float]  # standardised distance per layer
    statistics: dict[str, float]  # input statistics (fairmoe.ood.quality.STATISTICS)

    @property
    def summary(self) -> str:
        if self.assessable:
            return "Assessable: the scan passed the input checks and is like the training scans."
        return "Not assessable by this model: " + " ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "assessable": self.assessable,
            "checked": True,  # a fitted detector gave this verdict (see fairmoe.inference)
            "summary": self.summary,
            "reasons": list(self.reasons),
            "failed_checks": list(self.failed_checks),
            "novelty": self.novelty,
            "threshold": self.threshold,
            "layer_scores": dict(self.layer_scores),
            "statistics": dict(self.statistics),
        }


def unchecked() -> dict[str, Any]:
    """``Assessment.to_dict()``'s shape for a model without a fitted detector: not checked."""
    return {
        "assessable": True,
        "checked": False,
        "summary": "Not checked: no assessability reference was fitted for this model "
        "(python -m fairmoe.ood).",
        "reasons": [],
        "failed_checks": [],
        "novelty": None,
        "threshold": None,
        "layer_scores": {},
        "statistics": {},
    }
