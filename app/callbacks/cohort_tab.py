"""Handlers of the Cohort tab: /cohort (score a zipped cohort, write its CSV) and its panel.

Scans the assessability check refuses are listed (``n_not_assessable``, ``not_assessable_rows``)
and left out of the metrics; ``include_not_assessable`` brings them back, with a warning.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import views
from app.callbacks.common import user_error
from app.callbacks.panel import panel_view
from app.callbacks.serving import serving
from app.callbacks.source import resolve_source
from app.runtime import Runtime
from app.theme import icon
from fairmoe.cohort import COHORT_BATCH, CohortError, CohortResult, score_cohort
from fairmoe.schema import ATTRIBUTE_CHOICES, ATTRIBUTE_NAMES, ATTRIBUTES
from fairmoe.scores import ScoreSet, write_scores

__all__ = [
    "assessability_note",
    "bad_rows_table",
    "cohort",
    "cohort_including",
    "cohort_scored",
    "cohort_panel",
    "cohort_view",
]

NOT_SCORED = "Score a cohort first."
INCLUDE_LABEL = "Include scans that are not assessable"


def _readable_groups(path: Path) -> None:
    """Group names ("Black", "unknown") instead of integer codes in the attribute columns."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    cols = {a: head.index(a) for a in ATTRIBUTE_NAMES if a in head}
    for row in rows[1:]:
        for a, j in cols.items():
            if row[j].lstrip("-").isdigit():
                code = int(row[j])
                groups = ATTRIBUTES[a].groups
                row[j] = groups[code] if 0 <= code < len(groups) else "unknown"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def _write_cohort_csv(rt: Runtime, result: CohortResult) -> str:
    """The scores CSV of every scored row (assessable or not), plus row, file, decision
    ("not assessable" for a refused scan), assessable ("yes", "no", "not checked"), warnings
    and every bad row with its reason in ``error``."""
    path = rt.new_output_path("cohort-scores", ".csv")
    keys = ("row", "file", "decision", "assessable", "warnings")
    extra = {k: [r[k] for r in result.rows] for k in keys}
    extra["error"] = [""] * len(result.rows)
    failed = [
        {"id": b["file"], "row": b["row"], "file": b["file"], "error": b["reason"]}
        for b in result.bad
    ]
    write_scores(path, result.all_scores, extra=extra, failed=failed)
    _readable_groups(path)
    return str(path)


def _assessability_warnings(result: CohortResult) -> list[str]:
    n = len(result.not_assessable)
    if not n:
        return []
    scans = f"{n} scan{'s' if n != 1 else ''} that {'are' if n != 1 else 'is'} not assessable"
    if result.include_not_assessable:
        return [
            f"{scans} by this model {'are' if n != 1 else 'is'} included in these metrics: "
            "their probabilities are unreliable, so the AUC and fairness gaps are not the "
            "model's on scans it can read."
        ]
    return [
        f"{scans} by this model {'are' if n != 1 else 'is'} left out of the metrics (listed "
        f"in not_assessable_rows and in the CSV's assessable column); include them with "
        f"'{INCLUDE_LABEL}'."
    ]


def _summary(rt: Runtime, result: CohortResult) -> dict[str, Any]:
    """The /cohort JSON: counts, bad rows, refused scans and the headline metrics per
    attribute (over ``result.scores``: null when no scan is left for them)."""
    ss, t = result.scores, rt.predictor.threshold
    counts = {
        "model": rt.model_name,
        "layout": result.layout,
        "n_scored": len(result.rows),  # every scan with a probability, assessable or not
        "n_bad": len(result.bad),
        "bad_rows": result.bad,
        "n_not_assessable": len(result.not_assessable),
        "not_assessable_rows": [
            {"row": r["row"], "file": r["file"], "reasons": r["reasons"]}
            for r in result.not_assessable
        ],
        "include_not_assessable": result.include_not_assessable,
        "n_in_metrics": ss.n if ss is not None else 0,
        "warnings": _assessability_warnings(result),
        "threshold": t,
    }
    if ss is None:
        return counts | {"auc": None, "accuracy": None, "attributes": {}}
    per = {a: ss.fairness(a, t, ci="none") for a in ATTRIBUTE_CHOICES}  # crossed pairs too
    return counts | {
        "auc": per["race"].auc,
        "accuracy": per["race"].accuracy,  # everyone, at the single threshold
        "attributes": {
            a: {"es_auc": r.es_auc, "dpd": r.dpd, "deodds": r.deodds, "n_unknown": r.n_unknown}
            | {
                "groups": [
                    {"name": g.name, "n": g.n, "auc": g.auc, "tpr": g.tpr, "fpr": g.fpr}
                    for g in r.groups
                ]
            }
            for a, r in per.items()
        },
    }


def cohort(
    rt: Runtime,
    upload: Any,
    progress: Callable[[float, str], Any] | None = None,
    *,
    include_not_assessable: bool = False,
) -> tuple[dict[str, Any], str, ScoreSet | None]:
    """Score a zipped cohort; returns (JSON summary, scores CSV path, ScoreSet for the views).

    The ScoreSet and the summary's metrics leave out scans that are not assessable unless
    ``include_not_assessable``; the CSV lists every row."""
    return cohort_scored(rt, upload, progress, include_not_assessable=include_not_assessable)[:3]


def cohort_scored(
    rt: Runtime,
    upload: Any,
    progress: Callable[[float, str], Any] | None = None,
    *,
    include_not_assessable: bool = False,
) -> tuple[dict[str, Any], str, ScoreSet | None, CohortResult]:
    """:func:`cohort` plus the CohortResult, which :func:`cohort_including` re-filters."""
    if isinstance(upload, dict):
        upload = upload.get("path")
    if not upload:
        raise user_error(
            "Upload a .zip of the cohort (FairVLMed layout, or a CSV with its images)."
        )
    try:
        predictor = serving(rt).predictor
        result = score_cohort(
            predictor,
            Path(upload),
            progress=progress,
            batch_size=COHORT_BATCH,
            include_not_assessable=bool(include_not_assessable),
        )
    except CohortError as e:
        raise user_error(str(e)) from None
    if not result.rows:
        reasons = "; ".join(f"row {b['row']} ({b['file']}): {b['reason']}" for b in result.bad[:5])
        raise user_error(f"No row of the cohort could be scored. First problems: {reasons}")
    return _summary(rt, result), _write_cohort_csv(rt, result), result.scores, result


def cohort_including(
    rt: Runtime, result: CohortResult, include_not_assessable: bool
) -> tuple[dict[str, Any], ScoreSet | None, CohortResult]:
    """The scored cohort with the refused scans in or out of the metrics, without scoring it
    again: (JSON summary, ScoreSet for the views, the CohortResult)."""
    result = result.including(bool(include_not_assessable))
    return _summary(rt, result), result.scores, result


def assessability_note(summary: dict[str, Any] | None) -> str:
    """The Cohort tab's line on the scans that are not assessable (empty when there are none)."""
    warns = (summary or {}).get("warnings") or []
    return "\n".join(f"{icon('warn')}{w}" for w in warns)


def cohort_view(
    ss: ScoreSet | None, attr: str, threshold: float, *, compute_ci: bool = False
) -> tuple:
    """The panel (with the expert load) of the user's scored cohort at one threshold."""
    t = threshold if ss is None else float(threshold)
    return panel_view(ss, attr, t, compute_ci=compute_ci, load=True, empty=NOT_SCORED)


def bad_rows_table(summary: dict[str, Any] | None) -> list[list[Any]]:
    """The rows that could not be scored, as (row, file, reason) table rows."""
    return [[b["row"], b["file"], b["reason"]] for b in (summary or {}).get("bad_rows", [])]


def cohort_panel(
    rt: Runtime,
    model: str,
    cohort_ss: ScoreSet | None,
    attr: str,
    mode: str,
    single: float,
    *groups: float,
    compute_ci: bool = False,
) -> tuple:
    """The panel of the chosen scores (the scored cohort, None until scored, or a run's) at the
    single or per-group thresholds."""
    src = resolve_source(rt, model, cohort_ss, "cohort")
    t = views.resolve_thresholds(attr, mode, single, groups)  # type: ignore[arg-type]
    return panel_view(
        src and src.scores, attr, t, compute_ci=compute_ci, load=True, empty=NOT_SCORED
    )
