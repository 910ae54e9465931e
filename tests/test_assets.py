"""The shipped assets: manifest, default checkpoint, example scores, report numbers."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from fairmoe import metrics
from fairmoe.checkpoint import read_metadata
from fairmoe.schema import ATTRIBUTE_NAMES

ASSETS = Path(__file__).resolve().parents[1] / "assets"
RUNS = json.loads((ASSETS / "runs.json").read_text())


def test_every_shipped_file_matches_the_manifest() -> None:
    manifest = json.loads((ASSETS / "MANIFEST.json").read_text())["files"]
    on_disk = {
        p.relative_to(ASSETS).as_posix()
        for p in ASSETS.rglob("*")
        if p.is_file() and p.name != "MANIFEST.json"
    }
    assert on_disk == set(manifest), "files and manifest differ"
    for rel, entry in manifest.items():
        data = (ASSETS / rel).read_bytes()
        assert len(data) == entry["size"], rel
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], rel
        assert entry["made_by"] and entry["licence"] and len(entry["commit"]) == 40


def test_weights_stay_under_budget() -> None:
    total = sum(p.stat().st_size for p in ASSETS.rglob("*.safetensors"))
    assert total < 64_000_000
    assert all(p.stat().st_size < 15 * 2**20 for p in ASSETS.rglob("*.safetensors"))


@pytest.fixture(scope="module")
def predictor():
    from fairmoe.inference import Predictor

    return Predictor(ASSETS / RUNS["default"])


def test_default_checkpoint_reproduces_example_scores(predictor) -> None:
    meta = read_metadata(ASSETS / RUNS["default"])
    assert meta.method == "fairmoe" and meta.device
    examples = json.loads((ASSETS / "examples" / "examples.json").read_text())
    assert 6 <= len(examples) <= 8
    labels = {e["label"] for e in examples}
    assert labels == {0, 1}
    for ex in examples:
        from_png = predictor.predict(ASSETS / ex["file"], ex["note"])["probability"]
        from_npz = predictor.predict(ASSETS / ex["npz"])["probability"]
        assert from_png == pytest.approx(ex["score"], abs=1e-4), ex["id"]
        assert from_npz == pytest.approx(ex["score"], abs=1e-4), ex["id"]


def _read(path: Path):
    rows = list(csv.DictReader(path.open()))
    y = np.array([int(r["label"]) for r in rows])
    s = np.array([float(r["score"]) for r in rows])
    return y, s, {a: np.array([int(r[a]) for r in rows]) for a in ATTRIBUTE_NAMES}


@pytest.mark.parametrize("run", RUNS["runs"], ids=[r["name"] for r in RUNS["runs"]])
def test_report_numbers_recompute_from_scores(run: dict) -> None:
    report = metrics.evaluate(*_read(ASSETS / run["scores"]))
    assert report["auc"] == pytest.approx(run["test"]["auc"], abs=1e-12)
    text = (ASSETS / "REPORT.md").read_text()
    for a in ATTRIBUTE_NAMES:
        mine, shipped = report["attributes"][a], run["test"]["attributes"][a]
        for key in ("es_auc", "dpd", "deodds"):
            if shipped[key] is None:
                assert mine[key] is None
            else:
                assert mine[key] == pytest.approx(shipped[key], abs=1e-12)
    if run["role"] == "app":  # its row in the report carries these numbers, rounded
        assert f"| {run['name']} | {report['auc']:.3f} |" in text
