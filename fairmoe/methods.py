"""What each method is: one registry read by the model factory, the trainer, the app and the report.

Adding a method is one entry here (and, if it brings a new loss term, that term in
``fairmoe.losses``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["METHODS", "Method", "MethodSpec", "method_label", "method_spec", "uses_attribute"]

Method = Literal["clip", "fairclip", "fairmoe"]


@dataclass(frozen=True)
class MethodSpec:
    """One training method: which layers it adds to CLIP and which loss terms it trains with."""

    name: str
    label: str  # display name
    token_moe: bool  # FO-MoE token MoE in one block of each encoder (moe.image_block; text: last)
    feature_moe: bool  # FO-MoE feature MoE on both projected embeddings
    distance: bool  # FairCLIP's Sinkhorn distance term
    gate_variance: bool  # FOL's dispersion terms over the MoE gates
    summary: str  # one sentence for the model card

    @property
    def uses_attribute(self) -> bool:
        """Whether training reads the protected attribute (only the fairness terms do)."""
        return self.distance or self.gate_variance

    @property
    def has_moe(self) -> bool:
        return self.token_moe or self.feature_moe


METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in (
        MethodSpec(
            "clip",
            "CLIP",
            token_moe=False,
            feature_moe=False,
            distance=False,
            gate_variance=False,
            summary="CLIP fine-tuned with the contrastive loss only.",
        ),
        MethodSpec(
            "fairclip",
            "FairCLIP",
            token_moe=False,
            feature_moe=False,
            distance=True,
            gate_variance=False,
            summary="CLIP plus FairCLIP's Sinkhorn distance between the batch's and each group's "
            "image-text similarity distribution.",
        ),
        MethodSpec(
            "fairmoe",
            "Fair-MoE",
            token_moe=True,
            feature_moe=True,
            distance=True,
            gate_variance=True,
            summary="CLIP with FO-MoE (token MoE with capacity filtering, feature MoE) trained "
            "with the Fairness-Oriented Loss (gate dispersion terms plus the Sinkhorn distance).",
        ),
    )
}


def method_spec(name: str) -> MethodSpec:
    """A method by name, with an error that lists the valid names."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}") from None


def method_label(name: str) -> str:
    """Display name of a method; an unknown name (a user's own scores) is shown as it is."""
    return METHODS[name].label if name in METHODS else name


def uses_attribute(name: str) -> bool:
    """Whether a method's training reads the attribute; unknown methods are assumed to."""
    return name not in METHODS or METHODS[name].uses_attribute
