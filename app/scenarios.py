"""The fair test's scenarios in the Fairness tab: which runs each holds, how its menu entry and
cause read, and the post-processing baselines and verdict of ``fair_test/results.json``.

A scenario (runs.json ``scenarios``) is a synthetic data set with a known cause of bias; its runs
(``data`` = its name, or ``NAME-free`` for the stamp-free twin) are scored on its own independent
test draw, so they are compared with each other only. Runs of the main data, and of data that is
no scenario (the older "shortcut" variant), stay under :data:`MAIN`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.manifest import ManifestCheck
from app.text import help_span
from fairmoe.fairtest.verdict import CRITERIA
from fairmoe.summary import mean_std

__all__ = [
    "BASELINE_LABELS",
    "FAIR_TEST_RESULTS",
    "MAIN",
    "MAIN_LABEL",
    "ROLE_WORDS",
    "baselines_markdown",
    "first_clip",
    "load_fair_test",
    "runs_of",
    "scenario_choices",
    "scenario_note",
    "scenario_of",
]

MAIN = "main"  # the Scenario menu's value for the main data set (runs.json's data "main")
MAIN_LABEL = "Main data set"
FAIR_TEST_RESULTS = "fair_test/results.json"  # relative to the assets folder
TWIN = "-free"  # the stamp-free twin's data is the scenario's name with this suffix

# Each role in words, in the order the menu lists them (fairmoe.data.synthetic.ROLES).
ROLE_WORDS = {
    "positive_control": "positive control: a shortcut CLIP is shown to learn",
    "primary": "primary: a shortcut in one group",
    "secondary": "secondary: a second, different cause",
    "negative_control": "negative control: a gap no fairness loss should close",
}
BASELINE_LABELS = {
    "threshold_optimizer_eo": "ThresholdOptimizer, equalized odds",
    "threshold_optimizer_tpr": "ThresholdOptimizer, equal TPR",
    "per_group_thresholds": "Per-group thresholds (equal sensitivity)",
}
_BASELINE_METRICS = ("tpr_gap", "deodds", "dpd")  # results.json's keys, as the columns
_VERDICT_WORDS = {
    "positive": "Fair-MoE meets a criterion that Fair-MoE without FOL does not",
    "negative": "every difference from CLIP lies within ±0.01 and the positive control showed "
    "the gap could be closed",
    "inconclusive": "neither positive nor negative by the pre-registered criteria",
}


def scenario_of(data: str, scenarios: Mapping[str, Any] | None) -> str | None:
    """The scenario whose test draw a run with this ``data`` is scored on, or None (main data,
    older variants)."""
    for name in scenarios or {}:
        if name != MAIN and data in (name, name + TWIN):
            return name
    return None


def runs_of(runs: Sequence[Any], scenario: str | None) -> list[Any]:
    """The runs listed under ``scenario``; :data:`MAIN` (or None): every run of no scenario."""
    want = None if scenario in (None, MAIN) else scenario
    return [r for r in runs if r.scenario == want]


def _role_order(role: str) -> int:
    order = list(ROLE_WORDS)
    return order.index(role) if role in order else len(order)


def scenario_choices(
    runs: Sequence[Any], scenarios: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """(label, value) of the Scenario menu: the main data set, then each scenario that has runs,
    by role (positive control, primary, secondary, negative control)."""
    present = {r.scenario for r in runs}
    named = sorted(
        (name for name in scenarios or {} if name in present),
        key=lambda name: _role_order(scenarios[name].role),  # sorted is stable: file order next
    )
    return [(MAIN_LABEL, MAIN)] + [
        (f"{name} — {ROLE_WORDS.get(scenarios[name].role, scenarios[name].role)}", name)
        for name in named
    ]


def first_clip(runs: Sequence[Any]) -> str | None:
    """The first CLIP run (the reference every method is compared with), else the first run."""
    pool = [r for r in runs if r.method == "clip"] or list(runs)
    return pool[0].name if pool else None


def scenario_note(scenario: str, scenarios: Mapping[str, Any] | None) -> str:
    """The line under the Scenario menu: the role and the one-line cause."""
    entry = (scenarios or {}).get(scenario) if scenario != MAIN else None
    if entry is None:
        return (
            "**Main data set**: the main synthetic test split, with every method, ablation and "
            "fairness-weight sweep."
        )
    role = ROLE_WORDS.get(entry.role, entry.role)
    return (
        f"**{scenario}** ({role}; generator `--mechanisms {entry.mechanisms}`). "
        f"**Cause:** {entry.cause} Its runs are scored on the scenario's own test draw."
    )


def _cell(b: Mapping[str, Any], key: str) -> str:
    """A baseline's mean (as results.json gives it) ± the std over CLIP's seeds."""
    mean = b.get(key)
    if not isinstance(mean, int | float):
        return "n/a"
    seeds = [s.get(key) for s in b.get("per_seed") or () if isinstance(s, Mapping)]
    std = mean_std([v for v in seeds if isinstance(v, int | float)])["std"]
    return f"{mean:.3f}" + (f" ± {std:.3f}" if std is not None else "")


def _verdict_line(v: Mapping[str, Any]) -> str:
    word = str(v.get("verdict", "?"))
    on = [CRITERIA.get(k, k) for k in v.get("positive_on") or ()]
    why = _VERDICT_WORDS.get(word, "")
    return (
        f"**Pre-registered verdict: {word}**"
        + (f": {why}" if why else "")
        + (f" (on: {'; '.join(on)})" if on else "")
        + ". Criteria: docs/fair_test/PREREGISTERED.md."
    )


def baselines_markdown(results: Mapping[str, Any] | None) -> str:
    """The post-processing baselines on CLIP's scores and the verdict of one scenario's part of
    results.json, as markdown; "" when there is none."""
    if not results:
        return ""
    out = []
    baselines = results.get("baselines") or {}
    if baselines:
        head = f"{help_span('TPR', 'TPR gap')} ↓ | {help_span('DEOdds')} ↓ | {help_span('DPD')} ↓"
        lines = [f"| Post-processing on CLIP's scores | {head} |", "|---|---:|---:|---:|"]
        for name, b in baselines.items():
            label = BASELINE_LABELS.get(name, name)
            if not isinstance(b, Mapping) or "error" in b:
                why = b.get("error") if isinstance(b, Mapping) else "not in the expected form"
                lines.append(f"| {label} | {why} | | |")
                continue
            lines.append(
                f"| {label} | " + " | ".join(_cell(b, k) for k in _BASELINE_METRICS) + " |"
            )
        out.append(
            "\n".join(lines)
            + "\n\n<small>Fit on CLIP's validation scores and applied to this test draw, by race; "
            "mean ± standard deviation over CLIP's seeds, each rule at its own thresholds "
            "(not 0.5).</small>"
        )
    if isinstance(results.get("verdict"), Mapping):
        out.append(_verdict_line(results["verdict"]))
    return "\n\n".join(out)


def load_fair_test(assets: Path, check: ManifestCheck, skipped: list[str]) -> dict[str, Any]:
    """Scenario -> its part of ``assets/fair_test/results.json``; {} when the file is absent, and
    when it cannot be trusted or read (then ``skipped`` says why)."""
    path = assets / FAIR_TEST_RESULTS
    if not path.is_file():
        return {}
    if problem := check.status(FAIR_TEST_RESULTS):
        skipped.append(f"the fair test's results: {problem}")
        return {}
    try:
        scenarios = json.loads(path.read_text(encoding="utf-8"))["scenarios"]
        if not isinstance(scenarios, dict):
            raise TypeError(f"'scenarios' is {type(scenarios).__name__}, not an object")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        skipped.append(f"the fair test's results: {path}: cannot read ({type(e).__name__}: {e})")
        return {}
    return {name: res for name, res in scenarios.items() if isinstance(res, dict)}
