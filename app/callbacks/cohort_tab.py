"""Handlers of the Cohort tab: /cohort (score a zipped cohort, write its CSV) and its panel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.callbacks.common import user_error
from app.callbacks.panel import panel_view
from app.callbacks.serving import serving
from app.runtime import Runtime
from fairmoe.cohort import COHORT_BATCH, CohortError, CohortResult, score_cohort
from fairmoe.scores import ScoreSet, write_scores

__all__ = ["bad_rows_table", "cohort", "cohort_view"]


def _write_cohort_csv(rt: Runtime, result: CohortResult) -> str:
    """The scores CSV of the scored rows, plus row, file, decision, warnings and every bad row
    with its reason in ``error``."""
    path = rt.new_output_path("cohort-scores", ".csv")
    extra = {k: [r[k] for r in result.rows] for k in ("row", "file", "decision", "warnings")}
    extra["error"] = [""] * len(result.rows)
    failed = [
        {"id": b["file"], "row": b["row"], "file": b["file"], "error": b["reason"]}
        for b in result.bad
    ]
    write_scores(path, result.scores, extra=extra, failed=failed)
    return str(path)


def _summary(rt: Runtime, result: CohortResult) -> dict[str, Any]:
    """The /cohort JSON: counts, bad rows and the report's headline metrics per attribute."""
    rep = result.scores.report(rt.predictor.threshold)
    return {
        "model": rt.model_name,
        "layout": result.layout,
        "n_scored": len(result.rows),
        "n_bad": len(result.bad),
        "bad_rows": result.bad,
        "threshold": rt.predictor.threshold,
        "auc": rep["auc"],
        "accuracy": rep["accuracy"],
        "attributes": {
            a: {k: sec[k] for k in ("es_auc", "dpd", "deodds", "n_unknown")}
            | {
                "groups": [
                    {k: g[k] for k in ("name", "n", "auc", "tpr", "fpr")} for g in sec["groups"]
                ]
            }
            for a, sec in rep["attributes"].items()
        },
    }


def cohort(
    rt: Runtime, upload: Any, progress: Callable[[float, str], Any] | None = None
) -> tuple[dict[str, Any], str, ScoreSet | None]:
    """Score a zipped cohort; returns (JSON summary, scores CSV path, ScoreSet for the views)."""
    if isinstance(upload, dict):
        upload = upload.get("path")
    if not upload:
        raise user_error(
            "Upload a .zip of the cohort (FairVLMed layout, or a CSV with its images)."
        )
    try:
        srv = serving(rt)
        batch = 1 if srv.legacy else COHORT_BATCH  # legacy: one predict() per case, as before
        result = score_cohort(srv.predictor, Path(upload), progress=progress, batch_size=batch)
    except CohortError as e:
        raise user_error(str(e)) from None
    if not result.rows:
        reasons = "; ".join(f"row {b['row']} ({b['file']}): {b['reason']}" for b in result.bad[:5])
        raise user_error(f"No row of the cohort could be scored. First problems: {reasons}")
    return _summary(rt, result), _write_cohort_csv(rt, result), result.scores


def cohort_view(
    ss: ScoreSet | None, attr: str, threshold: float, *, compute_ci: bool = False
) -> tuple:
    """(summary, group table, ROC, confusion, rates, expert load) of the user's scored cohort."""
    t = threshold if ss is None else float(threshold)
    return panel_view(ss, attr, t, compute_ci=compute_ci, load=True, empty="Score a cohort first.")


def bad_rows_table(summary: dict[str, Any] | None) -> list[list[Any]]:
    """The rows that could not be scored, as (row, file, reason) table rows."""
    return [[b["row"], b["file"], b["reason"]] for b in (summary or {}).get("bad_rows", [])]
