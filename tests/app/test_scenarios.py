"""The fair test's scenarios in the Fairness tab: the Scenario menu, the model menu it limits, the
comparison on a scenario's test draw with its baselines and verdict, checked on a fixture assets
folder (the test assets' runs plus tiny scenario score CSVs, runs.json with ``scenarios``, and
``fair_test/results.json``) loaded by the real runtime."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import gradio as gr
import httpx
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app import views
from app.callbacks import fairness_tab as cb
from app.manifest import ManifestCheck
from app.runinfo import RunInfo
from app.runtime import load_runtime
from app.scenarios import (
    FAIR_TEST_RESULTS,
    MAIN,
    baselines_markdown,
    load_fair_test,
    scenario_choices,
)
from fairmoe.data.synthetic import SCENARIOS, scenario_record
from fairmoe.fairtest.verdict import CRITERIA
from fairmoe.schema import ATTRIBUTE_NAMES
from fairmoe.scores import ScoreSet, write_scores
from tests.app.conftest import free_port
from tests.app.oracle import DEFAULT, message, read_scores

N = 240  # cases per scenario test draw: 80 per race group, both classes in each
ARMS = {  # arm -> (method, fairness_scale, tag suffix)
    "clip": ("clip", 1.0, ""),
    "fairclip": ("fairclip", 1.0, ""),
    "fairmoe": ("fairmoe", 1.0, ""),
    "nofol": ("fairmoe", 0.0, "-nofol"),
}
EO = {"tpr_gap": 0.10, "fpr_gap": 0.05, "deodds": 0.12, "dpd": 0.08}
EO_SEEDS = [{"tpr_gap": v, "deodds": 0.12, "dpd": 0.08} for v in (0.08, 0.10, 0.12)]


def _scores(name: str, seed: int, skill: float) -> ScoreSet:
    """A run's scores on a scenario draw: the White group ranked better than the others."""
    rng = np.random.default_rng(seed)
    i = np.arange(N)
    race, y = i % 3, (i // 3) % 2
    edge = np.where(race == 2, skill, skill / 3)
    s = np.clip(0.5 + (y - 0.5) * edge + rng.normal(0, 0.15, N), 0.001, 0.999)
    attrs = {a: np.zeros(N, dtype=int) for a in ATTRIBUTE_NAMES}
    attrs |= {"race": race, "gender": (i // 6) % 2}
    return ScoreSet(name, [f"c{k}" for k in i], y, s, attrs)


def _run(name: str, method: str, scale: float, seed: int, tag: str, data: str) -> dict:
    return {"name": name, "method": method, "attribute": "race", "seed": seed,
            "fairness_scale": scale, "tag": tag, "data": data, "config": "tiny",
            "role": "fair_test", "device": "cpu", "scores": f"scores/{name}.scores.csv"}  # fmt: skip


def _scenario_runs() -> list[dict]:
    runs = [
        _run("clip-race-tiny-control-stamp-s0", "clip", 1.0, 0, "control-stamp", "stamp-control"),
        _run(
            "clip-race-tiny-control-stamp-free-s0",
            "clip",
            1.0,
            0,
            "control-stamp-free",
            "stamp-control-free",
        ),  # fmt: skip
    ]
    for scenario, seeds in (("stamp", (0, 1, 2)), ("confound", (0,))):
        for seed in seeds:
            for arm, (method, scale, suffix) in ARMS.items():
                name = f"{arm}-race-tiny-{scenario}-s{seed}"
                runs.append(_run(name, method, scale, seed, scenario + suffix, scenario))
    for v in ("notes", "inbatch"):
        runs.append(
            _run(f"fairmoe-race-tiny-stamp-{v}-s0", "fairmoe", 1.0, 0, f"stamp-{v}", "stamp")
        )
    # an older data variant: no scenario, so it stays under the main data set
    return runs + [_run("clip-race-tiny-shortcut-s0", "clip", 1.0, 0, "shortcut", "shortcut")]


@pytest.fixture(scope="module")
def folder(assets_dir: Path, tmp_path_factory) -> Path:
    """The test assets' runs plus the scenario runs, scenarios in reverse role order."""
    out = tmp_path_factory.mktemp("scenario-assets")
    shutil.copytree(assets_dir / "scores", out / "scores")
    (out / "model").symlink_to(assets_dir / "model")
    index = json.loads((assets_dir / "runs.json").read_text())
    extra = _scenario_runs()
    for k, r in enumerate(extra):
        write_scores(
            out / r["scores"], _scores(r["name"], k, 0.9 if "fairmoe" in r["name"] else 0.6)
        )
    index["runs"] += extra
    index["scenarios"] = dict(reversed(scenario_record().items()))
    (out / "runs.json").write_text(json.dumps(index))
    results = {
        "stamp": {
            "baselines": {
                "threshold_optimizer_eo": {**EO, "per_seed": EO_SEEDS},
                "per_group_thresholds": {"error": "cannot fit on validation: one class"},
            },
            "verdict": {"verdict": "positive", "positive_on": ["tpr_gap"], "criteria": {}},
        },
        "confound": {"verdict": {"verdict": "negative", "positive_on": [], "criteria": {}}},
    }
    (out / "fair_test").mkdir()
    (out / FAIR_TEST_RESULTS).write_text(json.dumps({"scenarios": results, "runs": {}}))
    return out


@pytest.fixture(scope="module")
def srt(folder: Path, assets_dir: Path):
    return load_runtime(folder, assets_dir / "model" / f"{DEFAULT}.json", warm_up=False)


def test_scenario_menu_lists_scenarios_with_runs_by_role(srt, runtime):
    choices = scenario_choices(list(srt.runs.values()), srt.scenarios)
    assert srt.skipped == []
    # acquisition has no runs here; the file lists the scenarios in reverse role order
    assert [v for _, v in choices] == [MAIN, "stamp-control", "stamp", "confound"]
    assert choices[0][0] == "Main data set"
    assert choices[2][0] == "stamp — primary: a shortcut in one group"
    assert choices[1][0].startswith("stamp-control — positive control")
    # a runs.json without scenarios (the test assets): only the main data set, as before
    assert runtime.scenarios == {} and runtime.fair_test == {}
    assert scenario_choices(list(runtime.runs.values()), runtime.scenarios) == [
        ("Main data set", MAIN)
    ]
    labels = views.menu_labels(list(runtime.runs.values()))
    assert cb.model_choices(runtime) == [(labels[n], n) for n in runtime.runs]


@pytest.mark.parametrize(
    ("scenario", "first"),
    [
        (MAIN, DEFAULT),
        ("stamp", "clip-race-tiny-stamp-s0"),
        ("stamp-control", "clip-race-tiny-control-stamp-s0"),
        ("confound", "clip-race-tiny-confound-s0"),
    ],
)
def test_model_menu_holds_the_scenarios_runs(srt, runtime, scenario, first):
    menu, note = cb.fairness_scenario(srt, scenario)
    names = [v for _, v in menu["choices"]]
    labels = [lab for lab, _ in menu["choices"]]
    assert menu["value"] == first and len(set(labels)) == len(labels)
    if scenario == MAIN:  # the main data's runs and the older variant, as today
        assert names == [*runtime.runs, "clip-race-tiny-shortcut-s0"]
        assert "Main data set" in note
        return
    want = [r["name"] for r in _scenario_runs() if r["data"].removesuffix("-free") == scenario]
    assert names == want
    assert SCENARIOS[scenario].cause in note
    assert not any(f"· {scenario} ·" in lab for lab in labels)  # the tag says the scenario again
    if scenario == "stamp":
        assert any("fairness x0 · without FOL · seed 1" in lab for lab in labels)
    if scenario == "stamp-control":
        assert [lab.split(" · ")[-2] for lab in labels] == ["stamped data", "stamp-free twin"]


@pytest.mark.parametrize(
    ("tag", "scenario", "words"),
    [
        ("stamp", "stamp", ""),
        ("stamp-nofol", "stamp", "without FOL"),
        ("stamp-inbatch", "stamp", "in-batch groups"),
        ("control-stamp-free", "stamp-control", "stamp-free twin"),
        ("control-stamp-lr0.0004", "stamp-control", "stamped data, lr 0.0004"),
        ("shortcut", None, "shortcut-only data"),  # an older variant reads as before
        ("x0.25", None, "x0.25"),
    ],
)
def test_scenario_tags_read_in_words(srt, tag, scenario, words):
    run = RunInfo("r", "fairmoe", "race", 0, 1.0, "tiny", "cpu", srt.run(DEFAULT).scores)
    assert replace(run, tag=tag, scenario=scenario).tag_label == words


def test_unknown_scenario_is_a_user_error(srt):
    with pytest.raises(gr.Error) as exc:
        cb.fairness_scenario(srt, "nope")
    assert "unknown scenario 'nope'" in message(exc) and "stamp-control" in message(exc)


def test_comparison_pools_the_scenarios_seeds(srt, runtime, folder):
    runs = list(srt.runs.values())
    rows, table = views.comparison(runs, "race", "stamp")
    fams = {r["family"]: r for r in rows}
    assert set(fams) == {
        "CLIP [tiny]",
        "FairCLIP (race) [tiny]",
        "Fair-MoE (race) [tiny]",
        "Fair-MoE (race) [tiny] x0, without FOL",
        "Fair-MoE (race) [tiny], group batches read the notes",
        "Fair-MoE (race) [tiny], in-batch groups",
    }
    aucs = [roc_auc_score(*read_scores(folder / f"scores/clip-race-tiny-stamp-s{s}.scores.csv")[:2])
            for s in (0, 1, 2)]  # fmt: skip
    assert fams["CLIP [tiny]"]["seeds"] == 3
    assert fams["CLIP [tiny]"]["AUC"]["mean"] == pytest.approx(np.mean(aucs))
    assert fams["CLIP [tiny]"]["AUC"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    assert "Scenario *stamp*: its own test draw (240 cases)" in table
    # the main data's comparison is today's: no scenario run joins it
    assert (
        views.comparison(runs, "race")[1]
        == views.comparison(list(runtime.runs.values()), "race")[1]
    )


def test_fairness_select_adds_the_baselines_and_the_verdict(srt):
    k = cb.MAX_GROUPS
    out = cb.fairness_select(srt, "clip-race-tiny-stamp-s0", "race", "DPD", None, "stamp")
    fig, table, tradeoff = out[k], out[k + 1], out[k + 2]
    assert fig.layout.title.text.startswith("Scenario stamp (its test draw)")
    std = np.std([s["tpr_gap"] for s in EO_SEEDS], ddof=1)
    row = f"| ThresholdOptimizer, equalized odds | 0.100 ± {std:.3f} | 0.120 ± 0.000 | 0.080 ± 0.000 |"
    assert row in table
    assert "| Per-group thresholds (equal sensitivity) | cannot fit on validation" in table
    assert "**Pre-registered verdict: positive**" in table and CRITERIA["tpr_gap"] in table
    # the trade-off sweep stays on the main data
    main = cb.fairness_select(srt, DEFAULT, "race", "DPD")
    assert tradeoff.to_json() == main[k + 2].to_json()
    assert "Post-processing" not in main[k + 1] and "verdict" not in main[k + 1]
    confound = cb.fairness_select(
        srt, "clip-race-tiny-confound-s0", "race", "DPD", None, "confound"
    )
    assert "Pre-registered verdict: negative" in confound[k + 1]
    assert "Post-processing" not in confound[k + 1]  # results.json gives it no baselines
    control = cb.fairness_select(
        srt, "clip-race-tiny-control-stamp-s0", "race", "DPD", None, "stamp-control"
    )
    assert "verdict" not in control[k + 1]  # not in results.json: nothing about it


def test_fair_test_results_absent_or_not_trusted(tmp_path):
    skipped: list[str] = []
    assert load_fair_test(tmp_path, ManifestCheck(present=False), skipped) == {} and not skipped
    assert baselines_markdown(None) == baselines_markdown({}) == ""
    (tmp_path / "fair_test").mkdir()
    (tmp_path / FAIR_TEST_RESULTS).write_text("{not json")
    assert load_fair_test(tmp_path, ManifestCheck(present=False), skipped) == {}
    assert "cannot read" in skipped[-1] and "results.json" in skipped[-1]
    (tmp_path / FAIR_TEST_RESULTS).write_text(json.dumps({"scenarios": {"stamp": {}}}))
    assert load_fair_test(tmp_path, ManifestCheck(present=True), skipped) == {}
    assert "not listed in MANIFEST.json" in skipped[-1]


@pytest.mark.slow
def test_scenario_runs_through_the_server(srt):
    """The served page's Scenario menu and its events, /models and /fairness on a scenario's
    run (the menu events are private: gradio_client cannot call them)."""
    from gradio_client import Client

    from app.ui import build_demo, launch_kwargs

    demo = build_demo(srt)
    demo.launch(**launch_kwargs(srt), server_name="127.0.0.1", server_port=free_port(),
                prevent_thread_lock=True, quiet=True)  # fmt: skip
    try:
        config = httpx.get(demo.local_url.rstrip("/") + "/config", timeout=30).json()
        menu = next(c["props"] for c in config["components"]
                    if c.get("props", {}).get("elem_id") == "fair-scenario")  # fmt: skip
        assert menu["visible"] is not False and menu["value"] == MAIN
        assert [c[1] for c in menu["choices"]] == [MAIN, "stamp-control", "stamp", "confound"]
        ids = {c.get("props", {}).get("elem_id"): c["id"] for c in config["components"]}
        deps = config["dependencies"]
        picks = [d for d in deps if [ids["fair-scenario"], "change"] in d["targets"]]
        assert [d["outputs"] for d in picks] == [[ids["fair-model"], ids["fair-scenario-note"]]]
        redraw = [d for d in deps if [ids["fair-model"], "change"] in d["targets"]]
        assert any(ids["fair-scenario"] in d["inputs"] for d in redraw)
        client = Client(demo.local_url, verbose=False, analytics_enabled=False)
        runs = {r["name"]: r for r in client.predict(api_name="/models")}
        assert runs["fairmoe-race-tiny-stamp-s2"]["scenario"] == "stamp"
        assert runs["clip-race-tiny-control-stamp-free-s0"]["scenario"] == "stamp-control"
        assert runs["clip-race-tiny-shortcut-s0"]["scenario"] is None
        name = "nofol-race-tiny-stamp-s1"
        out = client.predict(name, "race", 0.5, api_name="/fairness")
        assert out == json.loads(json.dumps(cb.fairness(srt, name, "race", 0.5)))
        assert out["n"] == N
    finally:
        demo.close()
