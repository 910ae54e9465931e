"""scripts/fair_test.py end to end on a few cases: data, control, test runs, evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import fair_test  # noqa: E402


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fair_test")
    assert fair_test.main(["--profile", "smoke", "--out", str(out), "--jobs", "1"]) == 0
    return out


def test_every_stage_leaves_its_files(plan: Path) -> None:
    for key in ("stamp", "stamp-free", "test-stamp", "test-stamp-free"):
        assert (plan / "data" / key / "SYNTHETIC.md").is_file()
    text = (plan / "data" / "test-stamp" / "SYNTHETIC.md").read_text()
    assert "--scenario stamp" in text and "role primary" in text
    control = json.loads((plan / "control.json").read_text())
    assert control["lr"] == 1e-3 and control["epochs"] == 2
    done = [json.loads(x)["name"] for x in (plan / "runs_done.jsonl").read_text().splitlines()]
    # 2 control runs, then 4 arms x 2 seeds and the 2 other ways to feed the fairness terms
    assert len(done) == len(set(done)) == 2 + 4 * 2 + 2


def test_results_hold_every_arm_comparison_and_baseline(plan: Path) -> None:
    res = json.loads((plan / "results.json").read_text())
    s = res["scenarios"]["stamp"]
    assert s["test_draw"]["n"] == 120
    assert set(s["comparisons"]) == {"fairclip", "fairmoe", "nofol", "fairmoe_notes",
                                     "fairmoe_inbatch"}  # fmt: skip
    for comp in s["comparisons"].values():
        for key in ("worst_group_auc", "tpr_gap", "stamp_reliance"):
            lo, hi = comp[key]["ci"]
            assert lo <= comp[key]["diff"] <= hi
    assert s["comparisons"]["fairmoe"]["tpr_gap"]["seeds"] == 2
    assert s["comparisons"]["fairmoe_notes"]["tpr_gap"]["seeds"] == 1  # paired with CLIP seed 0
    assert set(s["baselines"]) == {
        "threshold_optimizer_eo",
        "threshold_optimizer_tpr",
        "per_group_thresholds",
    }
    assert s["verdict"]["verdict"] in ("positive", "negative", "inconclusive")
    pc = s["positive_control"]
    assert pc["stamp_reliance"] == pytest.approx(
        pc["white_auc_with_stamp"] - pc["white_auc_without_stamp"]
    )
    arms = sorted(r["arm"] for r in res["runs"].values())
    tested = ["clip", "fairclip", "fairmoe", "nofol"]
    assert arms == sorted(["control", "oracle", "fairmoe_notes", "fairmoe_inbatch"] + tested * 2)
    md = (plan / "RESULTS.md").read_text()
    assert "### Verdict" in md and "Fair-MoE without FOL" in md and "Positive control" in md


def test_a_second_run_trains_and_scores_nothing_again(plan: Path, capsys) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (plan / "scores").iterdir()}
    assert fair_test.main(["--profile", "smoke", "--out", str(plan), "--jobs", "1"]) == 0
    assert "0 of 10 runs to train" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (plan / "scores").iterdir()} == before


def test_shipping_lists_every_run_under_its_scenario(plan: Path, tmp_path: Path) -> None:
    import ship_fair_test

    from fairmoe.data.synthetic import scenario_record
    from fairmoe.runs_file import read_runs
    from fairmoe.scores import read_scores

    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "runs.json").write_text(json.dumps({"runs": []}))
    (assets / "REPORT.md").write_text("# Report\n\nEarlier sections.\n")
    (assets / "MANIFEST.json").write_text(json.dumps({"files": {}}))
    argv = [str(plan), "--out", str(assets), "--image-size", "64"]
    assert ship_fair_test.main(argv) == 0
    runs = read_runs(assets / "runs.json")
    assert runs.to_json()["scenarios"] == scenario_record()
    by_data: dict[str, list] = {}
    for r in runs.runs:
        by_data.setdefault(r.data, []).append(r)
        ss = read_scores(assets / r.scores)
        assert ss.n == 120 and r.test is not None
        assert r.test.auc == pytest.approx(ss.fairness("race", ci="none").auc)
    assert sorted(r.arm for r in by_data["stamp-control"]) == ["control", "oracle"]
    assert len(by_data["stamp"]) == 10 and all(r.role == "fair_test" for r in runs.runs)
    report = (assets / "REPORT.md").read_text()
    assert report.startswith("# Report") and report.count("<!-- fair-test:begin -->") == 1
    manifest = json.loads((assets / "MANIFEST.json").read_text())["files"]
    assert "fair_test/results.json" in manifest and all(r.scores in manifest for r in runs.runs)
    # shipping again replaces the section and the runs rather than adding to them
    assert ship_fair_test.main(argv) == 0
    assert len(read_runs(assets / "runs.json").runs) == len(runs.runs)
    assert (assets / "REPORT.md").read_text().count("<!-- fair-test:begin -->") == 1
