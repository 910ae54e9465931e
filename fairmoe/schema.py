"""Harvard-FairVLMed schema: attributes, groups, integer codes and CSV spellings.

The single source of truth for every other module: the reader, the synthetic writer, the metrics, the
model (number of feature-MoE experts) and the app all take group names and codes from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_CHOICES",
    "ATTRIBUTE_NAMES",
    "CROSS",
    "LABEL",
    "LABEL_CSV",
    "MARITAL_STATUS",
    "OPERATING_POINT",
    "PROMPTS",
    "SPLITS",
    "SUMMARY_COLUMNS",
    "UNKNOWN",
    "Attribute",
    "attribute",
    "attribute_codes",
    "code_from_csv",
    "parts",
]

UNKNOWN = -1  # npz code of an unknown attribute value; the CSV spells it "unknown"


@dataclass(frozen=True)
class Attribute:
    """A protected attribute: its groups (index = integer code) and how the files spell it."""

    name: str
    groups: tuple[str, ...]  # display names, index = npz integer code
    csv_values: tuple[str, ...]  # data_summary.csv spellings, same order
    npz_keys: tuple[str, ...]  # accepted npz keys, preferred first (some releases differ)
    has_unknown: bool  # whether -1 / "unknown" occurs in the real data

    @property
    def n_groups(self) -> int:
        return len(self.groups)


ATTRIBUTES: dict[str, Attribute] = {
    a.name: a
    for a in (
        Attribute(
            "race", ("Asian", "Black", "White"), ("asian", "black", "white"), ("race",), False
        ),
        Attribute("gender", ("Female", "Male"), ("female", "male"), ("gender", "male"), False),
        Attribute(
            "ethnicity",
            ("Non-Hispanic", "Hispanic"),
            ("non-hispanic", "hispanic"),
            ("ethnicity", "hispanic"),
            True,
        ),
        Attribute(
            "language",
            ("English", "Spanish", "Other"),
            ("english", "spanish", "other"),
            ("language",),
            True,
        ),
    )
}
# fixed order: race, gender, ethnicity, language
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(ATTRIBUTES)

# Intersectional groups: "race*gender" crosses two attributes into cells named "Black & Female".
CROSS = "*"
ATTRIBUTE_CHOICES: tuple[str, ...] = ATTRIBUTE_NAMES + tuple(
    f"{a}{CROSS}{b}" for i, a in enumerate(ATTRIBUTE_NAMES) for b in ATTRIBUTE_NAMES[i + 1 :]
)

LABEL = "glaucoma"
LABEL_CSV = {"no": 0, "yes": 1}

# maritalstatus codes; not a protected attribute here, carried through for completeness.
MARITAL_STATUS = (
    "married or partnered",
    "single",
    "divorced",
    "widowed",
    "legally separated",
)

# split name in data_summary.csv "use" column -> accepted folder names (first is canonical)
SPLITS: dict[str, tuple[str, ...]] = {
    "training": ("Training",),
    "validation": ("Validation",),
    "test": ("Test", "Testing"),
}

# data_summary.csv columns, in the real file's order
SUMMARY_COLUMNS: tuple[str, ...] = (
    "filename",
    "age",
    "gender",
    "race",
    "ethnicity",
    "language",
    "maritalstatus",
    "note",
    "gpt4_summary",
    "glaucoma",
    "use",
)

# Zero-shot prompts of FairCLIP / Fair-MoE: index 1 is the glaucoma class.
PROMPTS: tuple[str, str] = ("A photo of non-glaucoma", "A photo of glaucoma")

# Decision threshold on the glaucoma probability: FairCLIP's `preds >= 0.5`. Temperature
# calibration keeps this boundary (it rescales cos_glaucoma - cos_non around 0).
OPERATING_POINT = 0.5


def parts(name: str) -> tuple[str, ...]:
    """The base attributes of a name: ("race",) or, crossed, ("race", "gender")."""
    return tuple(name.split(CROSS))


def _crossed(a: Attribute, b: Attribute) -> Attribute:
    """Cells of two attributes; code = code_a * len(b.groups) + code_b (see attribute_codes)."""
    return Attribute(
        f"{a.name}{CROSS}{b.name}",
        tuple(f"{ga} & {gb}" for ga in a.groups for gb in b.groups),
        tuple(f"{ca}&{cb}" for ca in a.csv_values for cb in b.csv_values),
        (),  # never stored: computed from its two attributes
        a.has_unknown or b.has_unknown,
    )


_CROSSED = {
    c: _crossed(ATTRIBUTES[c.split(CROSS)[0]], ATTRIBUTES[c.split(CROSS)[1]])
    for c in ATTRIBUTE_CHOICES
    if CROSS in c
}


def attribute(name: str) -> Attribute:
    """Look up an attribute, or two crossed ("race*gender", either order), with an error that
    lists the valid names."""
    hit = ATTRIBUTES.get(name) or _CROSSED.get(name)
    if hit is None and CROSS in name:
        a, _, b = name.partition(CROSS)
        hit = _CROSSED.get(f"{b}{CROSS}{a}")
    if hit is None:
        raise ValueError(
            f"unknown attribute {name!r}; expected one of {', '.join(ATTRIBUTE_CHOICES)}"
        )
    return hit


def attribute_codes(codes: Mapping[str, Any], name: str) -> np.ndarray:
    """(n,) group codes of ``name`` from the base attributes' codes; a cell is unknown (-1)
    when either of its attributes is."""
    a = attribute(name)
    if CROSS not in a.name:
        return np.asarray(codes[a.name], dtype=np.int64)
    first, second = (np.asarray(codes[p], dtype=np.int64) for p in parts(a.name))
    width = ATTRIBUTES[parts(a.name)[1]].n_groups
    return np.where((first >= 0) & (second >= 0), first * width + second, UNKNOWN)


def code_from_csv(attr: Attribute, value: str) -> int:
    """Integer code of a data_summary.csv spelling ("unknown" -> -1)."""
    v = str(value).strip().lower()
    if v in ("unknown", "", "nan"):
        return UNKNOWN
    try:
        return attr.csv_values.index(v)
    except ValueError:
        raise ValueError(
            f"{attr.name}: unexpected value {value!r}; expected one of {attr.csv_values} or 'unknown'"
        ) from None
