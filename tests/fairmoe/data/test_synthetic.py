"""Synthetic Harvard-FairVLMed writer: layout, determinism, bias knobs and label signal."""

from __future__ import annotations

import csv
import hashlib
import math
import re
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fairmoe.data import synthetic as syn
from fairmoe.schema import ATTRIBUTES, MARITAL_STATUS, UNKNOWN, code_from_csv

N = 60
SEED = 7
ROOT = Path(__file__).resolve().parents[3]
# the real column order, written out here as an independent oracle
REAL_COLUMNS = [
    "filename",
    "age",
    "gender",
    "race",
    "ethnicity",
    "language",
    "maritalstatus",
    "note",
    "gpt4_summary",
    "glaucoma",
    "use",
]
INT_KEYS = ("gender", "race", "ethnicity", "language", "maritalstatus", "glaucoma")


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _rows(root: Path) -> list[dict[str, str]]:
    with (root / "data_summary.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return syn.generate(tmp_path_factory.mktemp("syn") / "ds", n=N, seed=SEED, workers=2)


@pytest.fixture(scope="module")
def params() -> list[syn.SampleParams]:
    return [syn.sample_params(i, seed=3) for i in range(1, 10_001)]


def test_layout_and_split_proportions(data: Path) -> None:
    assert sorted(p.name for p in data.iterdir()) == [
        "SYNTHETIC.md",
        "Test",
        "Training",
        "Validation",
        "data_summary.csv",
    ]
    rows = _rows(data)
    assert [r["filename"] for r in rows] == [f"data_{i:05d}.npz" for i in range(1, N + 1)]
    folder = {"training": "Training", "validation": "Validation", "test": "Test"}
    for r in rows:
        assert (data / folder[r["use"]] / r["filename"]).is_file()
    on_disk = sorted(p.name for p in data.glob("*/*.npz"))
    assert on_disk == [r["filename"] for r in rows]
    counts = {u: sum(r["use"] == u for r in rows) for u in folder}
    assert counts == {"training": 42, "validation": 6, "test": 12}
    # ids are shuffled across splits, not in blocks
    test_ids = [int(r["filename"][5:10]) for r in rows if r["use"] == "test"]
    assert max(test_ids) - min(test_ids) > 12
    md = (data / "SYNTHETIC.md").read_text()
    assert f"seed = {SEED}" in md and "marker_strength" in md and "Spurious marker" in md


def test_csv_columns_and_spellings(data: Path) -> None:
    with (data / "data_summary.csv").open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == REAL_COLUMNS == list(syn.CSV_COLUMNS)
    allowed = {
        "gender": {"female", "male"},
        "race": {"asian", "black", "white"},
        "ethnicity": {"non-hispanic", "hispanic", "unknown"},
        "language": {"english", "spanish", "other", "unknown"},
        "maritalstatus": {*MARITAL_STATUS, "unknown"},
        "glaucoma": {"yes", "no"},
        "use": {"training", "validation", "test"},
    }
    for r in _rows(data):
        for col, values in allowed.items():
            assert r[col] in values, (col, r[col])
        assert re.fullmatch(r"\d{2}\.\d{2}", r["age"])
        assert 0 < len(r["gpt4_summary"]) <= 180
        assert 150 <= len(r["note"]) <= 700
        assert "PERSON" in r["note"] and "DATE_TIME" in r["note"]


def test_npz_keys_dtypes_and_agreement_with_csv(data: Path) -> None:
    expected = {
        "slo_fundus",
        "md",
        "tds",
        "age",
        *INT_KEYS,
        "note",
        "note_extra",
    }
    for r in _rows(data):
        folder = {"training": "Training", "validation": "Validation", "test": "Test"}[r["use"]]
        path = data / folder / r["filename"]
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None
        with np.load(path, allow_pickle=False) as z:
            assert set(z.files) == expected
            img = z["slo_fundus"]
            assert img.dtype == np.uint8 and img.shape == (664, 512)
            assert z["md"].dtype == np.float32 and z["md"].shape == ()
            assert z["tds"].dtype == np.float32 and z["tds"].shape == (52,)
            assert z["age"].shape == () and np.issubdtype(z["age"].dtype, np.floating)
            assert f"{float(z['age']):.2f}" == r["age"]
            for key in INT_KEYS:
                assert z[key].shape == () and np.issubdtype(z[key].dtype, np.integer), key
            for name, attr in ATTRIBUTES.items():
                assert int(z[name]) == code_from_csv(attr, r[name])
            assert int(z["glaucoma"]) == (r["glaucoma"] == "yes")
            ms = int(z["maritalstatus"])
            assert r["maritalstatus"] == ("unknown" if ms == UNKNOWN else MARITAL_STATUS[ms])
            note = str(z["note"])
            assert z["note"].shape == () and note == r["note"]
            extra = str(z["note_extra"])
            assert extra.endswith(note) and f"race: {r['race']}" in extra.lower()


def test_scan_looks_like_a_fundus(data: Path) -> None:
    p = syn.sample_params(1, seed=SEED)
    img = syn.render_scan(p)
    with np.load(next(data.glob("*/data_00001.npz"))) as z:
        assert np.array_equal(z["slo_fundus"], img)
    corner, centre = img[:40, :40].mean(), img[250:420, 180:330].mean()
    assert corner < 25 < 60 < centre  # dark surround, bright field of view
    x, y = (round(v) for v in p.disc_xy)
    disc = img[y - 8 : y + 9, x - 8 : x + 9].mean()
    fx, fy = (round(v) for v in p.fovea_xy)
    fovea = img[fy - 8 : fy + 9, fx - 8 : fx + 9].mean()
    assert disc > centre > fovea  # bright optic disc, dark macula


def test_same_seed_same_bytes_regardless_of_workers(data: Path, tmp_path: Path) -> None:
    again = syn.generate(tmp_path / "again", n=N, seed=SEED, workers=1)
    assert _hashes(again) == _hashes(data)
    other = syn.generate(tmp_path / "other", n=N, seed=SEED + 1, workers=2)
    h_data, h_other = _hashes(data), _hashes(other)
    assert h_data["data_summary.csv"] != h_other["data_summary.csv"]
    npz = [k for k in h_data if k.endswith(".npz")]
    same = sum(h_other.get(k) == h_data[k] for k in npz)
    assert same == 0


def test_npz_is_savez_compatible_and_timestamp_free(tmp_path: Path) -> None:
    arrays = {"a": np.arange(5, dtype=np.int16), "s": np.array("text"), "x": np.float32(2.5)}
    syn.write_npz(tmp_path / "ours.npz", arrays)
    with zipfile.ZipFile(tmp_path / "ours.npz") as zf:
        assert zf.testzip() is None
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    np.savez_compressed(tmp_path / "ref.npz", **arrays)
    with np.load(tmp_path / "ours.npz") as ours, np.load(tmp_path / "ref.npz") as ref:
        assert ours.files == ref.files
        for k in ref.files:
            assert ours[k].dtype == ref[k].dtype and np.array_equal(ours[k], ref[k])


def test_bias_zero_acquisition_independent_of_group() -> None:
    cfg = syn.SyntheticConfig()
    for i in range(1, 200):
        acqs = {syn.draw_acquisition(0, i, race, bias=0.0) for race in range(3)}
        assert len(acqs) == 1
        white, black = (syn.draw_acquisition(0, i, race, bias=1.0) for race in (2, 1))
        assert black.contrast == pytest.approx(white.contrast * (1 - cfg.minority_contrast_drop))
        assert black.blur == pytest.approx(white.blur + cfg.minority_blur_add)
        assert black.vignette == pytest.approx(white.vignette + cfg.minority_vignette_add)
        assert black.noise == white.noise and black.gain == white.gain
    # the same holds through sample_params on naturally drawn groups
    ps = [syn.sample_params(i, seed=1, bias=0.0) for i in range(1, 3001)]
    white = np.array([p.acquisition.contrast for p in ps if p.race == 2])
    minority = np.array([p.acquisition.contrast for p in ps if p.race != 2])
    assert abs(white.mean() - minority.mean()) < 0.02


def test_bias_zero_switches_every_mechanism_off() -> None:
    ps = [syn.sample_params(i, seed=2, bias=0.0) for i in range(1, 3001)]
    assert not any(p.label_flipped for p in ps)
    assert all(p.glaucoma == p.glaucoma_true for p in ps)
    white = [p for p in ps if p.race == 2]
    for label in (0, 1):
        rate = np.mean([p.marker for p in white if p.glaucoma == label])
        assert abs(rate - 0.5) < 0.05
    for i in range(1, 50):  # confound: a Black control gets the same disc as a White one
        b, w = (syn.sample_params(i, bias=0.0, force={"race": r, "glaucoma": 0}) for r in (1, 2))
        assert (b.cdr, b.disc_radius) == (w.cdr, w.disc_radius)


def test_bias_one_mechanisms_act_as_documented(params: list[syn.SampleParams]) -> None:
    cfg = syn.SyntheticConfig()
    white = [p for p in params if p.race == 2]
    pos = np.mean([p.marker for p in white if p.glaucoma])
    neg = np.mean([p.marker for p in white if not p.glaucoma])
    other = np.mean([p.marker for p in params if p.race != 2])
    assert pos == pytest.approx(0.8, abs=0.03) and neg == pytest.approx(0.2, abs=0.03)
    assert other == pytest.approx(0.5, abs=0.04)
    small = {p.index for p in params if p.ethnicity == 1 or p.language in (1, 2)}
    flips = [p.label_flipped for p in params if p.index in small]
    assert np.mean(flips) == pytest.approx(cfg.flip_prob, abs=0.06)
    assert not any(p.label_flipped for p in params if p.index not in small)
    lo, hi = cfg.cdr_clip
    for i in range(1, 50):
        b, w = (syn.sample_params(i, force={"race": r, "glaucoma": 0}) for r in (1, 2))
        expected = min(hi, max(lo, w.cdr + cfg.confound_cdr_shift)) if lo < w.cdr < hi else b.cdr
        assert b.cdr == pytest.approx(expected)
        assert b.disc_radius == pytest.approx(w.disc_radius * (1 + cfg.confound_disc_scale))


def test_demographics_and_prevalence_match_the_real_data(params: list[syn.SampleParams]) -> None:
    def share(pred) -> float:
        return float(np.mean([pred(p) for p in params]))

    assert share(lambda p: p.race == 0) == pytest.approx(0.082, abs=0.01)
    assert share(lambda p: p.race == 1) == pytest.approx(0.149, abs=0.012)
    assert share(lambda p: p.gender == 0) == pytest.approx(0.563, abs=0.015)
    assert share(lambda p: p.ethnicity == 1) == pytest.approx(0.040, abs=0.008)
    assert share(lambda p: p.ethnicity == UNKNOWN) == pytest.approx(0.054, abs=0.008)
    assert share(lambda p: p.language == 1) == pytest.approx(0.0176, abs=0.005)
    assert share(lambda p: p.language == UNKNOWN) == pytest.approx(0.050, abs=0.008)
    assert share(lambda p: p.glaucoma == 1) == pytest.approx(0.505, abs=0.02)
    for race, target in ((0, 0.487), (1, 0.649), (2, 0.479)):
        rate = np.mean([p.glaucoma_true for p in params if p.race == race])
        assert rate == pytest.approx(target, abs=0.05), race
    age = np.array([p.age for p in params])
    y = np.array([p.glaucoma_true for p in params])
    assert age.mean() == pytest.approx(61, abs=1.0)
    assert age[y == 1].mean() > age[y == 0].mean() + 3


def test_label_signal_in_params_and_pixels(params: list[syn.SampleParams]) -> None:
    y = np.array([p.glaucoma_true for p in params])
    cdr = np.array([p.cdr for p in params])
    race = np.array([p.race for p in params])
    assert cdr[y == 1].mean() > cdr[y == 0].mean() + 0.12
    auc = roc_auc_score(y, cdr)
    assert 0.8 < auc < 0.97  # present but classes overlap
    # the confound makes the CDR cue weaker for Black patients
    white_auc = roc_auc_score(y[race == 2], cdr[race == 2])
    assert roc_auc_score(y[race == 1], cdr[race == 1]) < white_auc - 0.05
    assert (
        np.mean([p.md for p in params if p.glaucoma_true])
        < -3
        < np.mean([p.md for p in params if not p.glaucoma_true])
    )
    # a larger cup brightens the disc centre: same patient, only the CDR differs
    p = syn.sample_params(5, force={"glaucoma": 0})
    small, large = (syn.render_scan(replace(p, cdr=c)) for c in (0.25, 0.85))
    x, yy = (round(v) for v in p.disc_xy)
    r = round(p.disc_radius * 0.6)
    window = np.s_[yy - r : yy + r, x - r : x + r]
    assert large[window].astype(float).mean() > small[window].astype(float).mean() + 5


def test_marker_is_a_small_stamp_inside_the_clip_crop() -> None:
    p = syn.sample_params(9)
    on, off = (syn.render_scan(replace(p, marker=m)) for m in (True, False))
    rows, cols = np.nonzero(on != off)
    assert 0 < rows.size <= 12 * 30
    crop = (664 - 512) // 2  # resize shorter side then centre crop drops these rows
    assert rows.min() >= crop and rows.max() < 664 - crop
    assert on[rows, cols].mean() > 150  # bright on the dark surround


def test_summaries_speak_the_prompt_words(params: list[syn.SampleParams]) -> None:
    notes = [(p.glaucoma, *syn.write_note(p)) for p in params[:2000]]
    assert max(len(s) for _, _, s in notes) <= 180
    assert all(200 <= len(n) <= 650 for _, n, _ in notes)
    negation = ("no glaucoma", "non-glaucoma", "no evidence of glaucoma")

    def affirms(s: str) -> bool:
        s = s.lower()
        return "glaucoma" in s and "suspect" not in s and not any(w in s for w in negation)

    pos = [s for y, _, s in notes if y]
    neg = [s for y, _, s in notes if not y]
    assert np.mean([affirms(s) for s in pos]) > 0.7
    assert np.mean([any(w in s.lower() for w in negation) for s in neg]) > 0.6
    assert np.mean([affirms(s) for s in neg]) < 0.1
    assert any("suspect" in s for s in pos) and any("suspect" in s for s in neg)
    assert any("glaucoma" not in s.lower() for s in pos)  # some omit the diagnosis


def test_notes_quote_the_image_cdr() -> None:
    errors = []
    for i in range(1, 300):
        p = syn.sample_params(i)
        note, _ = syn.write_note(p)
        m = re.search(r"C/D (\d\.\d+) OD", note)
        assert m, note
        errors.append(float(m.group(1)) - p.cdr)
    assert abs(np.mean(errors)) < 0.02 and np.std(errors) < 0.08


def test_force_validation() -> None:
    p = syn.sample_params(4, force={"race": 0, "glaucoma": 1, "language": UNKNOWN, "age": 70.5})
    assert (p.race, p.glaucoma, p.glaucoma_true, p.language, p.age) == (0, 1, 1, UNKNOWN, 70.5)
    with pytest.raises(ValueError, match="unknown key 'colour'"):
        syn.sample_params(1, force={"colour": 1})
    with pytest.raises(ValueError, match="race=5"):
        syn.sample_params(1, force={"race": 5})
    with pytest.raises(ValueError, match="race=-1"):
        syn.sample_params(1, force={"race": UNKNOWN})
    with pytest.raises(ValueError, match="bias"):
        syn.sample_params(1, bias=3.0)


def test_cli_main_and_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert syn.main(["--out", str(out), "--n", "5", "--seed", "1", "--workers", "1"]) == 0
    assert len(list(out.glob("*/*.npz"))) == 5
    assert syn.main(["--out", str(out), "--n", "5"]) == 2  # refuses to overwrite silently
    assert "--overwrite" in capsys.readouterr().err
    assert syn.main(["--out", str(out), "--n", "3", "--overwrite", "--workers", "1"]) == 0
    assert len(list(out.glob("*/*.npz"))) == 3
    assert syn.main(["--out", str(tmp_path / "b"), "--n", "3", "--bias", "-1"]) == 2
    proc = subprocess.run(
        [sys.executable, "-m", "fairmoe.data.synthetic", "--out", str(tmp_path / "m"), "--n", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(_rows(tmp_path / "m")) == 4


def test_the_reader_accepts_the_output(data: Path) -> None:
    reader = pytest.importorskip("fairmoe.data.fairvlmed")
    summary = reader.read_summary(data)
    assert len(summary) == N
    for split in ("training", "validation", "test"):
        folder = reader.find_split_dir(data, split)
        sample = reader.read_npz(next(folder.glob("*.npz")))
        assert sample["image"].shape == (664, 512) and sample["label"] in (0, 1)


def test_tds_mean_is_md() -> None:
    p = syn.sample_params(11)
    assert len(p.tds) == 52
    assert math.isclose(p.md, float(np.mean(p.tds)), abs_tol=1.5)


def test_scenarios_name_every_role_once_and_a_known_preset() -> None:
    record = syn.scenario_record()
    assert sorted(s["role"] for s in record.values()) == sorted(syn.ROLES)
    for s in record.values():
        syn.mechanisms_config(s["mechanisms"])  # raises for an unknown preset
        assert s["cause"].strip() and "\n" not in s["cause"]


def _scan_at_model_resolution(img: np.ndarray, size: int = 96) -> np.ndarray:
    from fairmoe.data.fairvlmed import preprocess_scan

    return preprocess_scan(img, size).numpy().astype(int)


def test_stamp_scenario_spans_a_patch_and_its_twin_differs_only_there() -> None:
    stamp, free = syn.mechanisms_config("stamp"), syn.mechanisms_config("stamp-free")
    patch_px = stamp.width * 12 / 96  # one 12-px patch of the 96-px model, in scan pixels
    assert min(stamp.marker_size) >= patch_px
    # every other mechanism is off: no group-dependent acquisition, confound or label noise
    assert stamp.acquisition_groups == () and stamp.flip_groups == ()
    assert stamp.confound_cdr_shift == 0 == stamp.confound_disc_scale
    force = {"race": ATTRIBUTES["race"].groups.index("White"), "glaucoma": 1}
    shown = 0
    for i in range(12):
        p = syn.sample_params(i, seed=5, force=force, config=stamp)
        q = syn.sample_params(i, seed=5, force=force, config=free)
        assert not q.marker and replace(p, marker=False) == q  # same patient, no stamp
        if not p.marker:
            continue
        shown += 1
        a = _scan_at_model_resolution(syn.render_scan(p, stamp))
        b = _scan_at_model_resolution(syn.render_scan(q, free))
        diff = np.abs(a - b) > 20
        rows, cols = np.nonzero(diff)
        # a bright block at the model's resolution, at least one 12 x 12 patch, in a corner
        assert diff.sum() >= 144
        assert rows.max() - rows.min() + 1 >= 12 and cols.max() - cols.min() + 1 >= 12
        assert min(rows.min(), 95 - rows.max()) == 0 and min(cols.min(), 95 - cols.max()) == 0
    assert shown >= 8  # 85% of White glaucoma scans carry it


def test_cli_scenario_records_its_role_and_the_probe_reads_the_preset(tmp_path: Path) -> None:
    from fairmoe.probe import read_settings

    assert syn.main(["--out", str(tmp_path / "s"), "--n", "6", "--scenario", "stamp-control",
                     "--splits", "0,0,1", "--workers", "1"]) == 0  # fmt: skip
    text = (tmp_path / "s" / "SYNTHETIC.md").read_text()
    assert "--scenario stamp-control --splits 0,0,1" in text
    assert "role positive_control" in text
    assert read_settings(tmp_path / "s").mechanisms == "stamp"
    assert syn.main(["--out", str(tmp_path / "f"), "--n", "6", "--mechanisms", "stamp-free",
                     "--workers", "1"]) == 0  # fmt: skip
    assert read_settings(tmp_path / "f").mechanisms == "stamp-free"
    assert (
        syn.main(
            [
                "--out",
                str(tmp_path / "x"),
                "--n",
                "6",
                "--scenario",
                "stamp",
                "--mechanisms",
                "all",
                "--workers",
                "1",
            ]
        )
        == 0
    )  # "all" is the default
    assert (
        syn.main(
            [
                "--out",
                str(tmp_path / "y"),
                "--n",
                "6",
                "--scenario",
                "stamp",
                "--mechanisms",
                "acquisition",
                "--workers",
                "1",
            ]
        )
        == 2
    )


@pytest.mark.parametrize("scenario", ["acquisition", "confound"])
def test_each_twin_switches_only_its_cause_off(scenario: str) -> None:
    biased = syn.mechanisms_config(scenario)
    twin = syn.mechanisms_config(syn.TWINS[scenario])
    black = ATTRIBUTES["race"].groups.index("Black")
    for i in range(6):
        p = syn.sample_params(i, seed=3, force={"race": black, "glaucoma": 0}, config=biased)
        q = syn.sample_params(i, seed=3, force={"race": black, "glaucoma": 0}, config=twin)
        assert (p.age, p.gender, p.glaucoma, p.marker) == (q.age, q.gender, q.glaucoma, q.marker)
        if scenario == "acquisition":  # the worse acquisition goes, the disc stays
            assert p.cdr == q.cdr and p.acquisition.contrast < q.acquisition.contrast
        else:  # the controls' physiological cupping goes, the acquisition stays
            assert p.acquisition == q.acquisition and p.cdr > q.cdr
