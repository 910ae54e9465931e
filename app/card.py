"""The header and the Model card tab: checkpoint metadata and assets/REPORT.md as markdown."""

from __future__ import annotations

import re
from typing import Any

from app.runtime import Runtime
from app.text import disclaimer
from fairmoe.methods import method_label, uses_attribute
from fairmoe.metrics import format_report_table
from fairmoe.schema import ATTRIBUTE_NAMES, OPERATING_POINT

__all__ = ["assessability_text", "header_markdown", "model_card", "report_markdown"]


def _trained_for(method: str, attribute: str) -> str:
    return f" for *{attribute}*" if uses_attribute(method) else ""


def header_markdown(rt: Runtime) -> str:
    m = rt.meta
    size = f" · {m.n_parameters / 1e6:.1f} M parameters" if m.n_parameters else ""
    trained = _trained_for(m.method, m.attribute)
    return (
        f"# Fair-MoE Studio\n"
        f"**Model:** {rt.model_name} ({method_label(m.method)}{trained}, config "
        f"{m.config_name}{size})  \n"
        f"<span class='disclaimer'>{disclaimer(m)}</span>"
    )


def _table(rows: list[tuple[str, Any]]) -> str:
    return "| Field | Value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _data_summary(data: dict[str, Any]) -> str:
    lines = [
        "| Split | n | glaucoma | race | gender | ethnicity | language |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for split, s in data.items():
        if not isinstance(s, dict) or "n" not in s:
            continue
        groups = [
            ", ".join(f"{k} {v}" for k, v in (s.get(a) or {}).items()) for a in ATTRIBUTE_NAMES
        ]
        lines.append(
            f"| {split} | {s['n']} | {s.get('n_glaucoma', '')} | " + " | ".join(groups) + " |"
        )
    return "\n".join(lines)


def model_card(rt: Runtime) -> str:
    """Markdown model card from the checkpoint metadata (+ assets/REPORT.md if present)."""
    m = rt.meta
    device = m.device or "unknown"
    cpu = device.lower() == "cpu"
    train = m.train_config
    fitted = f" (fitted on {m.calibration_fitted_on})" if m.calibration_fitted_on else ""
    rows = [
        ("Name", rt.model_name),
        ("Method", method_label(m.method)),
        ("Trained for attribute", m.attribute or "n/a"),
        ("Model config", m.config_name or "n/a"),
        ("Parameters", f"{m.n_parameters:,}" if m.n_parameters else "n/a"),
        ("Trained on", f"**{device}**" + (" (CPU-trained: a small, quick model)" if cpu else "")),
        (
            "Epochs / best epoch (on validation)",
            f"{train.get('epochs', '?')} / {m.best_epoch if m.best_epoch is not None else '?'}",
        ),
        ("Fairness-loss scale", train.get("fairness_scale", "n/a")),
        ("Seed", m.seed if m.seed is not None else "n/a"),
        ("Calibration temperature", f"{m.temperature:.4g}{fitted}"),
        ("Operating point", f"{rt.predictor.threshold:.2f} on the calibrated probability"),
        ("Training time", f"{m.train_seconds:.0f} s" if m.train_seconds else "n/a"),
        ("Checkpoint", f"`{rt.checkpoint.name}`"),
    ]
    parts = [f"## Model card\n\n{disclaimer(m)}\n\n" + _table(rows)]
    if cpu:
        parts.append(
            "> **This model was trained on a CPU.** It is a small model trained briefly; its "
            "numbers show how the method behaves, not what the paper's ViT-B/16 reaches."
        )
    model = rt.predictor.model
    if model.token_moe_img is not None and not model.patch_experts_reach_output:
        parts.append(
            "> **In this model the patch experts cannot change the prediction** (CLS pooling "
            "after the last block); their maps show routing, not influence."
        )
    if m.data:
        parts.append("### Training data\n\n" + _data_summary(m.data))
    test = m.test_metrics
    if test:
        parts.append(
            f"### Test metrics (threshold {OPERATING_POINT:g})\n\n" + format_report_table(test)
        )
    assess = assessability_text(rt)
    if assess:
        parts.append("### Assessability check\n\n" + assess)
    parts.append("### Integrity\n\n" + integrity_text(rt))
    if rt.skipped:
        parts.append("### Left out at start-up\n\n" + "\n".join(f"- {s}" for s in rt.skipped))
    return "\n\n".join(parts)


def assessability_text(rt: Runtime) -> str:
    """The fitted assessability check's figures: what it refuses of in-distribution scans, in all
    and per race group (the groups are for this report only: the check never reads them)."""
    det = rt.predictor.detector
    if det is None:
        return ""
    info = det.to_summary()
    n, flagged = info.get("n_calibration"), info.get("calibration_flagged")
    if n is None or flagged is None:
        return f"Novelty threshold {det.threshold:.2f}."
    text = (
        f"Fitted on {info.get('n_reference', '?')} training scans; on {n} validation scans it "
        f"refused {flagged:.1%} (false alarms; novelty threshold {det.threshold:.2f})."
    )
    groups = info.get("calibration_flagged_by_race") or {}
    if groups:
        text += "\n\n| Race group | Validation scans | False alarms |\n|---|---:|---:|\n"
        text += "\n".join(f"| {g} | {v['n']} | {v['flagged']:.1%} |" for g, v in groups.items())
    return text


def integrity_text(rt: Runtime) -> str:
    """What was verified at start: the assets' MANIFEST.json and the checkpoint's own hashes."""
    check = rt.manifest
    text = "Checkpoint weights matched the sha256 in their metadata. "
    if not check.present:
        return text + f"`{rt.assets}` has no MANIFEST.json: the other files were not verified."
    text += f"{len(check.verified)} files matched `MANIFEST.json` (size and sha256)."
    if check.problems:
        text += " Mismatches:\n" + "\n".join(f"- {p}" for p in check.problems.values())
    return text


def report_markdown(rt: Runtime) -> str:
    """assets/REPORT.md with relative image links served from the assets folder."""
    if not rt.report_md:
        return "*No assets/REPORT.md yet.*"

    def link(mt: re.Match) -> str:
        target = mt.group(2)
        if "://" in target or target.startswith("/"):
            return mt.group(0)
        path = (rt.assets / target).resolve()
        return f"{mt.group(1)}(/gradio_api/file={path})"

    return re.sub(r"(!\[[^\]]*\])\(([^)\s]+)\)", link, rt.report_md)
