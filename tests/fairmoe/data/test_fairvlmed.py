"""The FairVLMed reader on a hand-written folder: real layout, key variants, malformed input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from fairmoe.data.fairvlmed import (
    DataError,
    FairVLMedDataset,
    find_split_dir,
    normalize_scan,
    preprocess_scan,
    read_npz,
    scan_to_uint8,
    truncate_note,
)

COLUMNS = [
    "filename", "age", "gender", "race", "ethnicity", "language", "maritalstatus", "note",
    "gpt4_summary", "glaucoma", "use",
]  # fmt: skip


def _write(root: Path, folder: str, i: int, *, keys: dict | None = None, **over) -> dict:
    rng = np.random.default_rng(i)
    rec = {
        "slo_fundus": rng.integers(0, 255, (664, 512), dtype=np.uint8),
        "age": np.array(60.5),
        "gender": np.array(i % 2),
        "race": np.array(i % 3),
        "ethnicity": np.array(0),
        "language": np.array(0),
        "maritalstatus": np.array(1),
        "glaucoma": np.array(i % 2),
        "note": np.array(f"note {i} with cup to disc ratio 0.{i % 9}"),
        "note_extra": np.array("x"),
    }
    rec.update(over)
    for old, new in (keys or {}).items():
        rec[new] = rec.pop(old)
    (root / folder).mkdir(parents=True, exist_ok=True)
    np.savez_compressed(root / folder / f"data_{i:05d}.npz", **rec)
    return rec


def _summary(root: Path, rows: list[tuple[int, str, str]]) -> None:
    with (root / "data_summary.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, use, summary in rows:
            w.writerow([f"data_{i:05d}.npz", "60.5", "female", "asian", "non-hispanic", "english",
                        "single", "n", summary, "no", use])  # fmt: skip


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    rows = []
    for i in range(1, 7):
        _write(tmp_path, "Training", i)
        rows.append((i, "training", "word " * 60))
    for i in range(7, 10):
        _write(tmp_path, "Validation", i)
        rows.append((i, "validation", "glaucoma suspect"))
    _write(tmp_path, "Validation", 10, language=np.array(-1))  # unknown: dropped in validation
    rows.append((10, "validation", "unknown language"))
    for i in range(11, 14):
        _write(tmp_path, "Testing", i, keys={"gender": "male", "ethnicity": "hispanic"})
        rows.append((i, "test", "test summary"))
    _summary(tmp_path, rows)
    return tmp_path


def test_truncate_note_cuts_at_word_boundary() -> None:
    text = "alpha beta " * 30
    out = truncate_note(text)
    assert len(out) <= 180 and not out.endswith(" ") and text.startswith(out)
    assert truncate_note("short note") == "short note"
    assert len(truncate_note("x" * 400)) == 180


def test_reads_splits_and_key_variants(layout: Path) -> None:
    tr = FairVLMedDataset(layout, "training", image_size=32)
    assert len(tr) == 6 and tr.dropped_unknown == 0
    item = tr[0]
    assert item["pixels"].shape == (32, 32) and item["pixels"].dtype == torch.uint8
    assert item["attrs"].tolist() == [1, 1, 0, 0] and item["label"] == 1
    assert len(tr.records[0].text) <= 180
    va = FairVLMedDataset(layout, "validation", image_size=32)
    assert len(va) == 3 and va.dropped_unknown == 1
    assert find_split_dir(layout, "test").name == "Testing"
    te = FairVLMedDataset(layout, "test", image_size=32, tokenizer=lambda t: torch.zeros(1, 77))
    assert len(te) == 3 and te[0]["tokens"].shape == (77,)
    assert te.summary()["race"] == {"Asian": 1, "Black": 1, "White": 1}


def test_preprocessing_matches_clip_resize_and_crop() -> None:
    img = np.zeros((664, 512), np.uint8)
    img[:, :256] = 200
    px = preprocess_scan(img, 224)
    assert px.shape == (224, 224)
    assert px[:, :100].float().mean() > 190 and px[:, 130:].float().mean() < 5
    x = normalize_scan(px.unsqueeze(0))
    assert x.shape == (1, 3, 224, 224)
    assert torch.allclose(x[0, 0, 0, 0], torch.tensor((200 / 255 - 0.48145466) / 0.26862954))


def test_scan_dtypes() -> None:
    assert scan_to_uint8(np.full((20, 20), 1.0, np.float32)).max() == 255
    assert scan_to_uint8(np.full((20, 20), 65535, np.uint16)).max() == 255
    assert scan_to_uint8(np.zeros((20, 20, 3), np.uint8)).shape == (20, 20)
    with pytest.raises(DataError, match="2-D"):
        scan_to_uint8(np.zeros((4, 4, 4, 4)))
    with pytest.raises(DataError, match="NaN"):
        scan_to_uint8(np.full((20, 20), np.nan))


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"race": np.array(7)}, "out of range"),
        ({"glaucoma": np.array(3)}, "expected 0 or 1"),
        ({"race": np.array("white")}, "numeric scalar"),
        ({"slo_fundus": np.zeros((3,))}, "2-D"),
    ],
)
def test_malformed_values_name_the_file(tmp_path: Path, over: dict, message: str) -> None:
    _write(tmp_path, "Training", 1, **over)
    with pytest.raises(DataError, match=message) as e:
        read_npz(tmp_path / "Training" / "data_00001.npz")
    assert "data_00001.npz" in str(e.value)


def test_missing_key_unreadable_file_empty_split(tmp_path: Path) -> None:
    rec = _write(tmp_path, "Training", 1)
    del rec["race"]
    np.savez(tmp_path / "Training" / "data_00002.npz", **rec)
    with pytest.raises(DataError, match="missing key 'race'"):
        read_npz(tmp_path / "Training" / "data_00002.npz")
    (tmp_path / "Training" / "data_00003.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="data_00003.npz: not an npz archive"):
        read_npz(tmp_path / "Training" / "data_00003.npz")
    (tmp_path / "Validation").mkdir()
    _summary(tmp_path, [(1, "training", "s")])
    with pytest.raises(DataError, match="empty split"):
        FairVLMedDataset(tmp_path, "validation")
    with pytest.raises(DataError, match="no Test or Testing folder"):
        FairVLMedDataset(tmp_path, "test")


def test_missing_summary_and_row(tmp_path: Path) -> None:
    _write(tmp_path, "Training", 1)
    with pytest.raises(DataError, match="data_summary.csv: missing"):
        FairVLMedDataset(tmp_path, "training")
    _summary(tmp_path, [(5, "training", "s")])
    with pytest.raises(DataError, match="no row for data_00001.npz"):
        FairVLMedDataset(tmp_path, "training")
    (tmp_path / "data_summary.csv").write_text("file,age\n")
    with pytest.raises(DataError, match="missing the 'filename' column"):
        FairVLMedDataset(tmp_path, "training")


@pytest.mark.parametrize("name", ["gpt-4_summarized_notes.csv", "gpt4_summarized_notes.csv"])
def test_summaries_from_fairclips_separate_file(tmp_path: Path, name: str) -> None:
    """A release whose data_summary.csv has no summary column: FairCLIP's notes file, by position."""
    for i in (1, 2):
        _write(tmp_path, "Training", i)
    (tmp_path / "data_summary.csv").write_text(
        "filename,use\ndata_00001.npz,training\ndata_00002.npz,training\n"
    )
    long = "  Mild glaucoma OD, " + "cup to disc ratio 0.7 with inferior notch " * 6 + " "
    with (tmp_path / name).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["File Name", "Original Note", "Summarized Note"])  # header names unused
        w.writerow(["data_00001.npz ", "the original note", long])
        w.writerow(["data_00002.npz", "another note", "no glaucoma"])
    ds = FairVLMedDataset(tmp_path, "training", image_size=32, note_cut="fairclip")
    texts = {r.id: r.text for r in ds.records}
    # FairCLIP: strip, cut at 180, then back to the last space
    expected = long.strip()[:180]
    assert texts["data_00001"] == expected[: expected.rfind(" ")]
    assert texts["data_00002"] == "no glaucoma"
    clean = FairVLMedDataset(tmp_path, "training", image_size=32)  # default cut folds spaces
    assert clean.records[0].text == truncate_note(long) and len(clean.records[0].text) <= 180


def test_fairclip_cut_matches_its_quirks() -> None:
    assert truncate_note("  a  b  ", cut="fairclip") == "a  b"  # inner spaces kept
    assert truncate_note("x" * 200, cut="fairclip") == "x" * 179  # no space: rfind -1 drops one
    assert truncate_note("x" * 200) == "x" * 180
