"""Views across runs (runs.json): models side by side, the fairness-weight sweep, menu labels.

Seeds are pooled as in the report (fairmoe.summary: mean and sample std), so the app's trade-off
plot and the report's sweep table give the same numbers for the same runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.text import help_span
from fairmoe.methods import METHODS
from fairmoe.schema import OPERATING_POINT, attribute, parts
from fairmoe.summary import headline_metrics, mean_std

__all__ = [
    "COMPARE_METRICS",
    "HIGHER_IS_BETTER",
    "TRADEOFF_METRICS",
    "comparison",
    "menu_labels",
    "tradeoff_points",
]

COMPARE_METRICS = ("AUC", "ES-AUC", "DPD", "DEOdds")
TRADEOFF_METRICS = ("DPD", "DEOdds", "ES-AUC")
HIGHER_IS_BETTER = {"AUC": True, "ES-AUC": True, "DPD": False, "DEOdds": False}


def menu_labels(runs: Sequence[Any]) -> dict[str, str]:
    """Run name -> a label no other run shares (the data variant, then the name, added)."""
    labels = {r.name: r.label for r in runs}
    for extra in (
        lambda r: f"data: {r.data}" if r.data != "main" else "",
        lambda r: f"trained for {r.attribute}",
        lambda r: r.name,
    ):
        seen: dict[str, int] = {}
        for lab in labels.values():
            seen[lab] = seen.get(lab, 0) + 1
        for r in runs:
            if seen[labels[r.name]] > 1 and (more := extra(r)) and more not in labels[r.name]:
                labels[r.name] = f"{labels[r.name]} · {more}"
    return labels


def _plain_tag(r: Any) -> bool:
    """No ablation: an empty tag, or one that only repeats the fairness weight ("x0.25")."""
    return not r.tag or r.tag == f"x{r.fairness_scale:g}"


def _for_attribute(runs: Sequence[Any], attr: str, scenario: str | None = None) -> list[Any]:
    """Runs on one test set (the main one, or a scenario's test draw) trained for ``attr`` (or
    all attributes); a method that ignores the attribute (``MethodSpec.uses_attribute``) trains
    one model whatever the attribute, so its runs for another attribute stand in when none was
    trained for this one."""
    if scenario is None:
        main = [r for r in runs if r.data == "main"]
    else:
        main = [r for r in runs if r.scenario == scenario]
    wanted = (*parts(attribute(attr).name), "all")  # crossed: runs trained for either attribute
    blind_for_attr = {r.method for r in main if not r.uses_attribute and r.attribute in wanted}
    return [
        r
        for r in main
        if r.attribute in wanted or (not r.uses_attribute and r.method not in blind_for_attr)
    ]


def comparison(
    runs: Sequence[Any], attr: str, scenario: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Rows per model family (seeds pooled: mean and std) and a markdown table: the main test
    set's runs at fairness weight 1 (the sweep has its own plot), or every run of ``scenario``
    (Fair-MoE without FOL is its weight-0 arm) on its test draw."""
    families: dict[str, list[Any]] = {}
    for r in _for_attribute(runs, attr, scenario):
        if scenario is not None or r.fairness_scale == 1:
            families.setdefault(r.family, []).append(r)
    rows = []
    for fam, members in families.items():
        per_run = [headline_metrics(r.scores, attr) for r in members]
        row: dict[str, Any] = {"family": fam, "seeds": len(members)}
        for m in COMPARE_METRICS:
            row[m] = mean_std([p[m] for p in per_run])
        rows.append(row)
    arrow = {True: "↑", False: "↓"}
    head = [
        "Model",
        "Seeds",
        *(f"{help_span(m)} {arrow[HIGHER_IS_BETTER[m]]}" for m in COMPARE_METRICS),
    ]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(COMPARE_METRICS)]
    for row in rows:
        cells = []
        for m in COMPARE_METRICS:
            s = row[m]
            cell = "n/a" if s["mean"] is None else f"{s['mean']:.3f}"
            if s["std"] is not None:
                cell += f" ± {s['std']:.3f}"
            cells.append(cell)
        lines.append(f"| {row['family']} | {row['seeds']} | " + " | ".join(cells) + " |")
    blind = [m.label for m in METHODS.values() if not m.uses_attribute]
    ignores = f" ({', '.join(blind)} ignore the attribute)" if blind else ""
    where = "Test set"
    if scenario is not None:
        n = sorted({r.scores.n for ms in families.values() for r in ms})
        cases = "/".join(f"{k:,}" for k in n) or "no"
        where = f"Scenario *{scenario}*: its own test draw ({cases} cases)"
    note = (
        f"\n\n<small>{where}, runs trained for *{attr}*{ignores}, each at "
        f"its own operating point {OPERATING_POINT:g}; mean ± standard deviation over seeds where "
        "there are several. [config] is the model size. ↑ higher is better, ↓ lower is "
        "better.</small>"
    )
    return rows, "\n".join(lines) + note


def _point(members: Sequence[Any], attr: str, metric: str, **kw: Any) -> dict[str, Any] | None:
    vals = [headline_metrics(r.scores, attr) for r in members]
    x, y = mean_std([v[metric] for v in vals]), mean_std([v["AUC"] for v in vals])
    if x["mean"] is None or y["mean"] is None:
        return None
    return {
        "x": x["mean"],
        "y": y["mean"],
        "x_std": x["std"] or 0.0,
        "y_std": y["std"] or 0.0,
        "seeds": len(members),
        "runs": [r.name for r in members],
        **kw,
    }


def tradeoff_points(
    runs: Sequence[Any], attr: str, metric: str, loaded: str | None = None
) -> list[dict[str, Any]]:
    """Points of the trade-off plot, each with ``kind``:

    - ``sweep``: one per (series, fairness weight) of every swept series, seeds averaged (mean,
      std as error bars);
    - ``reference``: every other model family at weight 1 (CLIP, FairCLIP), seeds averaged;
    - ``loaded``: the loaded run itself, when it is one of these runs.
    """
    pool = [r for r in _for_attribute(runs, attr) if _plain_tag(r)]
    swept = {r.series for r in pool if r.fairness_scale != 1}
    buckets: dict[tuple[str, float], list[Any]] = {}
    refs: dict[str, list[Any]] = {}
    for r in pool:
        if r.series in swept:
            buckets.setdefault((r.series, r.fairness_scale), []).append(r)
        elif r.fairness_scale == 1:
            refs.setdefault(r.series, []).append(r)
    points = []
    for (series, scale), members in sorted(buckets.items(), key=lambda kv: kv[0][1]):
        label = f"{series}, fairness x{scale:g} ({len(members)} seed(s))"
        p = _point(members, attr, metric, kind="sweep", series=series, scale=scale, label=label)
        points += [p] if p else []
    for series, members in refs.items():
        label = f"{series} ({len(members)} seed(s))"
        p = _point(members, attr, metric, kind="reference", series=series, scale=1.0, label=label)
        points += [p] if p else []
    hit = [r for r in pool if r.name == loaded]
    if hit and (p := _point(hit, attr, metric, kind="loaded", series=hit[0].series)):
        points.append(p | {"scale": hit[0].fairness_scale, "label": f"loaded model: {loaded}"})
    return points
