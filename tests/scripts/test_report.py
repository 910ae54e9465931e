"""scripts/report.py: a run's summary, read from FairnessResults, is what runs.json holds."""

from __future__ import annotations

import json
from pathlib import Path

from fairmoe.runs_file import RunEntry
from fairmoe.scores import read_scores
from scripts.report import summarise, summary_of

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def test_summaries_reproduce_the_shipped_runs_json() -> None:
    runs = json.loads((ASSETS / "runs.json").read_text())["runs"]
    for run in runs:
        got = summarise(read_scores(ASSETS / run["scores"], run["name"]))
        assert json.loads(json.dumps(got, allow_nan=False)) == run["test"], run["name"]
        race = summary_of(RunEntry.from_json(run), "race")
        assert set(race.group_auc) == {"Asian", "Black", "White"}
