"""app.ui: the whole demo as built (no server): element ids, endpoints and the queue."""

from __future__ import annotations

import pytest

from app.events import (
    COHORT_QUEUE,
    EXPLAIN_QUEUE,
    PREDICT_CONCURRENCY,
    PREDICT_QUEUE,
)
from app.ui import build_demo
from fairmoe.schema import ATTRIBUTE_NAMES
from tests.app.conftest import PUBLIC_ENDPOINTS

# The browser tests and the CSS select by these: they stay as they are.
ELEM_IDS = [
    "header",
    "case-scan",
    "case-upload-info",
    "case-note",
    *(f"case-{a}" for a in ATTRIBUTE_NAMES),
    "case-analyse",
    "case-result",
    "case-prob",
    "case-preview",
    "case-meaning",
    "case-warnings",
    "case-context",
    "experts-summary",
    "experts-shown",
    "experts-attribution",
    "experts-routing",
    "experts-gates",
    "experts-note",
    "fair-scenario",
    "fair-scenario-note",
    "fair-model",
    "fair-attr",
    "fair-cost",
    "strategy-single",
    "strategy-group",
    "strategy-demographic_parity",
    "strategy-equal_opportunity",
    "strategy-equal_accuracy",
    "fair-strategy",
    "fair-mode",
    "fair-threshold",
    "fair-g0",
    "fair-g1",
    "fair-g2",
    "fair-summary",
    "fair-ci",
    "fair-groups",
    "fair-roc",
    "fair-rates",
    "fair-confusion",
    "fair-compare",
    "fair-compare-table",
    "fair-tradeoff",
    "fair-load",
    "cohort-file",
    "cohort-run",
    "cohort-csv",
    "cohort-threshold",
    "cohort-summary",
    "cohort-ci",
    "model-card",
    "report",
]


@pytest.fixture(scope="module")
def demo(runtime):
    return build_demo(runtime)


@pytest.fixture(scope="module")
def config(demo):
    return demo.get_config_file()


def test_element_ids_stay(config, runtime):
    ids = [c.get("props", {}).get("elem_id") for c in config["components"]]
    ids = [i for i in ids if i]
    examples = [f"example-{i}" for i in range(len(runtime.examples))]
    assert set(ELEM_IDS + examples) <= set(ids)
    assert len(ids) == len(set(ids)), "an element id is used twice"
    # the Cohort tab shows the same fairness panel as the Fairness tab
    for part in ("groups", "roc", "rates", "confusion", "load"):
        assert f"fair-{part}" in ids and f"cohort-{part}" in ids


def test_public_endpoints_and_the_model_slot(demo, config, runtime):
    public = [d["api_name"] for d in config["dependencies"] if d["api_visibility"] == "public"]
    assert sorted(public) == PUBLIC_ENDPOINTS
    fns = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    slots = {f.api_name: (f.concurrency_id, f.concurrency_limit) for f in fns}
    # predictions have their own (batched) slot: they never wait behind explanations or cohorts
    assert slots["predict"] == (PREDICT_QUEUE, PREDICT_CONCURRENCY)
    # explanations: one per explanation process plus one (ServerConfig.explain_concurrency)
    explain = runtime.config.explain_concurrency
    assert slots["explain"] == slots["model_maps"] == (EXPLAIN_QUEUE, explain)
    assert explain == runtime.config.explain_processes + 1 == 2
    assert slots["cohort"] == (COHORT_QUEUE, 1)
