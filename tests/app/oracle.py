"""Independent readings of the test assets for the app tests: the scores file through the csv
module (not fairmoe.scores), and the message of a raised gr.Error."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from fairmoe.schema import ATTRIBUTE_NAMES

DEFAULT = "fairmoe-race-tiny-s0"  # the run of the checkpoint the test assets serve


def read_scores(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], list[dict]]:
    """(labels, scores, attribute codes, raw rows) of a scores CSV."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    y = np.array([int(r["label"]) for r in rows])
    s = np.array([float(r["score"]) for r in rows])
    attrs = {a: np.array([int(r[a]) for r in rows]) for a in ATTRIBUTE_NAMES}
    return y, s, attrs, rows


def default_scores(assets_dir: Path) -> tuple:
    """:func:`read_scores` of the default run."""
    return read_scores(assets_dir / "scores" / f"{DEFAULT}.scores.csv")


def message(excinfo: pytest.ExceptionInfo) -> str:
    """The user-facing message of a raised gr.Error."""
    return str(excinfo.value.message if hasattr(excinfo.value, "message") else excinfo.value)
