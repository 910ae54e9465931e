"""Replacing shipped runs: REPORT.md keeps what it cannot recompute, marked, and gains the
influence figures of the new default model."""

from __future__ import annotations

import json
from pathlib import Path

from scripts.replace_runs import _sections, influence_section

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def test_report_sections_split_at_headings_and_join_back() -> None:
    text = (ASSETS / "REPORT.md").read_text()
    preamble, sections = _sections(text)
    assert preamble.startswith("# Fair-MoE Studio: evaluation report")
    assert all(h.startswith("## ") for h, _ in sections)
    assert preamble + "".join(h + body for h, body in sections) == text


def test_influence_section_states_the_default_models_figures_against_the_goals() -> None:
    meta = json.loads(
        (ASSETS / json.loads((ASSETS / "runs.json").read_text())["default"]).read_text()
    )
    lines = influence_section(meta)
    if meta.get("influence") is None:  # a checkpoint trained before influence was recorded
        assert lines == []
        return
    text = "\n".join(lines)
    silenced = meta["influence"]["silenced"]["mean_abs_delta_logit"]
    assert f"| {silenced:.3f} | >= 0.5" in text
    assert "Top-expert share" in text and "Per race group" in text
