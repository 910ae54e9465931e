"""The fairness panel the Fairness and Cohort tabs both show, built and wired in one place.

Summary table with a confidence-interval button, group table, ROC, rates, confusion matrices and
the expert load per group. Element ids are ``<prefix>-summary``, ``<prefix>-ci``,
``<prefix>-groups``, ``<prefix>-roc``, ``<prefix>-rates``, ``<prefix>-confusion``,
``<prefix>-reliability`` and ``<prefix>-load`` (the browser tests select by them). :func:`app.callbacks.panel_view` fills it,
in the order of :meth:`FairnessPanel.outputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from app import callbacks as cb
from app.callbacks.source import UserKind
from app.runtime import Runtime
from fairmoe.schema import OPERATING_POINT, attribute

__all__ = [
    "AuditControls",
    "FairnessPanel",
    "ThresholdSliders",
    "audit_handler",
    "build_audit_controls",
    "build_fairness_panel",
    "build_threshold_sliders",
    "strategy_handler",
    "upload_box",
]

THRESHOLD_INFO = "Calibrated probability at or above which a case is called glaucoma."


@dataclass(frozen=True)
class ThresholdSliders:
    """Single/per-group mode, the single threshold and the per-group ones (unused ones hidden)."""

    mode: gr.Radio
    single: gr.Slider
    groups: tuple[gr.Slider, ...]  # cb.MAX_GROUPS

    @property
    def sliders(self) -> list[gr.Slider]:
        """The single threshold, then the per-group ones: the order the handlers take them in."""
        return [self.single, *self.groups]


@dataclass(frozen=True)
class AuditControls:
    """The audit button and the file it writes."""

    button: gr.Button
    file: gr.File


def build_threshold_sliders(
    prefix: str, *, label: str = "Threshold (all groups)", attr: str = "race"
) -> ThresholdSliders:
    """Single/per-group mode, the single threshold and ``cb.MAX_GROUPS`` per-group sliders (the
    unused ones hidden), with element ids ``<prefix>-mode``, ``<prefix>-threshold``,
    ``<prefix>-g<j>``.

    The per-group sliders start named after the groups of ``attr``, the tab's first attribute,
    as ``cb.group_slider_updates`` names them on a change (not "group 0" until then).
    """
    groups_of = attribute(attr).groups
    with gr.Row():
        mode = gr.Radio(
            ["single", "per group"],
            value="single",
            label="Thresholds",
            elem_id=f"{prefix}-mode",
            scale=1,
        )
        threshold = gr.Slider(
            0,
            1,
            value=OPERATING_POINT,
            step=0.001,
            label=label,
            elem_id=f"{prefix}-threshold",
            info=THRESHOLD_INFO,
            scale=3,
        )
    with gr.Row():
        groups = tuple(
            gr.Slider(
                0,
                1,
                value=OPERATING_POINT,
                step=0.001,
                label=f"Threshold: {groups_of[j] if j < len(groups_of) else f'group {j}'}",
                elem_id=f"{prefix}-g{j}",
                visible=j < len(groups_of),
                info="used in 'per group' mode",
            )
            for j in range(cb.MAX_GROUPS)
        )
    return ThresholdSliders(mode, threshold, groups)


@dataclass(frozen=True)
class FairnessPanel:
    """The panel's components."""

    summary: gr.Markdown
    ci: gr.Button  # computes the threshold-dependent bootstrap intervals on demand
    groups: gr.Markdown
    roc: gr.Plot
    rates: gr.Plot
    confusion: gr.Plot
    reliability: gr.Plot  # calibration by group
    load: gr.Plot

    def outputs(self, load: bool = False) -> list:
        """What ``panel_view(..., load=load)`` returns, in its order."""
        shown = [self.summary, self.groups, self.roc, self.confusion, self.rates, self.reliability]
        return [*shown, self.load] if load else shown


def build_audit_controls(prefix: str) -> AuditControls:
    """The audit button and its download, ids ``<prefix>-audit`` and ``<prefix>-audit-file``."""
    audit = gr.Button("Audit report (HTML)", size="sm", elem_id=f"{prefix}-audit")
    audit_file = gr.File(
        label="Audit report", interactive=False, elem_id=f"{prefix}-audit-file", height=70
    )
    return AuditControls(audit, audit_file)


def upload_box(label: str, ending: str, elem_id: str, height: int) -> gr.File:
    """A file upload of one kind (``ending``: ".zip", ".csv"), handed over as a path."""
    return gr.File(
        label=label, file_types=[ending], type="filepath", elem_id=elem_id, height=height
    )


def build_fairness_panel(prefix: str, *, place_load: bool = True) -> FairnessPanel:
    """Lay out the panel with element ids ``<prefix>-...``.

    With ``place_load=False`` the expert-load plot is made but not placed: the caller puts it
    where it belongs with ``panel.load.render()``.
    """
    with gr.Row(equal_height=False):
        summary = gr.Markdown(elem_id=f"{prefix}-summary")
        ci = gr.Button(
            "Confidence intervals", size="sm", elem_id=f"{prefix}-ci", scale=0, min_width=180
        )
    groups = gr.Markdown(elem_id=f"{prefix}-groups")
    with gr.Row(equal_height=False):
        roc = gr.Plot(show_label=False, elem_id=f"{prefix}-roc")
        rates = gr.Plot(show_label=False, elem_id=f"{prefix}-rates")
    with gr.Row(equal_height=False):
        confusion = gr.Plot(show_label=False, elem_id=f"{prefix}-confusion")
        reliability = gr.Plot(show_label=False, elem_id=f"{prefix}-reliability")
    load = gr.Plot(show_label=False, elem_id=f"{prefix}-load", render=place_load)
    return FairnessPanel(
        summary=summary,
        ci=ci,
        groups=groups,
        roc=roc,
        rates=rates,
        confusion=confusion,
        reliability=reliability,
        load=load,
    )


def strategy_handler(rt: Runtime, kind: UserKind) -> Callable[..., tuple]:
    """(model, user scores, attribute, cost, strategy) -> a strategy's slider outputs
    (``StrategyUpdate.outputs``), for either tab's menu of scores."""

    def choose(model: str, user: Any, attr: str, cost: Any, strategy: str) -> tuple:
        src = cb.resolve_source(rt, model, user, kind)
        if src is None:
            keep = (gr.update(),) * cb.MAX_GROUPS
            none = cb.StrategyUpdate(gr.update(), gr.update(), keep, cb.missing_scores(kind), None)
            return none.outputs()
        return cb.fairness_strategy(src.scores, attr, strategy, cost).outputs()

    return choose


def audit_handler(rt: Runtime, kind: UserKind) -> Callable[..., str]:
    """(model, user scores, attribute, mode, chosen strategy, *thresholds) -> the audit HTML."""

    def audit_click(model: str, user: Any, attr: str, mode: str, chosen: Any, *ts: float) -> str:
        src = cb.require_source(rt, model, user, kind)
        return cb.panel_audit(rt, src, attr, mode, ts[0], ts[1:], chosen)

    return audit_click
