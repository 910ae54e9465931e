"""Your own scores: a CSV of any model's scores (id, label, score, attributes) as a ScoreSet.

The project's scores files (``fairmoe.scores``) carry attribute codes; a CSV from another model
may spell groups as names ("Black", "hispanic") instead, leave attributes out, or hold mistakes.
Every problem is an :class:`AuditError` naming the row and the column, never a traceback.
Rows whose ``assessable`` column says "no" (the model's assessability check refused the scan,
as in the app's cohort CSV and ``python -m fairmoe.score``) are left out unless asked for: their
scores are unreliable.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES, LABEL_CSV, UNKNOWN, Attribute
from fairmoe.scores import ScoreSet
from fairmoe.wording import refused_cell

__all__ = ["MAX_ROWS", "AuditError", "UserScores", "load_user_scores", "read_user_scores"]

MAX_ROWS = 1_000_000  # a scores file is one row per case; more is not a cohort we can audit
_LABELS = LABEL_CSV | {"0": 0, "1": 1, "false": 0, "true": 1, "glaucoma": 1, "no glaucoma": 0}
_UNKNOWN = ("", "unknown", "nan", "-1", "na", "n/a")


class AuditError(ValueError):
    """The audit cannot be written from what it was given; the message says what to fix."""


def _group_code(attr: Attribute, value: str, where: str) -> int:
    v = value.strip().lower()
    if v in _UNKNOWN:
        return UNKNOWN
    if v.lstrip("-").isdigit() or v.replace(".", "", 1).isdigit():
        code = int(float(v))
        if 0 <= code < attr.n_groups:
            return code
    names = [g.lower() for g in attr.groups]
    for spellings in (names, list(attr.csv_values)):
        if v in spellings:
            return spellings.index(v)
    raise AuditError(
        f"{where}: {attr.name} {value!r} is not a group; use one of "
        f"{', '.join(attr.groups)} (or codes 0-{attr.n_groups - 1}, or 'unknown')"
    )


def _label(value: str, where: str) -> int:
    v = value.strip().lower()
    if v.endswith(".0"):
        v = v[:-2]
    if v not in _LABELS:
        raise AuditError(f"{where}: label {value!r} must be 0 or 1 (or yes/no)")
    return _LABELS[v]


def _score(value: str, where: str) -> float:
    try:
        s = float(value)
    except ValueError:
        raise AuditError(f"{where}: score {value!r} is not a number") from None
    if not (math.isfinite(s) and 0.0 <= s <= 1.0):
        raise AuditError(f"{where}: score {value!r} must be a probability between 0 and 1")
    return s


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise AuditError(f"{path.name}: file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = [c.strip().lower() for c in reader.fieldnames or []]
            rows = []
            for i, r in enumerate(reader):
                if i >= MAX_ROWS:
                    raise AuditError(f"{path.name}: more than {MAX_ROWS:,} rows")
                rows.append({k.strip().lower(): (v or "") for k, v in r.items() if k})
    except (UnicodeDecodeError, csv.Error) as e:
        raise AuditError(f"{path.name}: not a readable UTF-8 CSV ({e})") from None
    return cols, rows


@dataclass(frozen=True)
class UserScores:
    """A user's scores CSV as read: the scores, and the rows marked not assessable."""

    scores: ScoreSet
    n_not_assessable: int  # rows whose ``assessable`` column says "no"
    include_not_assessable: bool  # whether those rows are in ``scores``

    @property
    def message(self) -> str | None:
        """What a reader must be told about the rows marked not assessable (None: there are
        none)."""
        n = self.n_not_assessable
        if not n:
            return None
        rows = f"{n} row{'s' if n != 1 else ''} marked not assessable (column assessable = no)"
        if self.include_not_assessable:
            return f"{rows} included: their scores are unreliable, and so are these metrics."
        return f"{rows} left out: their scores are unreliable."


def read_user_scores(
    path: str | Path, name: str | None = None, *, include_not_assessable: bool = False
) -> ScoreSet:
    """Read and check a scores CSV: columns ``label``, ``score`` and at least one of race,
    gender, ethnicity, language (names, CSV spellings or codes; a missing column is unknown);
    ``id`` optional. Rows without a score (a cohort's failed cases) are skipped, and so are rows
    marked not assessable unless ``include_not_assessable`` (a UserWarning says how many):
    :func:`load_user_scores` returns that count instead."""
    loaded = load_user_scores(path, name, include_not_assessable=include_not_assessable)
    if loaded.message:
        warnings.warn(f"{Path(path).name}: {loaded.message}", UserWarning, stacklevel=2)
    return loaded.scores


def load_user_scores(
    path: str | Path, name: str | None = None, *, include_not_assessable: bool = False
) -> UserScores:
    """:func:`read_user_scores` with the count of rows marked not assessable, and no warning."""
    path = Path(path)
    cols, rows = _rows(path)
    missing = [c for c in ("label", "score") if c not in cols]
    if missing:
        raise AuditError(
            f"{path.name}: missing column(s) {', '.join(missing)}; expected "
            "id, label, score, race, gender, ethnicity, language"
        )
    present = [a for a in ATTRIBUTE_NAMES if a in cols]
    if not present:
        raise AuditError(f"{path.name}: no attribute column ({', '.join(ATTRIBUTE_NAMES)})")
    rows = [r for r in rows if r.get("score", "").strip()]
    if not rows:
        raise AuditError(f"{path.name}: no rows with a score")
    n_refused = sum(refused_cell(r.get("assessable")) for r in rows)
    if not include_not_assessable:
        rows = [r for r in rows if not refused_cell(r.get("assessable"))]
        if not rows:
            raise AuditError(
                f"{path.name}: every row with a score is marked not assessable (column "
                "assessable = no); their scores are unreliable, so there is nothing to audit"
            )
    y, s, ids = [], [], []
    attrs = {a: [] for a in ATTRIBUTE_NAMES}
    for i, r in enumerate(rows, start=2):  # row 1 is the header
        where = f"{path.name} row {i}"
        y.append(_label(r.get("label", ""), where))
        s.append(_score(r["score"], where))
        ids.append(r.get("id") or str(i - 1))
        for a in ATTRIBUTE_NAMES:
            attrs[a].append(_group_code(ATTRIBUTES[a], r.get(a, ""), where))
    try:
        ss = ScoreSet(
            name or path.name.removesuffix(".csv").removesuffix(".scores"),
            ids,
            np.array(y),
            np.array(s, dtype=np.float64),
            {a: np.array(v) for a, v in attrs.items()},
        )
    except ValueError as e:  # fairmoe.metrics input checks
        raise AuditError(f"{path.name}: {e}") from None
    return UserScores(ss, n_refused, include_not_assessable)
