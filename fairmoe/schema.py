"""Harvard-FairVLMed schema: attributes, groups, integer codes and CSV spellings.

The single source of truth for every other module: the reader, the synthetic writer, the metrics, the
model (number of feature-MoE experts) and the app all take group names and codes from here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
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
    "code_from_csv",
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


def attribute(name: str) -> Attribute:
    """Look up an attribute by name, with an error that lists the valid names."""
    try:
        return ATTRIBUTES[name]
    except KeyError:
        raise ValueError(
            f"unknown attribute {name!r}; expected one of {', '.join(ATTRIBUTE_NAMES)}"
        ) from None


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
