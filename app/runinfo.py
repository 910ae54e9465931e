"""One shipped run as the app shows it: its names in the menus and its loaded test scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fairmoe.methods import method_label, uses_attribute
from fairmoe.scores import ScoreSet

__all__ = ["TAG_LABELS", "RunInfo"]

# How runs.json's tags read in the model menus. A fair-test scenario's runs carry the scenario's
# name in their tag ("stamp", "stamp-nofol"): RunInfo.tag_label drops it, then looks up the rest.
TAG_LABELS = {
    "nocap": "no capacity dropping",
    "nobal": "load balance off",
    "shortcut": "shortcut-only data",
    "acquisition": "acquisition-only data",
    "nofol": "without FOL",
    "notes": "group batches read the notes",
    "inbatch": "in-batch groups",
    "control-stamp": "stamped data",
    "control-stamp-free": "stamp-free twin",
    "free": "twin without the cause (oracle)",
}


@dataclass(frozen=True)
class RunInfo:
    """One entry of runs.json, with its scores loaded."""

    name: str
    method: str
    attribute: str
    seed: int | None
    fairness_scale: float
    config: str
    device: str
    scores: ScoreSet = field(compare=False, repr=False)
    test: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    tag: str = ""  # an ablation ("nocap", "nobal") or a data variant ("shortcut", ...)
    data: str = "main"  # which data set's test split the scores are on (compared within one)
    # the fair-test scenario (runs.json "scenarios") whose test draw the scores are on; None for
    # the main data and the older variants
    scenario: str | None = None

    @property
    def method_label(self) -> str:
        return method_label(self.method)

    @property
    def uses_attribute(self) -> bool:
        """Whether training read the attribute (CLIP's runs for any attribute are one model)."""
        return uses_attribute(self.method)

    @property
    def tag_label(self) -> str:
        """The tag in words, less the scenario's name that every run of a scenario carries; a
        learning rate the positive control tried ("control-stamp-lr0.0004") is said after it."""
        tag, lr = self.tag, ""
        if self.scenario and (tag == self.scenario or tag.startswith(f"{self.scenario}-")):
            tag = tag.removeprefix(self.scenario).removeprefix("-")
        base, sep, rate = tag.rpartition("-lr")
        if sep and base and rate.replace(".", "", 1).replace("e-", "", 1).isdigit():
            tag, lr = base, f", lr {rate}"
        return TAG_LABELS.get(tag, tag) + lr

    @property
    def label(self) -> str:
        """Dropdown label: method, attribute it was trained for, config, FOL weight, seed."""
        parts = [self.method_label]
        if self.uses_attribute:
            parts.append(self.attribute)
        if self.config:
            parts.append(self.config)
        if self.fairness_scale != 1:
            parts.append(f"fairness x{self.fairness_scale:g}")
        if self.tag_label:
            parts.append(self.tag_label)
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        return " · ".join(parts)

    @property
    def series(self) -> str:
        """Method, trained attribute and model config: what a fairness-weight sweep varies."""
        base = self.method_label
        if self.uses_attribute:
            base += f" ({self.attribute})"
        return f"{base} [{self.config}]" if self.config else base

    @property
    def family(self) -> str:
        """Runs that differ only in seed share a family (mean +- std in the comparison)."""
        scale = f" x{self.fairness_scale:g}" if self.fairness_scale != 1 else ""
        tag = f", {self.tag_label}" if self.tag_label else ""
        return self.series + scale + tag
