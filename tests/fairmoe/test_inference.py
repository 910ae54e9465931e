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
from tests.fairmoe.checked import checked_checkpoint, colour_photo


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


def test_predict_gives_the_experts_exact_influence(predictor: Predictor) -> None:
    scan = _png(_scan())
    r = predictor.predict(scan)
    att = predictor.explain(scan, n_steps=4)
    assert r["influence"]["delta_logit"] == pytest.approx(att["influence"]["delta_logit"], abs=1e-4)
    assert r["influence"]["share"] == pytest.approx(att["influence"]["share"], rel=1e-3)
    assert abs(r["influence"]["delta_logit"]) > 0  # the tiny model's experts do change it


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


# -- one rule for refusals ------------------------------------------------------------------


def test_decision_of_is_the_one_rule_for_refusals() -> None:
    from fairmoe.wording import assessable_cell, decision_cell, decision_of, is_refused

    assert decision_of(0.64, 0.5) == "glaucoma" and decision_of(0.5, 0.5) == "glaucoma"
    assert decision_of(0.4999, 0.5) == "no glaucoma"
    assert decision_of(0.64, 0.5, assessable=False) is None  # a probability is not a decision
    assert decision_cell(None) == "not assessable" and decision_cell("glaucoma") == "glaucoma"
    refused = {"assessable": False, "checked": True}
    assert is_refused(refused) and assessable_cell(refused) == "no"
    assert not is_refused({"assessable": True, "checked": True})
    unchecked = {"assessable": True, "checked": False}  # no fitted check: nothing is refused
    assert not is_refused(unchecked) and assessable_cell(unchecked) == "not checked"


@pytest.fixture(scope="module")
def checked(predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """The test predictor's checkpoint with an assessability check fitted on synthetic scans."""
    checked = Predictor(checked_checkpoint(predictor, tmp_path_factory)[0])
    assert checked.detector is not None
    return checked


@pytest.fixture(scope="module")
def accepted(checked: Predictor, predictor: Predictor, tmp_path_factory) -> Path:
    """A synthetic test scan the check accepts."""
    data = checked_checkpoint(predictor, tmp_path_factory)[1]
    scans = sorted((data / "Test").glob("*.npz"))
    return next(p for p in scans if checked.predict(p)["assessable"]["assessable"])


def test_a_refused_scan_gets_no_decision_and_costs_no_explanation(checked, monkeypatch):
    import fairmoe.explaining as explaining
    from fairmoe.wording import NOT_ASSESSABLE

    photo = colour_photo()
    r = checked.predict(photo, "IOP 25 mmHg")
    assert r["assessable"]["assessable"] is False and r["assessable"]["reasons"]
    assert "colour" in r["assessable"]["failed_checks"]
    assert r["decision"] is None and 0 <= r["probability"] <= 1  # kept, marked unusable
    assert r["uncertainty"] == NOT_ASSESSABLE
    assert r["warnings"][0].startswith("Not assessable by this model: ")

    def costly(*args, **kwargs):
        raise AssertionError("a refused scan must not be explained")

    for name in ("attribute_experts", "attribute_note", "attribute_whole_model", "occlusion_map"):
        monkeypatch.setattr(explaining, name, costly)
    e = checked.explain(photo, "IOP 25 mmHg")
    assert e["attributions"] is None and e["note_attributions"] is None
    assert e["decision"] is None and e["assessable"] == r["assessable"]
    maps = checked.model_maps(photo)
    assert maps["whole_model"] is None and maps["occlusion"] is None
    assert maps["assessable"]["failed_checks"] == r["assessable"]["failed_checks"]


def test_an_assessable_scan_keeps_its_decision_and_explanation(checked, accepted):
    scan = accepted
    r = checked.predict(scan)
    assert r["decision"] == ("glaucoma" if r["probability"] >= 0.5 else "no glaucoma")
    e = checked.explain(scan, "cup to disc ratio 0.7", n_steps=4)
    assert e["decision"] == r["decision"] and len(e["attributions"]["experts"]) == 10
    assert e["note_attributions"] and {"whole_model", "occlusion"} <= set(e["attributions"])
    maps = checked.model_maps(scan, n_steps=4)
    assert maps["assessable"]["assessable"] and maps["occlusion"]["map"]


def test_an_edited_scan_is_checked_like_an_upload(checked, accepted):
    from fairmoe.inference import edited_scan

    scan = accepted
    image = checked.prepare(scan).scan.image
    pixels = checked.scan_pixels(scan)
    assert np.array_equal(edited_scan(image, pixels, pixels), image)  # no edit, no change
    same = checked.explain(scan, None, edited=pixels, n_steps=4, model_maps=False)
    assert same["assessable"]["failed_checks"] == [] and same["decision"] is not None
    assert same["probability"] == pytest.approx(checked.predict(scan)["probability"], abs=1e-6)
    glare = np.clip(pixels.astype(np.float64) * 3, 0, 255).astype(np.uint8)  # over-exposed
    r = checked.explain(scan, None, edited=glare, n_steps=4)
    assert r["assessable"]["assessable"] is False
    assert {"exposure", "field_of_view"} & set(r["assessable"]["failed_checks"])  # input checks
    assert r["decision"] is None and r["attributions"] is None
    # the model saw exactly the edited pixels
    assert r["probability"] == pytest.approx(checked.predict(glare)["probability"], abs=1e-6)
    maps = checked.model_maps(scan, edited=glare)
    assert maps["assessable"]["assessable"] is False and maps["whole_model"] is None
    with pytest.raises(ValueError, match="edited pixels"):
        checked.prepare(scan, edited=glare[:-1])


def test_warm_up_runs_the_attributions_even_when_the_check_refuses_its_noise(checked, monkeypatch):
    import fairmoe.explaining as explaining

    calls = []
    real = explaining.attribute_experts
    monkeypatch.setattr(
        explaining, "attribute_experts", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    checked.warm_up()
    assert calls == [1]
