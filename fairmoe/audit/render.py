"""The audit's one self-contained HTML file: inline CSS, plotly.js embedded, no network.

Every string from the user (file names, model names, messages that quote them) goes through
:func:`html.escape`; figure data goes through :func:`~fairmoe.audit.figures.script_json`.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

from fairmoe.audit.figures import plotly_js, roc_figure, roc_svg, routing_figure, script_json

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
"""
_LEVEL = {"warning": "warn", "caution": "caution", "info": "info"}


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _num(v: float | None, ci: Mapping[str, Any] | None = None) -> str:
    if v is None:
        return "undefined"
    out = f"{v:.3f}"
    return out + (f" <small>[{ci['low']:.3f}, {ci['high']:.3f}]</small>" if ci else "")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table whose cells are already escaped HTML."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _group_rows(groups: Sequence[Mapping[str, Any]], min_n: int) -> list[list[str]]:
    rows = []
    for g in groups:
        flags = []
        if g["n"] and g["auc"] is None:
            flags.append("undefined (one class)")
        if 0 < g["n"] < min_n:
            flags.append("too small")
        if g["n"] == 0:
            flags.append("no cases")
        flag = f'<span class="flag">{", ".join(flags)}</span>' if flags else "ok"
        rows.append(
            [
                _e(g["name"]),
                str(g["n"]),
                str(g["n_pos"]),
                _num(g["auc"], g["auc_ci"]),
                _num(g["tpr"], g["tpr_ci"]),
                _num(g["fpr"], g["fpr_ci"]),
                _num(g["selection_rate"]),
                _num(g["accuracy"]),
                f"{g['threshold']:.3f}",
                flag,
            ]
        )
    return rows


def _warnings(ws: Sequence[Mapping[str, Any]]) -> str:
    if not ws:
        return "<p>No guardrail warnings for these thresholds.</p>"
    return "".join(
        f'<div class="{_LEVEL.get(w["level"], "info")}" data-code="{_e(w["code"])}">'
        f"<b>{_e(w['level'])}</b>: {_e(w['message'])}</div>"
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


def _overall(o: Mapping[str, Any]) -> str:
    rate = "n/a" if o["flag_rate"] is None else f"{o['flag_rate']:.1%}"
    return _table(
        ["n", "positives", "AUC", "ES-AUC", "DPD", "DEOdds", "Accuracy", "Flag rate"],
        [
            [
                str(o["n"]),
                str(o["n_pos"]),
                _num(o["auc"], o["auc_ci"]),
                _num(o["es_auc"], o["es_auc_ci"]),
                _num(o["dpd"], o["dpd_ci"]),
                _num(o["deodds"], o["deodds_ci"]),
                _num(o["accuracy"]),
                rate,
            ]
        ],
    )


def render_html(d: Mapping[str, Any], *, min_n: int) -> str:
    """The audit document of ``audit_data``'s output."""
    js = plotly_js()
    routing_html, routing_fig = _routing(d["routing_health"])
    strategy = (
        f"strategy <b>{_e(d['strategy'])}</b> at cost ratio {_e(d['cost_ratio'])}"
        if d["strategy"]
        else "set by hand"
    )
    figs = {"roc": roc_figure(d["roc"])} | ({"routing": routing_fig} if routing_fig else {})
    if js:
        script = (
            f"<script>{js}</script><script>const FIGS={script_json(figs)};"
            "for(const[k,f]of Object.entries(FIGS)){Plotly.newPlot('fig-'+k,f.data,"
            "f.layout,{displaylogo:false,responsive:true});}</script>"
        )
        roc_html = '<div id="fig-roc"></div>'
        routing_plot = '<div id="fig-routing"></div>' if routing_fig else ""
    else:
        script = ""
        roc_html = (
            roc_svg(d["roc"]) + "<p><small>plotly is not installed: static curves.</small></p>"
        )
        routing_plot = ""
    made = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sha = (
        f"<p><small>Scores file sha256: {_e(d['scores_sha256'])}</small></p>"
        if d["scores_sha256"]
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(d["title"])}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head>
<body><h1>{_e(d["title"])}</h1>
<p><small>Fair-MoE Studio audit, written {made}. Research tool, not for clinical use. Attribute:
<b>{_e(d["attribute"])}</b>. Intervals: 95% percentile bootstrap over {d["n_boot"]:,} resamples of
the cases.</small></p>
<h2>Model card</h2>{_table(["", ""], [[_e(k), _e(v)] for k, v in d["model_card"]])}{sha}
<h2>Thresholds</h2><p>Thresholds {strategy}. A case is called glaucoma when its score is at or
above its group's threshold.</p>{
        _table(["Group", "Threshold"], [[_e(g), _e(t)] for g, t in d["thresholds"]])
    }
<h2>Guardrail warnings</h2><div id="warnings">{_warnings(d["warnings"])}</div>
<h2>Overall</h2>{_overall(d["overall"])}
<h2>Per group</h2><div id="group-table">{
        _table(
            [
                "Group",
                "n",
                "Positives",
                "AUC [95% CI]",
                "TPR [95% CI]",
                "FPR [95% CI]",
                "Selection rate",
                "Accuracy",
                "Threshold",
                "Reliability",
            ],
            _group_rows(d["groups"], min_n),
        )
    }</div>
<p><small>A group with fewer than {min_n} cases is marked <i>too small</i>: read its interval, not
its point value. A group with one class has an <i>undefined</i> AUC and does not count in ES-AUC
(ES-AUC = AUC / (1 + sum over groups with a defined AUC of |AUC - group AUC|)).</small></p>
<h2>ROC curves</h2>{roc_html}
<h2>Routing health</h2>{routing_html}{routing_plot}
{script}</body></html>
"""
