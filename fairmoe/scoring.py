"""The parts of large-cohort scoring (:mod:`fairmoe.score`): the cases, a torch Dataset that decodes
them in DataLoader workers, and the append-only partial files that make a run resumable by id.

A case is one scan with its label and attribute codes: from a FairVLMed folder (label and
attributes inside each ``.npz``) or from a CSV manifest (``file,label,race,gender,ethnicity,
language[,note]``, as the app's Cohort tab accepts). A case that cannot be read is not fatal: it
is scored as failed, with the reason, like a cohort's bad rows. A case the model's assessability
check refuses is scored with ``assessable`` "no" and decision "not assessable"
(:func:`fairmoe.wording.decision_of`, the rule of every prediction).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from fairmoe.cohort import cases_from_csv
from fairmoe.data.fairvlmed import DataError, find_split_dir, preprocess_scan, read_npz
from fairmoe.inputs import InputError, load_scan
from fairmoe.ood import AssessabilityDetector, is_colour
from fairmoe.schema import ATTRIBUTE_NAMES, SPLITS, UNKNOWN
from fairmoe.wording import assessable_cell, decision_cell, decision_of, is_refused

__all__ = [
    "TEXT_COLUMNS",
    "ScanDataset",
    "ScoreCase",
    "collate_scans",
    "csv_cases",
    "fairvlmed_cases",
    "partial_header",
    "read_partial",
    "result_rows",
]


@dataclass(frozen=True)
class ScoreCase:
    """One scan to score. ``label``/``attrs`` None: read from the ``.npz`` itself."""

    id: str
    path: Path | None
    split: str = ""  # FairVLMed split ("training", "validation", "test"); "" for a CSV
    label: int | None = None
    attrs: tuple[int, ...] | None = None
    error: str | None = None  # known bad before decoding (a CSV row)


def fairvlmed_cases(root: str | Path, splits: Sequence[str] = tuple(SPLITS)) -> list[ScoreCase]:
    """Every ``data_*.npz`` of the given splits, in split and file order; ids are file stems."""
    cases = []
    for split in splits:
        folder = find_split_dir(root, split)  # type: ignore[arg-type]
        cases += [ScoreCase(p.stem, p, split) for p in sorted(folder.glob("data_*.npz"))]
    if not cases:
        raise DataError(f"{root}: no data_*.npz files in {', '.join(splits)}")
    return cases


def csv_cases(manifest: str | Path) -> list[ScoreCase]:
    """The rows of a CSV manifest, files relative to its folder; ids are the ``file`` cells
    (``file#row`` for a file named twice)."""
    manifest = Path(manifest)
    rows = cases_from_csv(manifest.parent, manifest)
    seen: dict[str, int] = {}
    for c in rows:
        seen[c.file] = seen.get(c.file, 0) + 1
    out = []
    for c in rows:
        cid = c.file if seen[c.file] == 1 and c.file else f"{c.file}#{c.row}"
        attrs = tuple(c.attrs.get(a, UNKNOWN) for a in ATTRIBUTE_NAMES) if c.attrs else None
        out.append(ScoreCase(cid, c.path, "", c.label, attrs, c.error))
    return out


class ScanDataset(Dataset):
    """Decodes cases to the model's uint8 input (S, S), with label and attribute codes.

    Items: ``index``, ``pixels`` (zeros for a failed case), ``label``, ``attrs`` (4,), ``error``
    ("" when fine), ``colour`` (decoded from a colour image) and ``statistics``: the
    ``detector``'s input statistics of the scan as uploaded (None without a detector or for a
    failed case). Runs in DataLoader workers, so decoding and those statistics (which cost more
    than the model) overlap the model; batch with :func:`collate_scans`.
    """

    def __init__(
        self,
        cases: Sequence[ScoreCase],
        image_size: int,
        detector: AssessabilityDetector | None = None,
    ) -> None:
        self.cases = list(cases)
        self.image_size = image_size
        self.detector = detector

    def __len__(self) -> int:
        return len(self.cases)

    def _load(self, case: ScoreCase) -> tuple[np.ndarray, int, tuple[int, ...], bool]:
        if case.error or case.path is None:
            raise DataError(case.error or "no file")
        if case.path.suffix.lower() == ".npz":
            rec = read_npz(case.path)
            label = case.label if case.label is not None else int(rec["label"])
            return rec["image"], label, case.attrs or tuple(rec["attrs"]), False
        if case.label is None or case.attrs is None:
            raise DataError(f"{case.id}: an image needs its label and attributes from a CSV")
        scan = load_scan(case.path)
        return scan.image, case.label, case.attrs, is_colour(scan.warnings)

    def __getitem__(self, index: int) -> dict[str, Any]:
        case = self.cases[index]
        size = self.image_size
        stats = None
        try:
            image, label, attrs, colour = self._load(case)
            pixels, error = preprocess_scan(image, size), ""
            if self.detector is not None:
                stats = self.detector.statistics(image)
        except (DataError, InputError, OSError) as e:
            pixels = torch.zeros(size, size, dtype=torch.uint8)
            label, attrs, error = 0, (UNKNOWN,) * len(ATTRIBUTE_NAMES), str(e) or "unreadable"
            colour = False
        return {
            "index": index,
            "pixels": pixels,
            "label": int(label),
            "attrs": torch.tensor(attrs, dtype=torch.int64),
            "error": error,
            "colour": colour,
            "statistics": stats,
        }


def collate_scans(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A DataLoader batch of :class:`ScanDataset` items: tensors stacked, ``statistics`` kept as
    a list (None for a failed case or without a detector)."""
    batch = default_collate([{k: v for k, v in it.items() if k != "statistics"} for it in items])
    batch["statistics"] = [it["statistics"] for it in items]
    return batch


# Columns of a partial file that are not numbers ("assessable": "yes", "no", "not checked").
TEXT_COLUMNS = ("id", "split", "label", "error", "assessable", "decision")


def partial_header(n_experts: int) -> list[str]:
    """Columns of a partial file (full float precision; the final CSV rounds)."""
    return [
        "id",
        "split",
        "label",
        "score",
        "cos_non_glaucoma",
        "cos_glaucoma",
        *ATTRIBUTE_NAMES,
        *(f"load_e{e}" for e in range(n_experts)),
        *(f"gate_e{e}" for e in range(n_experts)),
        "error",
        "assessable",
        "decision",
    ]


def result_rows(
    cases: Sequence[ScoreCase],
    batch: dict[str, Any],
    res: dict[str, Any],
    n_exp: int,
    threshold: float,
) -> list[list[Any]]:
    """Partial-file rows of one batch; ``res`` covers the batch's cases without an error:
    ``Predictor.score_pixels``' arrays and ``assessable``, ``Predictor.assess_pixels``' list.
    The decision at ``threshold`` is "not assessable" for a refused case."""
    rows, k = [], 0
    for j, index in enumerate(batch["index"].tolist()):
        case, error = cases[index], batch["error"][j]
        attrs = batch["attrs"][j].tolist()
        if error:
            blank = ["", "", "", "", *attrs, *[""] * 2 * n_exp]
            rows.append([case.id, case.split, *blank, error, "", ""])
            continue
        extra = [*res["loads"][k], *res["gate_loads"][k]] if n_exp else []
        cos, p, assessed = res["cosines"][k], float(res["score"][k]), res["assessable"][k]
        decision = decision_of(p, threshold, assessable=not is_refused(assessed))
        rows.append(
            [case.id, case.split, int(batch["label"][j]), repr(p)]
            + [repr(float(cos[0])), repr(float(cos[1])), *attrs]
            + [repr(float(v)) for v in extra]
            + ["", assessable_cell(assessed), decision_cell(decision)]
        )
        k += 1
    return rows


def _valid(row: dict[str, str], header: list[str]) -> bool:
    if None in row or any(row.get(c) is None for c in header) or not row["id"]:
        return False  # a line cut short when the run was killed
    if row["error"]:
        return True
    try:
        return all(math.isfinite(float(row[c])) for c in header if c not in TEXT_COLUMNS)
    except ValueError:
        return False


def read_partial(path: Path, header: list[str], *, repair: bool) -> dict[str, dict[str, str]]:
    """Rows already scored in a partial file, by id. With ``repair`` (the file this process
    appends to) the file is rewritten without a torn last line from a run killed mid-write, so
    that appending to it stays valid; other processes' files are only read."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != header:
            raise ValueError(
                f"{path}: written for another model or version; delete it or pass --restart"
            )
        rows = [r for r in reader if _valid(r, header)]
    if repair:
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=header)
            w.writeheader()
            w.writerows(rows)
        tmp.replace(path)
    return {r["id"]: r for r in rows}
