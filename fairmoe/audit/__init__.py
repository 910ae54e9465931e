"""Audit report: a scores CSV (any model's) -> one self-contained, offline HTML file.

Model card (when a checkpoint's metadata is given), the thresholds and the strategy that chose
them, per-group tables with bootstrap intervals (discrimination, error rates, calibration), the
guardrail warnings, a reliability diagram per group, ROC curves per group and the routing health
of the run. The attribute may be two crossed ("race*gender": cells such as "Black & Female").
plotly.js is embedded from the installed plotly package (read as a file: fairmoe never imports
plotly), so the file opens without a network.

``python -m fairmoe.audit --scores SCORES.csv [--checkpoint RUN.json] [--attribute race*gender]
[--threshold 0.5 | --strategy NAME --cost-ratio R] --out audit.html``
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fairmoe.audit.content import AuditData, audit_data, check_attribute, resolve_thresholds
from fairmoe.audit.render import render_html
from fairmoe.audit.scores_csv import AuditError, read_user_scores
from fairmoe.checkpoint import RunMetadata
from fairmoe.metrics import Thresholds
from fairmoe.scores import ScoreSet

__all__ = [
    "AuditData",
    "AuditError",
    "audit_data",
    "build_audit",
    "read_user_scores",
    "write_audit",
]


def build_audit(
    ss: ScoreSet,
    *,
    attr: str = "race",
    threshold: float | Sequence[float] | Thresholds | None = None,
    strategy: str | None = None,
    cost_ratio: float = 4.0,
    meta: RunMetadata | None = None,
    source: str = "",
    scores_path: Path | None = None,
) -> str:
    """The audit HTML of ``ss`` for ``attr`` (an attribute or two crossed) at ``threshold`` (one
    value, one per group, or a ``{attr: [...]}`` mapping) or at the thresholds ``strategy`` picks
    for ``cost_ratio``."""
    attr = check_attribute(attr)
    if isinstance(threshold, dict):
        threshold = threshold.get(attr)
        if threshold is None:
            raise AuditError(f"the per-group thresholds are not for {attr}")
    thr = resolve_thresholds(
        ss, attr, threshold=threshold, strategy=strategy, cost_ratio=cost_ratio
    )
    data = audit_data(
        ss,
        attr=attr,
        threshold=thr,
        strategy=strategy,
        cost_ratio=cost_ratio if strategy else None,
        meta=meta,
        source=source,
        scores_path=scores_path,
    )
    return render_html(data)


def write_audit(out: str | Path, ss: ScoreSet, **kw: object) -> Path:
    """Write :func:`build_audit`'s HTML to ``out`` (UTF-8) and return the path."""
    out = Path(out)
    out.write_text(build_audit(ss, **kw), encoding="utf-8")  # type: ignore[arg-type]
    return out
