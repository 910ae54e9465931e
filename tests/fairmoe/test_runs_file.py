"""fairmoe.runs_file: the shipped runs.json reads, writes back byte for byte, and bad files are
refused with a message naming the file and the entry at fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairmoe.runs_file import (
    AttributeSummary,
    RoutingHealth,
    RunEntry,
    RunsFile,
    RunsFileError,
    RunSummary,
    read_runs,
    write_runs,
)
from fairmoe.schema import ATTRIBUTE_NAMES

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SHIPPED = ASSETS / "runs.json"


@pytest.fixture()
def shipped() -> dict:
    if not SHIPPED.is_file():
        pytest.skip("the repo's assets/runs.json does not exist")
    return json.loads(SHIPPED.read_text())


def test_the_shipped_file_reads_typed(shipped: dict) -> None:
    rf = read_runs(SHIPPED)
    assert rf.default == shipped["default"] and rf.pretrained == shipped["pretrained"]
    assert rf.names == [r["name"] for r in shipped["runs"]]
    assert (ASSETS / rf.default).is_file()
    assert rf.profile["epochs"] == shipped["profile"]["epochs"]
    for run, raw in zip(rf.runs, shipped["runs"], strict=True):
        assert isinstance(run, RunEntry) and run.name == raw["name"]
        assert (ASSETS / run.scores).is_file(), run.scores
        assert run.auc_ci is None or (ASSETS / run.auc_ci).is_file(), run.auc_ci
        assert isinstance(run.test, RunSummary) and run.test.auc == raw["test"]["auc"]
        assert set(run.test.attributes) == set(ATTRIBUTE_NAMES)
        race = run.test.attributes["race"]
        assert isinstance(race, AttributeSummary)
        assert race.es_auc == raw["test"]["attributes"]["race"]["es_auc"]
        assert dict(race.group_n) == raw["test"]["attributes"]["race"]["group_n"]
        assert all(isinstance(h, RoutingHealth) for h in run.health.values())
        assert not run.extra and not run.test.extra
    assert rf.run(shipped["runs"][1]["name"]) is rf.runs[1]
    with pytest.raises(KeyError, match="no run 'nope'"):
        rf.run("nope")


def test_the_shipped_file_writes_back_byte_for_byte(shipped: dict, tmp_path: Path) -> None:
    rf = read_runs(SHIPPED)
    assert rf.to_json() == shipped
    write_runs(tmp_path / "runs.json", rf)
    assert (tmp_path / "runs.json").read_text() == SHIPPED.read_text()
    assert read_runs(tmp_path / "runs.json") == rf


def test_read_only_values(shipped: dict) -> None:
    run = read_runs(SHIPPED).runs[0]
    with pytest.raises(AttributeError):
        run.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        run.test.attributes["race"].group_auc["Asian"] = 1.0  # type: ignore[index,union-attr]


def test_a_minimal_file_takes_the_defaults_and_keeps_unknown_keys() -> None:
    entry = {"name": "a", "method": "clip", "attribute": "race", "seed": None,
             "fairness_scale": 1, "config": "tiny", "device": "cpu", "scores": "scores/a.csv",
             "test": {"auc": 0.7, "es_auc": 0.6}, "new_key": [1, {"b": 2}]}  # fmt: skip
    rf = RunsFile.from_json({"runs": [entry], "later": True})
    run = rf.runs[0]
    assert (run.tag, run.data, run.role, run.auc_ci, run.epochs) == ("", "main", "", None, None)
    assert run.fairness_scale == 1.0 and isinstance(run.fairness_scale, float)
    assert run.test == RunSummary(auc=0.7, extra={"es_auc": 0.6})
    assert run.extra["new_key"] == (1, {"b": 2}) and rf.extra == {"later": True}
    assert rf.default is None and rf.profile == {}
    back = rf.to_json()
    assert back["later"] is True and back["runs"][0]["new_key"] == [1, {"b": 2}]
    assert RunsFile.from_json(back) == rf


def _damaged(shipped: dict, tmp_path: Path, damage) -> Path:
    damage(shipped)
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(shipped))
    return path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d["runs"][3].pop("scores"), r"runs\[3\] \(NAME3\): missing key 'scores'"),
        (
            lambda d: d["runs"][3].update(fairness_scale="1.0"),
            r"runs\[3\] \(NAME3\)\.fairness_scale: expected a number, not a string \(\"1\.0\"\)",
        ),
        (
            lambda d: d["runs"][3].update(seed=True),
            r"runs\[3\] \(NAME3\)\.seed: expected a whole number, not true/false",
        ),
        (
            lambda d: d["runs"][0]["test"]["attributes"]["race"].update(dpd=[0.1]),
            r"runs\[0\] \(NAME0\)\.test\.attributes\.race\.dpd: expected a number, not an array",
        ),
        (lambda d: d["runs"].__setitem__(2, "x"), r"runs\[2\]: expected a JSON object, not a str"),
        (lambda d: d.update(runs={}), r"runs: expected an array, not an object"),
        (
            lambda d: d["runs"][1].update(name=d["runs"][0]["name"]),
            r"runs\[1\]: name 'NAME0' also names runs\[0\]",
        ),
    ],
)
def test_a_damaged_file_names_the_file_and_the_entry(shipped, tmp_path, damage, message) -> None:
    names = {f"NAME{i}": r["name"] for i, r in enumerate(shipped["runs"][:4])}
    for k, v in names.items():
        message = message.replace(k, v)
    path = _damaged(shipped, tmp_path, damage)
    with pytest.raises(RunsFileError, match=f"^{path}: {message}"):
        read_runs(path)


def test_not_an_object_or_not_json(tmp_path: Path) -> None:
    path = tmp_path / "runs.json"
    path.write_text("[1, 2]")
    with pytest.raises(RunsFileError, match=f"^{path}: expected a JSON object, not an array$"):
        read_runs(path)
    path.write_text("{")
    with pytest.raises(RunsFileError, match=f"^{path}: cannot read the run list"):
        read_runs(path)
    with pytest.raises(RunsFileError, match="cannot read the run list"):
        read_runs(tmp_path / "missing.json")
    assert issubclass(RunsFileError, ValueError)
