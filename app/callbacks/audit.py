"""The audit report from the app: the Fairness and Cohort tabs' download buttons and /audit.

The HTML is written by :mod:`fairmoe.audit` (the same file ``python -m fairmoe.audit`` writes)
into the runtime's output folder, which Gradio serves as a download.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from app.callbacks.common import upload_path, user_error
from app.runtime import Runtime
from fairmoe.audit import AuditError, read_user_scores, write_audit
from fairmoe.checkpoint import CheckpointError, RunMetadata, read_metadata
from fairmoe.schema import ATTRIBUTES
from fairmoe.scores import ScoreSet

__all__ = [
    "OWN_SCORES",
    "audit",
    "audit_file",
    "fairness_audit",
    "own_scores",
    "panel_audit",
    "run_metadata",
    "strategy_of",
]

OWN_SCORES = "__own_scores__"  # the model menu's entry for a scores CSV the user uploaded


def run_metadata(rt: Runtime, name: str) -> RunMetadata | None:
    """The metadata of a run: the loaded model's, else NAME.json beside the shipped model."""
    if name == rt.default_run:
        return rt.meta
    path = rt.assets / "model" / f"{name}.json"
    try:
        return read_metadata(path) if path.is_file() else None
    except CheckpointError:
        return None


def own_scores(upload: Any) -> ScoreSet:
    """A user's scores CSV (any model) read and checked by fairmoe.audit.read_user_scores."""
    path = upload_path(upload)
    if not path:
        raise user_error(
            "Upload a CSV of scores: columns id, label, score, race, gender, ethnicity, language."
        )
    try:
        return read_user_scores(path)
    except AuditError as e:
        raise user_error(f"Cannot read these scores: {e}") from None


def audit_file(
    rt: Runtime,
    ss: ScoreSet,
    attr: str,
    threshold: float | Sequence[float] | None,
    *,
    strategy: str | None = None,
    cost_ratio: float = 4.0,
    meta: RunMetadata | None = None,
    source: str = "",
) -> str:
    """Write the audit of ``ss`` at ``threshold`` and return the HTML file's path."""
    path = rt.new_output_path("fairness-audit", ".html")
    try:
        write_audit(
            path,
            ss,
            attr=attr,
            threshold=threshold,
            strategy=strategy or None,
            cost_ratio=cost_ratio,
            meta=meta,
            source=source or ss.name,
        )
    except AuditError as e:
        path.unlink(missing_ok=True)
        raise user_error(str(e)) from None
    return str(path)


def strategy_of(state: Mapping[str, Any] | None, thresholds: Sequence[float]) -> str | None:
    """The strategy that set ``thresholds`` (the last one applied, if the sliders still show
    what it chose), else None: the thresholds were set by hand."""
    if not state:
        return None
    chosen = state.get("thresholds") or []
    same = len(chosen) == len(thresholds) and all(
        math.isclose(a, b, abs_tol=5e-4) for a, b in zip(chosen, thresholds, strict=True)
    )
    return state.get("strategy") if same else None


def audit(
    rt: Runtime,
    model: str,
    attribute: str = "race",
    threshold: float = 0.5,
    strategy: str = "",
    cost_ratio: float = 4.0,
    scores: Any = None,
) -> str:
    """/audit: the audit HTML of a run's test scores, or of an uploaded scores CSV (any model).

    With a ``strategy`` the thresholds are the strategy's at ``cost_ratio``; else ``threshold``.
    """
    if upload_path(scores):
        ss, meta, source = own_scores(scores), None, "your scores CSV"
    else:
        try:
            run = rt.run(model)
        except KeyError as e:
            raise user_error(str(e.args[0])) from None
        ss, meta, source = run.scores, run_metadata(rt, run.name), f"test scores of {run.name}"
    try:
        t = float(threshold)
        cost = float(cost_ratio)
    except (TypeError, ValueError):
        raise user_error("threshold and cost_ratio must be numbers") from None
    if not (math.isfinite(t) and 0 <= t <= 1):
        raise user_error(f"threshold must be between 0 and 1, got {threshold!r}")
    return audit_file(
        rt,
        ss,
        attribute,
        None if strategy else t,
        strategy=strategy or None,
        cost_ratio=cost,
        meta=meta,
        source=source,
    )


def panel_audit(
    rt: Runtime,
    ss: ScoreSet,
    attr: str,
    mode: str,
    single: float,
    groups: Sequence[float],
    chosen: Mapping[str, Any] | None,
    *,
    meta: RunMetadata | None,
    source: str,
) -> str:
    """The audit of what a fairness panel shows: its thresholds, and the strategy that set them
    when the sliders still hold its choice."""
    n = ATTRIBUTES[attr].n_groups
    ts = [float(single)] * n if mode == "single" else [float(t) for t in groups[:n]]
    strategy = strategy_of(chosen, ts)
    cost = float((chosen or {}).get("cost") or 4.0)
    thr: float | list[float] = ts[0] if mode == "single" else ts
    return audit_file(
        rt, ss, attr, thr, strategy=strategy, cost_ratio=cost, meta=meta, source=source
    )


def fairness_audit(
    rt: Runtime,
    model: str,
    own: ScoreSet | None,
    attr: str,
    mode: str,
    single: float,
    groups: Sequence[float],
    chosen: Mapping[str, Any] | None = None,
) -> str:
    """The Fairness tab's audit button: the chosen run (or the user's CSV) at the sliders."""
    mine = model == OWN_SCORES
    if mine and own is None:
        raise user_error("Upload your scores CSV first (or choose a model).")
    try:
        ss = own if mine else rt.run(model).scores
    except KeyError as e:
        raise user_error(str(e.args[0])) from None
    meta = None if mine else run_metadata(rt, model)
    source = "your scores CSV" if mine else f"test scores of {model}"
    return panel_audit(rt, ss, attr, mode, single, groups, chosen, meta=meta, source=source)
