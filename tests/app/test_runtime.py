"""app.runtime: what the app loads once from the test assets."""

from __future__ import annotations

import json
import shutil

from app.runtime import load_runtime
from fairmoe.metrics import bootstrap_ci
from fairmoe.schema import ATTRIBUTE_NAMES
from tests.app.oracle import DEFAULT


def test_runtime_loads_every_run(runtime, assets_dir):
    manifest = json.loads((assets_dir / "runs.json").read_text())
    assert set(runtime.runs) == {r["name"] for r in manifest["runs"]}
    assert runtime.default_run == DEFAULT
    assert runtime.skipped == []
    assert len(runtime.examples) == 3


def _no_bootstrap(**job):
    raise AssertionError("a CI was computed instead of read from the assets")


def test_shipped_cis_are_loaded_and_equal_a_fresh_bootstrap(real_assets, monkeypatch):
    rt = load_runtime(real_assets, warm_up=False)
    assert rt.manifest.ok and not [s for s in rt.skipped if "AUC CIs" in s]
    run = rt.runs[rt.default_run]
    fresh = bootstrap_ci(**run.scores.auc_ci_job("race"))
    monkeypatch.setattr("fairmoe.scores.bootstrap_ci", _no_bootstrap)
    assert run.scores.auc_ci("race") == fresh
    for r in rt.runs.values():  # every shipped run and attribute: memoised at start
        assert all(r.scores.auc_ci(a) for a in ATTRIBUTE_NAMES), r.name


def test_a_tampered_ci_file_is_refused(assets_dir, tmp_path, monkeypatch):
    from scripts.build_assets import write_auc_cis, write_manifest

    assets = tmp_path / "assets"
    shutil.copytree(assets_dir, assets)
    index = json.loads((assets / "runs.json").read_text())
    written = write_auc_cis(assets, index["runs"])
    (assets / "runs.json").write_text(json.dumps(index, indent=1))
    write_manifest(assets)
    bad = assets / written[0]
    text = bad.read_text()
    i = text.index('"low": 0.') + len('"low": 0.')  # one digit changed, the size kept
    bad.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :])
    rt = load_runtime(assets, warm_up=False)
    name = index["runs"][0]["name"]
    assert rt.manifest.problems == {written[0]: f"{written[0]} differs from the manifest (sha256)"}
    assert rt.skipped == [
        f"the AUC CIs of run {name} (computed on first use): {written[0]} differs from the "
        "manifest (sha256)"
    ]
    shipped = json.loads(text)["race"]
    assert rt.runs[name].scores.auc_ci("race") == shipped  # computed again, not read
    monkeypatch.setattr("fairmoe.scores.bootstrap_ci", _no_bootstrap)
    for other in index["runs"][1:]:  # the untouched files were read
        assert rt.runs[other["name"]].scores.auc_ci("race"), other["name"]
