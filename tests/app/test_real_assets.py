"""Read-only checks of the app on the repo's shipped assets/ (skipped until they exist)."""

from __future__ import annotations

import json

import pytest

from app import callbacks as cb
from app import card, views

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shipped(real_assets):
    from app.runtime import load_runtime

    return load_runtime(real_assets, warm_up=False)


def test_every_run_and_example_loads(shipped, real_assets):
    manifest = json.loads((real_assets / "runs.json").read_text())
    assert shipped.skipped == []
    assert set(shipped.runs) >= {r["name"] for r in manifest["runs"]}
    assert shipped.default_run is not None, "the default checkpoint has no cached test scores"
    assert shipped.examples


def test_fairness_views_on_every_run(shipped):
    attr = shipped.predictor.attribute if shipped.predictor.attribute != "all" else "race"
    for run in shipped.runs.values():
        out = cb.fairness(shipped, run.name, attr, 0.5)
        assert out["n"] == run.scores.n and 0 <= out["auc"] <= 1
    rows, _ = views.comparison(list(shipped.runs.values()), attr)
    assert rows
    cb.fairness_select(shipped, shipped.default_run, attr, "DPD")


def test_examples_predict_and_explain(shipped):
    for ex in shipped.examples[:3]:
        result, gallery, state = cb.explain(shipped, str(ex.file), ex.note)
        assert 0 <= result["probability"] <= 1
        assert len(gallery) == 1  # one sheet: the sum and every expert
        assert gallery[0][1].count("Expert ") == shipped.predictor.n_experts
        figs = cb.experts_view(state, cb.expert_choices(shipped))
        assert figs[0].layout.height


def test_model_card_renders(shipped):
    text = card.model_card(shipped)
    assert shipped.model_name in text and "Test metrics" in text
    assert "No assets/REPORT.md" not in card.report_markdown(shipped)
