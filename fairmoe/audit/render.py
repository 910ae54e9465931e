"""The audit's one self-contained HTML file: inline CSS, plotly.js embedded, no network.

Every string from the user (file names, model names, messages that quote them) goes through
:func:`html.escape`; figure data goes through :func:`~fairmoe.audit.figures.script_json`.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

from fairmoe.audit.content import AuditData
from fairmoe.audit.figures import (
    COLOURS,
    plotly_js,
    reliability_figure,
    reliability_svg,
    roc_figure,
    roc_svg,
    routing_figure,
    script_json,
)
from fairmoe.metrics.reliability import CONFIDENT_BANDS, Band
from fairmoe.metrics.result import MIN_GROUP_N, Caveat, GroupRow, Interval

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:2rem auto;
max-width:1050px;color:#1a1a1a;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .55rem;
text-align:right}th{background:#f3f5f8}td:first-child,th:first-child{text-align:left}
.warn{border-left:4px solid #b00020;background:#fff4f4;padding:.4rem .8rem;margin:.4rem 0}
.caution{border-left:4px solid #b26a00;background:#fff8ec;padding:.4rem .8rem;margin:.4rem 0}
.info{border-left:4px solid #0072b2;background:#f1f7fc;padding:.4rem .8rem;margin:.4rem 0}
.flag{color:#b00020;font-weight:600}small{color:#555}
.scroll{overflow-x:auto}.grid{display:flex;flex-wrap:wrap;gap:.5rem}
.rel{width:330px;margin:0}figure.rel figcaption{text-align:center}
"""
_LEVEL = {"warning": "warn", "caution": "caution", "info": "info"}


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _num(v: float | None, ci: Interval | None = None, *, signed: bool = False) -> str:
    if v is None:
        return "undefined"
    out = f"{v:+.3f}" if signed else f"{v:.3f}"
    return out + (f" <small>[{ci.low:.3f}, {ci.high:.3f}]</small>" if ci else "")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table whose cells are already escaped HTML."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _flag(g: GroupRow) -> str:
    return f'<span class="flag">{_e(g.flag)}</span>' if g.flag else "ok"


_GROUP_HEAD = (
    "Group",
    "n",
    "Positives",
    "AUC [95% CI]",
    "TPR (sensitivity)",
    "FNR (missed)",
    "FPR",
    "PPV",
    "NPV",
    "Selection rate",
    "Accuracy",
    "Threshold",
    "Reliability",
)


def _group_rows(groups: Sequence[GroupRow]) -> list[list[str]]:
    return [
        [
            _e(g.name),
            str(g.n),
            str(g.n_pos),
            _num(g.auc, g.ci.auc),
            _num(g.tpr, g.ci.tpr),
            _num(g.fnr, g.ci.fnr),
            _num(g.fpr, g.ci.fpr),
            _num(g.ppv, g.ci.ppv),
            _num(g.npv, g.ci.npv),
            _num(g.selection_rate),
            _num(g.accuracy),
            f"{g.threshold:.3f}",
            _flag(g),
        ]
        for g in groups
    ]


def _band(b: Band) -> str:
    if not b.n:
        return "no cases"
    return f"{b.observed:.0%} <small>({b.n_pos} of {b.n})</small>"


def _calibration_rows(groups: Sequence[GroupRow]) -> list[list[str]]:
    rows = []
    for g in groups:
        bands = {(b.low, b.high): b for b in g.bands}
        rows.append(
            [
                _e(g.name),
                str(g.n),
                "n/a" if g.prevalence is None else f"{g.prevalence:.3f}",
                _num(g.ece, g.ci.ece),
                _num(g.citl, signed=True),
                *(_band(bands[lh]) if lh in bands else "n/a" for lh in CONFIDENT_BANDS),
                _flag(g),
            ]
        )
    return rows


def _warnings(ws: Sequence[Caveat]) -> str:
    if not ws:
        return "<p>No guardrail warnings for these thresholds.</p>"
    return "".join(
        f'<div class="{_LEVEL.get(w.level, "info")}" data-code="{_e(w.code)}">'
        f"<b>{_e(w.level)}</b>: {_e(w.message)}</div>"
        for w in ws
    )


def _routing(health: Mapping[str, Any] | None) -> tuple[str, dict[str, Any] | None]:
    if not health or "token_img" not in health:
        return "<p>This run records no routing health (no token MoE, or scores only).</p>", None
    o = health["token_img"]["overall"]
    state = (
        "<span class='flag'>collapsed: one expert takes most patches</span>"
        if o.get("collapsed")
        else "spread over the experts"
    )
    rows = [
        [
            _e(name),
            f"{h['top_expert_share']:.3f}",
            f"{h['kept_entropy']:.3f}",
            f"{h['none_share']:.3f}",
        ]
        for name, h in [("everyone", o)]
        + [
            (f"{attr}: {g}", gh)
            for attr, gs in health["token_img"].get("groups", {}).items()
            for g, gh in gs.items()
            if gh.get("n_tokens")
        ]
    ]
    text = f"<p>Image token MoE on the test split: {state}.</p>" + _table(
        ["Patches of", "Top-expert share", "Kept entropy (1 = even)", "Kept by no expert"], rows
    )
    return text, routing_figure(health["token_img"])


def _overall(d: AuditData) -> str:
    r = d.result
    rate = "n/a" if d.flag_rate is None else f"{d.flag_rate:.1%}"
    return _table(
        [
            "n",
            "Positives",
            "AUC",
            "ES-AUC",
            "DPD",
            "DEOdds",
            "Accuracy",
            "ECE",
            "CITL",
            "Flag rate",
        ],
        [
            [
                str(r.n),
                str(r.n_pos),
                _num(r.auc, r.ci.get("auc")),
                _num(r.es_auc, r.ci.get("es_auc")),
                _num(r.dpd, r.ci.get("dpd")),
                _num(r.deodds, r.ci.get("deodds")),
                _num(r.accuracy, r.ci.get("accuracy")),
                _num(r.ece, r.ci.get("ece")),
                _num(r.citl, signed=True),
                rate,
            ]
        ],
    )


def _figures(
    d: AuditData, js: str | None, routing_fig: dict[str, Any] | None
) -> tuple[dict[str, Any], str, str, str]:
    """(plotly figures by id, ROC html, reliability html, routing plot html); inline SVG and no
    figures when plotly.js is not installed (``js`` None)."""
    groups = d.result.present
    colours = [COLOURS[i % len(COLOURS)] for i in range(len(groups))]  # as the ROC's curves
    if not js:
        static = "<p><small>plotly is not installed: static curves.</small></p>"
        cells = "".join(
            f'<figure class="rel" id="rel-{i}">{reliability_svg(g.reliability, colour=c)}'
            f"<figcaption>{_e(g.name)}</figcaption></figure>"
            for i, (g, c) in enumerate(zip(groups, colours, strict=True))
        )
        return {}, roc_svg(d.roc) + static, f'<div class="grid">{cells}</div>{static}', ""
    figs = {"roc": roc_figure(d.roc)}
    for i, (g, c) in enumerate(zip(groups, colours, strict=True)):
        title = f"{g.name} (n={g.n}, ECE {_num(g.ece)})"
        figs[f"rel-{i}"] = reliability_figure(title, g.reliability, d.result.reliability, colour=c)
    if routing_fig:
        figs["routing"] = routing_fig
    cells = "".join(f'<div class="rel" id="fig-rel-{i}"></div>' for i in range(len(groups)))
    routing = '<div id="fig-routing"></div>' if routing_fig else ""
    return figs, '<div id="fig-roc"></div>', f'<div class="grid">{cells}</div>', routing


def render_html(d: AuditData) -> str:
    """The audit document of :func:`~fairmoe.audit.content.audit_data`'s output."""
    r = d.result
    js = plotly_js()
    routing_html, routing_fig = _routing(d.routing_health)
    figs, roc_html, reliability_html, routing_plot = _figures(d, js, routing_fig)
    strategy = (
        f"strategy <b>{_e(d.strategy)}</b> at cost ratio {_e(d.cost_ratio)}"
        if d.strategy
        else "set by hand"
    )
    script = ""
    if figs:
        script = (
            f"<script>{js}</script><script>const FIGS={script_json(figs)};"
            "for(const[k,f]of Object.entries(FIGS)){Plotly.newPlot('fig-'+k,f.data,"
            "f.layout,{displaylogo:false,responsive:true});}</script>"
        )
    made = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sha = (
        f"<p><small>Scores file sha256: {_e(d.scores_sha256)}</small></p>"
        if d.scores_sha256
        else ""
    )
    unknown = (
        f" {r.n_unknown:,} cases whose {_e(r.attribute)} is unknown count only in the overall "
        "figures."
        if r.n_unknown
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(d.title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>
<body><h1>{_e(d.title)}</h1>
<p><small>Fair-MoE Studio audit, written {made}. Research tool, not for clinical use. Attribute:
<b>{_e(r.attribute)}</b>. Intervals: 95% percentile bootstrap over {d.n_boot:,} resamples of
the cases.</small></p>
<h2>Model card</h2>{_table(["", ""], [[_e(k), _e(v)] for k, v in d.model_card])}{sha}
<h2>Thresholds</h2><p>Thresholds {strategy}. A case is called glaucoma when its score is at or
above its group's threshold.</p>{
        _table(["Group", "Threshold"], [[_e(g), _e(t)] for g, t in d.thresholds])
    }
<h2>Guardrail warnings</h2><div id="warnings">{_warnings(d.warnings)}</div>
<h2>Overall</h2>{_overall(d)}
<p><small>ECE: expected calibration error of the probability (10 bins). CITL:
calibration-in-the-large, the mean probability minus the observed glaucoma rate (above 0: the
model over-estimates).{unknown}</small></p>
<h2>Per group</h2><div id="group-table" class="scroll">{
        _table(_GROUP_HEAD, _group_rows(r.groups))
    }</div>
<p><small>TPR: share of glaucoma patients flagged; FNR = 1 - TPR, the patients missed; FPR: share
of healthy patients flagged; PPV and NPV: how often a flag, or no flag, is right. A group with
fewer than {MIN_GROUP_N} cases is marked <i>too small</i>: read its interval, not its point value.
A group with one class has an <i>undefined</i> AUC and does not count in ES-AUC
(ES-AUC = AUC / (1 + sum over groups with a defined AUC of |AUC - group AUC|)).</small></p>
<h2>Calibration per group</h2><div id="calibration-table" class="scroll">{
        _table(
            [
                "Group",
                "n",
                "Glaucoma rate",
                "ECE [95% CI]",
                "CITL",
                *(_band_head(lo, hi) for lo, hi in CONFIDENT_BANDS),
                "Reliability",
            ],
            _calibration_rows(r.groups),
        )
    }</div>
<p><small>Does a probability mean the same for every group? Each diagram puts the observed
glaucoma rate against the mean predicted probability in each tenth of the score range (marker
area: cases); on the dotted diagonal the probabilities are right, everyone's curve is dashed.
The confident bands are the observed rates among a group's patients scored low or high.</small></p>
<div id="reliability">{reliability_html}</div>
<h2>ROC curves</h2>{roc_html}
<h2>Routing health</h2>{routing_html}{routing_plot}
{script}</body></html>
"""


def _band_head(low: float, high: float) -> str:
    where = f"below {high:g}" if low == 0 else f"{low:g} or more"
    return f"Observed rate, scored {where}"
