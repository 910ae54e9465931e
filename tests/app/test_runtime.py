"""app.runtime: what the app loads once from the test assets."""

from __future__ import annotations

import json

from tests.app.oracle import DEFAULT


def test_runtime_loads_every_run(runtime, assets_dir):
    manifest = json.loads((assets_dir / "runs.json").read_text())
    assert set(runtime.runs) == {r["name"] for r in manifest["runs"]}
    assert runtime.default_run == DEFAULT
    assert runtime.skipped == []
    assert len(runtime.examples) == 3
