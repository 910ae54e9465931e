"""fairmoe.ood: the assessability check fitted on a small synthetic set, the goals in test size.

The model is the untrained tiny Fair-MoE of ``conftest.predictor``; the detector is fitted on the
training split (reference) and the validation split (threshold), and measured on the test split
(false alarms) and on a negative set built from its scans and the images packages ship.
``benchmarks/bench_ood.py`` gives the full figures on a trained model.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from fairmoe.checkpoint import CheckpointError
from fairmoe.data.fairvlmed import normalize_scan, preprocess_scan
from fairmoe.inference import NOT_ASSESSABLE, Predictor
from fairmoe.model import create_model, get_config
from fairmoe.ood import AssessabilityDetector, DetectorError, detector_path, fit_detector
from fairmoe.ood.__main__ import main as ood_main
from fairmoe.ood.features import layer_features
from fairmoe.ood.fit import split_scans
from fairmoe.ood.negatives import CATEGORIES, build_negatives
from fairmoe.ood.orientation import GRID, OrientationCheck, feature_rows, orientation_features

N = 200  # synthetic cases: 140 training, 20 validation, 40 test
UPSIDE_DOWN = ("rotate_180", "vertical_flip")  # see test_upside_down_negatives_are_detected


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fairmoe.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("ood") / "data", n=N, seed=3, workers=1)


@pytest.fixture(scope="module")
def detector(predictor: Predictor, data: Path) -> AssessabilityDetector:
    return fit_detector(predictor.model, data)


@pytest.fixture(scope="module")
def test_scans(data: Path) -> list[np.ndarray]:
    return list(split_scans(data, "test"))


def _flagged(det: AssessabilityDetector, model, images, colour=None) -> np.ndarray:
    return np.array([not a.assessable for a in det.assess(model, images, colour=colour)])


def test_layer_walk_matches_the_model(predictor: Predictor, test_scans) -> None:
    model = predictor.model
    px = torch.stack([preprocess_scan(s, predictor.image_size) for s in test_scans[:4]])
    feats = layer_features(model, px)
    with torch.inference_mode():
        h = model.image_trunk(normalize_scan(px))
        emb = model.encode_image(normalize_scan(px), normalize=False)
    assert set(feats) == {"block1", "trunk", "embedding"}  # tiny: 2 blocks
    np.testing.assert_allclose(feats["embedding"], emb.double().numpy(), rtol=1e-5, atol=1e-6)
    trunk = torch.cat([h[:, 1:].mean(1), h[:, 1:].std(1)], -1).double().numpy()
    np.testing.assert_allclose(feats["trunk"], trunk, rtol=1e-5, atol=1e-6)


def test_fitted_on_training_and_validation_only(detector, data: Path) -> None:
    n_train = len(list((data / "Training").glob("*.npz")))
    n_val = len(list((data / "Validation").glob("*.npz")))
    assert detector.info["n_reference"] == min(n_train, 2000)
    assert detector.info["n_calibration"] == n_val
    assert detector.info["calibration_flagged"] <= 0.1


def test_few_false_alarms_on_held_out_test_scans(predictor, detector, test_scans) -> None:
    """Goal <= 5% (benchmark); 40 scans here, so at most 4 (10%) of them."""
    model = predictor.model
    assert _flagged(detector, model, test_scans).mean() <= 0.1
    # both eyes are in the data: a left-right mirrored scan is in-distribution
    assert _flagged(detector, model, [s[:, ::-1] for s in test_scans]).mean() <= 0.1


@pytest.fixture(scope="module")
def negatives(test_scans):
    return build_negatives(test_scans, per_category=6, photo_crops=1, seed=0)


@pytest.mark.parametrize("category", [c for c in CATEGORIES if c not in UPSIDE_DOWN])
def test_each_negative_category_is_detected(predictor, detector, negatives, category) -> None:
    """Goal >= 95% of the negatives; here at least 5 of each category's 6 (or all the package
    images of a category)."""
    idx = [i for i, c in enumerate(negatives.categories) if c == category]
    assert idx, f"no negatives of category {category}"
    images = [negatives.images[i] for i in idx]
    flagged = _flagged(detector, predictor.model, images, [negatives.colour[i] for i in idx])
    assert flagged.mean() >= 0.8, (category, flagged.mean())


def test_reasons_name_the_failed_check(predictor, detector, test_scans) -> None:
    scan = test_scans[0]
    blank, dark = np.full_like(scan, 128), (scan * 0.1).astype(np.uint8)
    rot = np.ascontiguousarray(np.rot90(scan))
    found = detector.assess(
        predictor.model, [blank, dark, rot, scan], colour=[False, False, False, True]
    )
    assert found[0].failed_checks[0] == "blank" and "blank" in found[0].reasons[0]
    assert "exposure" in found[1].failed_checks and "too dark" in found[1].summary
    assert "shape" in found[2].failed_checks
    assert found[3].failed_checks == ("colour",)
    assert found[3].summary.startswith("Not assessable by this model: This is a colour image")
    d = found[0].to_dict()
    json.dumps(d, allow_nan=False)
    assert d["assessable"] is False and d["checked"] is True


def test_save_load_round_trip(predictor, detector, test_scans, tmp_path: Path) -> None:
    path = detector.save(tmp_path / "m.ood")
    assert path.name == "m.ood.json" and (tmp_path / "m.ood.safetensors").is_file()
    back = AssessabilityDetector.load(path, predictor.model)
    images = test_scans[:3] + [np.full_like(test_scans[0], 40)]
    a, b = detector.assess(predictor.model, images), back.assess(predictor.model, images)
    assert [x.reasons for x in a] == [x.reasons for x in b]
    assert [x.novelty for x in a] == pytest.approx([x.novelty for x in b], abs=1e-4)  # float32
    assert back.threshold == detector.threshold and back.quality == detector.quality
    assert back.orientation.threshold == detector.orientation.threshold
    assert [x.statistics["orientation"] for x in a] == pytest.approx(
        [x.statistics["orientation"] for x in b], abs=1e-3
    )


def test_tampered_or_foreign_files_are_refused(predictor, detector, tmp_path: Path) -> None:
    path = detector.save(tmp_path / "m.ood")
    doc = json.loads(path.read_text())
    doc["threshold"] *= 10  # a laxer check
    path.write_text(json.dumps(doc))
    with pytest.raises(DetectorError, match="modified"):
        AssessabilityDetector.load(path)
    path = detector.save(tmp_path / "m.ood")
    tensors = tmp_path / "m.ood.safetensors"
    raw = bytearray(tensors.read_bytes())
    raw[-5] ^= 0xFF
    tensors.write_bytes(bytes(raw))
    with pytest.raises(DetectorError, match="sha256"):
        AssessabilityDetector.load(path)
    path = detector.save(tmp_path / "m.ood")
    torch.manual_seed(1)
    other = create_model(
        get_config("tiny", **{"vision.pool_type": "avg"}), method="fairmoe", n_groups=3
    )
    with pytest.raises(DetectorError, match="another model"):
        AssessabilityDetector.load(path, other)
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(DetectorError, match="not a"):
        AssessabilityDetector.load(tmp_path / "junk.json")


@pytest.fixture(scope="module")
def checked(predictor: Predictor, detector, tmp_path_factory) -> Predictor:
    """The test predictor's checkpoint copied with its detector beside it, loaded again."""
    src = Path(predictor.meta.path)
    dst = tmp_path_factory.mktemp("checked")
    for f in [src.name, *predictor.meta.files]:
        shutil.copy(src.parent / f, dst / f)
    detector.save(detector_path(dst / src.name))
    return Predictor(dst / src.name)


def _png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def test_predictor_answers_with_the_assessment(checked, predictor, data, test_scans) -> None:
    assert checked.detector is not None
    flagged = [not a.assessable for a in checked.detector.assess(checked.model, test_scans)]
    scan = sorted((data / "Test").glob("*.npz"))[flagged.index(False)]  # split_scans' order
    colour = np.stack([test_scans[1]] * 3, -1).astype(np.int16)
    colour[..., 0] = np.clip(colour[..., 0] + 60, 0, 255)
    uploads = [scan, _png(np.full((664, 512), 90, np.uint8)), _png(colour.astype(np.uint8))]
    together = checked.predict_batch(uploads)
    ok, blank, tinted = together
    assert ok["assessable"]["checked"] and ok["assessable"]["assessable"]
    assert not any(w.startswith("Not assessable") for w in ok["warnings"])
    for r, check in ((blank, "blank"), (tinted, "colour")):
        assert r["assessable"]["assessable"] is False and check in r["assessable"]["failed_checks"]
        assert r["warnings"][0].startswith("Not assessable by this model: ")
        assert r["uncertainty"] == NOT_ASSESSABLE
        assert 0 <= r["probability"] <= 1  # still reported, marked unreliable
    alone = [checked.predict(u) for u in uploads]
    for a, b in zip(alone, together, strict=True):
        assert a["assessable"]["failed_checks"] == b["assessable"]["failed_checks"]
        assert a["assessable"]["novelty"] == pytest.approx(b["assessable"]["novelty"], abs=1e-6)
        assert a["warnings"] == b["warnings"]
    # the statistics computed in prepare() (the caller's thread) are the detector's own
    own = checked.detector.assess(checked.model, [checked.prepare(scan).scan.image])[0]
    assert ok["assessable"]["statistics"] == own.statistics
    assert ok["assessable"]["failed_checks"] == list(own.failed_checks)
    unchecked = predictor.predict(scan)["assessable"]  # no detector beside that checkpoint
    assert unchecked["checked"] is False and unchecked["assessable"] is True


def test_predictor_refuses_a_foreign_detector(checked, tmp_path: Path) -> None:
    src = Path(checked.meta.path)
    for f in src.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    doc = json.loads(detector_path(tmp_path / src.name).read_text())
    doc["fingerprint"] = "0" * 64
    doc.pop("sha256")
    from fairmoe.ood.detector import _doc_digest

    doc["sha256"] = _doc_digest(doc)  # a consistent file of another model
    detector_path(tmp_path / src.name).write_text(json.dumps(doc))
    # a CheckpointError: app.runtime turns it into a startup message, not a traceback
    with pytest.raises(CheckpointError, match="another model"):
        Predictor(tmp_path / src.name)


def test_cli_fits_and_writes_beside_the_checkpoint(checked, data, tmp_path, capsys) -> None:
    src = Path(checked.meta.path)
    ckpt = tmp_path / src.name
    for f in [src.name, *checked.meta.files]:
        shutil.copy(src.parent / f, tmp_path / f)
    argv = ["--checkpoint", str(ckpt), "--data", str(data), "--reference-limit", "40"]
    assert ood_main(argv) == 0
    n_val = len(list((data / "Validation").glob("*.npz")))
    assert f"fitted on 40 training + {n_val} validation scans" in capsys.readouterr().out
    det = AssessabilityDetector.load(detector_path(ckpt), checked.model)
    assert det.info["n_reference"] == 40
    assert ood_main(["--checkpoint", str(ckpt), "--data", str(tmp_path / "none")]) == 2
    assert "error:" in capsys.readouterr().err


def test_orientation_features_ignore_left_right(test_scans) -> None:
    """Both eyes are in the data: mirroring a scan must not change what the check reads."""
    for scan in test_scans[:5]:
        a = orientation_features(scan)
        b = orientation_features(np.ascontiguousarray(scan[:, ::-1]))
        assert a is not None and a.shape == (GRID[0] * GRID[1],)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert orientation_features(np.full((664, 512), 3, np.uint8)) is None  # no field of view


def test_orientation_check_tells_upside_down_from_upright(detector, test_scans) -> None:
    """Trained on the 140 training scans against their vertical flips; held-out test scans
    upright score lower than upside down (rotated or flipped) in almost every pair."""
    check = detector.orientation
    assert check is not None and detector.info["calibration_orientation_flagged"] <= 0.1
    up = check.scores(feature_rows(test_scans))
    flipped = check.scores(feature_rows(test_scans, flip=True))
    rotated = check.scores(feature_rows([np.ascontiguousarray(s[::-1, ::-1]) for s in test_scans]))
    for down in (flipped, rotated):
        y = np.r_[np.zeros(len(up)), np.ones(len(down))]
        assert roc_auc_score(y, np.r_[up, down]) >= 0.9
    assert check.score(np.zeros((664, 512), np.uint8)) == 0.0  # nothing to read: not flagged


def test_upside_down_negatives_are_detected(
    predictor, detector, negatives, data, test_scans
) -> None:
    """The orientation check of the fixture's detector has its threshold from 20 validation
    scans (at a 1.5% rate: about their maximum), too few to test a detection rate; here the
    check is refitted on the same 140 training scans with a 5% rate, the largest these 20 can
    set. At least 4 of each category's 6 upside-down negatives, at most 10% of the test scans
    flagged (benchmarks/bench_ood.py with 2,000 reference scans, at 1%: rotated 90%, flipped
    65%; the grid turned with the field of view needs more than 140 scans to reach that)."""
    up = feature_rows(list(split_scans(data, "training")))
    down = feature_rows(list(split_scans(data, "training")), flip=True)
    check = OrientationCheck.fit(
        up, down, feature_rows(list(split_scans(data, "validation"))), flag_rate=0.05
    )
    assert (check.scores(feature_rows(test_scans)) > check.threshold).mean() <= 0.1
    cats = np.array(negatives.categories)
    flagged = check.scores(feature_rows(negatives.images)) > check.threshold
    for c in UPSIDE_DOWN:
        assert flagged[cats == c].sum() >= 4, (c, flagged[cats == c].mean())
    # the detector itself names the check when it fires on the most upside-down looking scan
    scores = detector.orientation.scores(feature_rows(negatives.images))
    i = int(np.argmax(np.where(np.isin(cats, UPSIDE_DOWN), scores, -np.inf)))
    assert scores[i] > detector.orientation.threshold
    found = detector.assess_one(predictor.model, negatives.images[i])
    assert "orientation" in found.failed_checks and "upside down" in found.summary
