"""Decoding what a user gives the model: scan files (PNG, JPEG, TIFF, FairVLMed .npz) and notes.

Every refusal is an :class:`InputError` whose message says what was wrong and what to do; the limits
below keep a hostile upload (decompression bombs, huge notes, binary junk) from hurting the server.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from fairmoe.data.fairvlmed import DataError, parse_npz, scan_to_uint8
from fairmoe.schema import ATTRIBUTE_NAMES

__all__ = [
    "edited_scan",
    "MAX_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NOTE_CHARS",
    "NOTE_CHARS",
    "InputError",
    "Prepared",
    "ScanInput",
    "check_note",
    "load_scan",
    "quality_warnings",
]

MAX_FILE_BYTES = 50 * 2**20  # larger uploads are refused before decoding
MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard: a real SLO scan has 0.34 M pixels
MAX_NPZ_BYTES = MAX_IMAGE_PIXELS  # unpacked .npz: a uint8 scan at the pixel limit (real: 0.4 MB)
MIN_SIDE = 64  # below this a scan holds no usable optic-disc detail
MAX_NOTE_CHARS = 5_000  # real notes are a few hundred characters; the model reads 180
NOTE_CHARS = 180  # what the text encoder saw in training (truncate_note)
_SPECIAL_TOKENS = re.compile(r"<\s*(start|end)_of_text\s*>", re.IGNORECASE)


class InputError(ValueError):
    """Bad user input; the message says what was wrong and what to do."""


@dataclass
class ScanInput:
    """A decoded scan and, for a FairVLMed .npz, the note, attributes and label it carried."""

    image: np.ndarray  # uint8 (H, W) grayscale
    note: str | None = None
    attrs: dict[str, int] | None = None
    label: int | None = None
    source_kind: str = "image"  # "image" or "npz"
    warnings: list[str] = field(default_factory=list)


def _read_bytes(source: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, "upload"
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path.name}: file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{path.name}: {size / 2**20:.0f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit"
        )
    return path.read_bytes(), path.name


def _load_npz(data: bytes, name: str) -> ScanInput:
    try:
        rec = parse_npz(io.BytesIO(data), with_image=True, name=name, max_bytes=MAX_NPZ_BYTES)
    except DataError as e:
        raise InputError(f"not a usable FairVLMed .npz: {e}") from None
    attrs = {a: int(c) for a, c in zip(ATTRIBUTE_NAMES, rec["attrs"], strict=True)}
    return ScanInput(rec["image"], str(rec["note"]) or None, attrs, int(rec["label"]), "npz")


def _load_image(data: bytes, name: str) -> ScanInput:
    notes: list[str] = []
    try:
        # open() reads only the header, so the size is checked before any pixel is decoded; no
        # process-wide PIL setting is changed (requests are served from several threads).
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError("too many pixels")
        img.load()
    except Image.DecompressionBombError:
        raise InputError(
            f"{name}: the image is too large to decode safely (over {MAX_IMAGE_PIXELS:,} pixels); "
            "upload the scan at its native resolution"
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"{name}: not an image (expected PNG, JPEG, TIFF or a FairVLMed .npz)"
        ) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError(f"{name}: the image file is corrupt or truncated ({e})") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as e:  # PIL parses and rewrites the EXIF block: damage fails in many ways
        raise InputError(
            f"{name}: the image's EXIF metadata is corrupt ({type(e).__name__}: {e}); "
            "re-export the scan without metadata"
        ) from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
        notes.append("The image had transparency; it was flattened onto black.")
    if img.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "P"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
        spread = np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).mean()
        if spread > 4:
            notes.append(
                "This looks like a colour fundus photograph; it was converted to grayscale. The "
                "model was trained on SLO scans, so treat the result with extra caution."
            )
        array = np.asarray(img.convert("L"))
    else:
        # L, I;16, I, F: scan_to_uint8 rescales wide ranges; 1-bit would read as bool
        array = np.asarray(img.convert("L") if img.mode == "1" else img)
    try:
        image = scan_to_uint8(array, name)
    except DataError as e:
        raise InputError(str(e)) from None
    return ScanInput(image, source_kind="image", warnings=notes)


def load_scan(source: str | Path | bytes | Image.Image | np.ndarray) -> ScanInput:
    """Decode an upload: PNG, JPEG, TIFF (8/16-bit, RGBA, colour) or a FairVLMed .npz."""
    if isinstance(source, ScanInput):
        return source
    if isinstance(source, Image.Image):
        buf = io.BytesIO()
        source.save(buf, format="PNG")
        scan = _load_image(buf.getvalue(), "image")
    elif isinstance(source, np.ndarray):
        try:
            scan = ScanInput(scan_to_uint8(source, "image"))
        except DataError as e:
            raise InputError(str(e)) from None
    else:
        data, name = _read_bytes(source)
        if not data:
            raise InputError(f"{name}: the file is empty")
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"{name}: over the {MAX_FILE_BYTES // 2**20} MB limit")
        is_zip = data[:4] == b"PK\x03\x04" and zipfile.is_zipfile(io.BytesIO(data))
        scan = _load_npz(data, name) if is_zip else _load_image(data, name)
    h, w = scan.image.shape
    if min(h, w) < MIN_SIDE:
        raise InputError(f"the scan is {w}x{h} pixels; at least {MIN_SIDE} per side is needed")
    return scan


def check_note(note: str | None) -> tuple[str, list[str]]:
    """Clean a clinical note; refuses binary or huge text with a clear message."""
    if note is None:
        return "", []
    if not isinstance(note, str):
        raise InputError("the note must be text")
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(
            f"the note has {len(note):,} characters; at most {MAX_NOTE_CHARS:,} are accepted "
            f"(the model reads the first {NOTE_CHARS})"
        )
    bad = sum(1 for ch in note if ord(ch) < 32 and ch not in "\n\r\t")
    if "\x00" in note or bad > max(2, len(note) // 50):
        raise InputError("the note contains binary data; paste the clinical note as plain text")
    clean = " ".join(note.split())
    notes = []
    # The tokenizer unescapes HTML twice and then treats these strings as its own markers: an
    # <end_of_text> inside a note would end the text feature there.
    unescaped = html.unescape(html.unescape(clean))
    if _SPECIAL_TOKENS.search(unescaped):
        clean = " ".join(_SPECIAL_TOKENS.sub(" ", unescaped).split())
        notes.append(
            "Removed tokenizer control markers (<start_of_text>, <end_of_text>) from the note."
        )
    if len(clean) > NOTE_CHARS:
        notes.append(
            f"The model reads the first {NOTE_CHARS} characters of the note, as in training."
        )
    return clean, notes


def quality_warnings(image: np.ndarray) -> list[str]:
    out = []
    mean, std = float(image.mean()), float(image.std())
    if mean < 12:
        out.append("The scan is very dark; the optic disc may not be visible.")
    elif mean > 235:
        out.append("The scan is nearly saturated (very bright).")
    if std < 6:
        out.append("The scan has almost no contrast; it may be blank or not a fundus scan.")
    h, w = image.shape
    if max(h, w) / min(h, w) > 2.0:
        out.append("Unusual aspect ratio: the model only sees the centre square of the image.")
    return out


def edited_scan(image: np.ndarray, pixels: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """The uploaded scan (H, W) with an edit of its model input pasted in: ``image`` plus the
    change ``edited - pixels`` (both (S, S): ``pixels`` is ``preprocess_scan(image, S)``),
    resized onto the centre square the model sees.

    The assessability check measures the scan as uploaded (its size and shape, its field of
    view); the scan editor edits the model's input. Adding the change, not the edited pixels
    themselves, keeps what the edit did not touch (the surround, full-resolution detail): an
    unedited scan is the upload itself, an over-exposed edit over-exposes it.
    """
    h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    change = np.asarray(edited, np.float32) - np.asarray(pixels, np.float32)  # (S, S)
    up = np.asarray(
        Image.fromarray(change, mode="F").resize((side, side), Image.Resampling.BILINEAR)
    )
    out = image.astype(np.float32)
    out[top : top + side, left : left + side] += up
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@dataclass
class Prepared:
    """One decoded, checked request, ready for a batched forward pass (see ``predict_prepared``).

    Decoding runs in the caller's thread so that only the model itself is batched.
    """

    scan: ScanInput
    note: str  # cleaned note, "" when there is none
    pixels: torch.Tensor  # uint8 (S, S): what the model sees
    note_warnings: list[str] = field(default_factory=list)
    # the assessability check's input statistics, computed here too (they cost more than the
    # model itself at this resolution, and the batch runs on one thread); None without a detector
    statistics: dict[str, float] | None = None
