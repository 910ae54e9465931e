"""Predictor and upload decoding: formats, hostile files, notes, routing and attributions."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fairmoe.inference import Predictor


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _scan() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(20, 230, (664, 512), dtype=np.uint8)


def test_predict_contract(predictor: Predictor) -> None:
    r = predictor.predict(_png(_scan()), "Moderate open-angle glaucoma, CDR 0.7, IOP 24 mmHg.")
    assert 0.0 <= r["probability"] <= 1.0
    assert r["decision"] in ("glaucoma", "no glaucoma") and r["threshold"] == 0.5
    assert len(r["experts"]) == 10 and predictor.grid == 4
    cap = predictor.model.token_moe_img.capacity(17)
    for e in r["experts"]:
        assert 0 <= e["kept_patches"] <= cap
        assert np.array(e["kept"]).shape == (4, 4)
        assert not (np.array(e["kept"]) & np.array(e["capacity_dropped"])).any()
    kept_any = np.max([np.array(e["kept"]) for e in r["experts"]], axis=0)
    assert np.array_equal(np.array(r["dropped_patches"]), 1 - kept_any)
    assert len(r["feature_gates"]["image"]) == 3
    assert sum(r["feature_gates"]["image"]) == pytest.approx(1.0, abs=1e-5)
    assert r["note"]["tokens"] and r["note"]["similarity_to_scan"] is not None


def test_calibration_keeps_the_boundary(predictor: Predictor) -> None:
    r = predictor.predict(_scan())
    c0, c1 = r["raw_cosines"]
    assert (r["probability"] >= 0.5) == (c1 >= c0)
    assert r["probability"] == pytest.approx(1 / (1 + np.exp(-(c1 - c0) / 0.05)), rel=1e-6)


def test_library_never_imports_the_ui_stack() -> None:
    code = (
        "import sys, fairmoe.inference, fairmoe.explain, fairmoe.training, fairmoe.metrics;"
        "bad = [m for m in ('gradio', 'plotly') if m in sys.modules]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_borderline_probability_says_which_side_of_the_operating_point():
    from fairmoe.wording import uncertainty as _uncertainty

    below = _uncertainty(0.4996, 0.5)
    assert "below the 50.0% operating point" in below and "'no glaucoma'" in below
    above = _uncertainty(0.5, 0.5)
    assert "at or above" in above and "'glaucoma'" in above
    assert "Inconclusive" not in _uncertainty(0.9, 0.5)
