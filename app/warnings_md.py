"""Guardrail warnings (fairmoe.guardrails) as the markdown the Fairness and Cohort tabs show.

A degenerate operating point gets a banner of its own (it makes every parity gap look perfect);
the other warnings are a short list under it. Group-level flags (``GroupRow.flag``) also mark
the group table.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from app.theme import icon
from fairmoe.metrics.result import MIN_GROUP_N, Caveat

__all__ = ["ES_AUC_RULE", "warnings_markdown"]

# CSS icons (app.theme), not emoji: they show without a colour-emoji font
_ICON = {"warning": icon("warn"), "caution": icon("warn"), "info": icon("info")}

ES_AUC_RULE = (
    f"A group with fewer than {MIN_GROUP_N} cases is marked *too small*: its AUC and rates move "
    "with a handful of patients (read its 95% CI). A group with only one class has an "
    "*undefined* AUC; ES-AUC then sums over the groups whose AUC is defined, so that group does "
    "not count in it."
)


def warnings_markdown(warnings: Sequence[Caveat]) -> str:
    """Banner for a degenerate operating point, then the other warnings as a list ('' if none)."""
    out = []
    for w in warnings:
        if w.code == "degenerate":
            out.append(
                f"> {icon('warn')} **Degenerate operating point.** "
                + html.escape(w.message, quote=False)
            )
    rest = [w for w in warnings if w.code != "degenerate"]
    if rest:
        out.append(
            "\n".join(
                f"- {_ICON.get(w.level, '')} {html.escape(w.message, quote=False)}" for w in rest
            )
        )
    return "\n\n".join(out)
