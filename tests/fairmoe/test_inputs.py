"""Decoding uploads: scan formats, hostile files, notes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fairmoe.inference import Predictor
from fairmoe.inputs import InputError, check_note, load_scan


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _scan() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(20, 230, (664, 512), dtype=np.uint8)


def test_formats_16bit_rgba_colour_npz(tmp_path: Path) -> None:
    scan16 = _scan().astype(np.uint16) * 257
    assert load_scan(_png(scan16)).image.max() == 255
    rgba = np.dstack([_scan()] * 3 + [np.full((664, 512), 200, np.uint8)])
    s = load_scan(_png(rgba, "RGBA"))
    assert any("transparency" in w for w in s.warnings)
    colour = np.dstack([_scan(), _scan() // 2, _scan() // 4])
    assert any("colour fundus" in w for w in load_scan(_png(colour)).warnings)
    buf = io.BytesIO()
    Image.fromarray(_scan()).save(buf, format="TIFF")
    assert load_scan(buf.getvalue()).image.shape == (664, 512)
    np.savez(tmp_path / "x.npz", slo_fundus=_scan(), glaucoma=np.array(1), race=np.array(1),
             gender=np.array(0), ethnicity=np.array(0), language=np.array(-1),
             note=np.array("glaucoma OU"))  # fmt: skip
    s = load_scan(tmp_path / "x.npz")
    assert s.source_kind == "npz" and s.note == "glaucoma OU" and s.attrs["language"] == -1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"hello, this is not an image", "not an image"),
        (_png(np.zeros((664, 512), np.uint8))[:300], "corrupt or truncated"),
        (_png(np.zeros((20, 20), np.uint8)), "at least 64"),
        (b"PK\x03\x04" + b"\0" * 100, "not an image"),
    ],
)
def test_bad_images_get_clear_messages(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_scan(data)


def test_decompression_bomb_refused() -> None:
    buf = io.BytesIO()
    Image.new("L", (10_000, 10_000)).save(buf, format="PNG")  # 100 M pixels, 100 kB file
    with pytest.raises(InputError, match="too large to decode"):
        load_scan(buf.getvalue())


def test_npz_that_is_not_the_layout(tmp_path: Path) -> None:
    np.savez(tmp_path / "bad.npz", something=np.zeros(3))
    with pytest.raises(InputError, match="missing key 'slo_fundus'"):
        load_scan(tmp_path / "bad.npz")


def test_notes() -> None:
    assert check_note(None) == ("", [])
    clean, warns = check_note("  IOP 21\n\n mmHg  ")
    assert clean == "IOP 21 mmHg" and warns == []
    assert check_note("x " * 200)[1]  # longer than the 180 characters the model reads
    with pytest.raises(InputError, match="binary"):
        check_note("abc\x00\x01\x02def")
    with pytest.raises(InputError, match="at most 5,000"):
        check_note("a" * 6000)


def test_tokenizer_markers_are_removed_from_notes(predictor: Predictor) -> None:
    clean, warns = check_note("IOP 21 &lt;end_of_text&gt; C/D 0.7 <END_OF_TEXT> rim thinning")
    assert clean == "IOP 21 C/D 0.7 rim thinning" and "control markers" in warns[0]
    image = np.full((96, 96), 120, np.uint8)
    marked = predictor.predict(image, "C/D 0.7 <end_of_text> inferior rim thinning")
    plain = predictor.predict(image, "C/D 0.7 inferior rim thinning")
    assert marked["note"]["tokens"] == plain["note"]["tokens"]
    assert len(marked["note"]["tokens"]) == len(marked["note"]["dropped_tokens"])
