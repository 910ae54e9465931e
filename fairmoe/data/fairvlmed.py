"""Reader of the Harvard-FairVLMed layout: ``data_summary.csv`` + ``{Training,Validation,Test}/*.npz``.

The synthetic data set is written in the same layout and read by this same code, so every test and the
shipped model exercise the path that real data takes.
"""

from __future__ import annotations

import csv
import lzma
import math
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from fairmoe.data.pixels import CLIP_MEAN, CLIP_STD, normalize_scan, preprocess_scan
from fairmoe.schema import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    LABEL,
    SPLITS,
    UNKNOWN,
    attribute,
)

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "DataError",
    "FairVLMedDataset",
    "Record",
    "NoteCut",
    "Split",
    "find_split_dir",
    "normalize_scan",
    "parse_npz",
    "preprocess_scan",
    "read_npz",
    "read_summarized_notes",
    "read_summary",
    "scan_to_uint8",
    "truncate_note",
]

Split = Literal["training", "validation", "test"]
NoteCut = Literal["clean", "fairclip"]
SUMMARY_FILE = "data_summary.csv"
# FairCLIP's loader takes the summaries from a separate CSV (README and script spell it
# differently): file name in column 0, the summary in column 2, by position.
SUMMARIZED_NOTES_FILES = ("gpt-4_summarized_notes.csv", "gpt4_summarized_notes.csv")
SUMMARY_COLUMN = "gpt4_summary"
NOTE_MAX_CHARS = 180  # FairCLIP's truncate_note: the GPT-4 summary is cut to 180 characters


# What a damaged or hostile archive raises from zipfile, its decompressors and numpy's header
# parser (RuntimeError covers encrypted members, NotImplementedError and RecursionError; MemoryError
# a header that declares an absurd shape).
_UNREADABLE = (
    OSError,
    EOFError,
    KeyError,
    IndexError,
    RuntimeError,
    SyntaxError,
    MemoryError,
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    tokenize.TokenError,
)


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Record:
    """One sample's metadata, read without decoding its image."""

    id: str  # file stem, e.g. "data_00042"
    path: Path
    label: int
    attrs: tuple[int, ...]  # codes in ATTRIBUTE_NAMES order, -1 unknown
    text: str  # training text: the summary cut to NOTE_MAX_CHARS at a word boundary
    note: str  # the full clinical note from the npz


def truncate_note(text: str, max_chars: int = NOTE_MAX_CHARS, *, cut: NoteCut = "clean") -> str:
    """Cut ``text`` to ``max_chars`` characters, backing up to the last space.

    ``cut="clean"`` first folds runs of white space into one space and keeps a word longer than
    the limit whole up to it. ``cut="fairclip"`` is FairCLIP's ``truncate_note`` to the letter:
    strip the ends, and when longer than the limit cut there and then at the last space (a text
    without a space within the limit loses its last character, as there).
    """
    if cut == "fairclip":
        text = str(text).strip()
        if len(text) > max_chars:
            text = text[:max_chars]
            text = text[: text.rfind(" ")]
        return text
    text = " ".join(str(text).split())
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    return head[:space] if space > 0 else head


def find_split_dir(root: str | Path, split: Split) -> Path:
    """The folder of ``split`` under ``root`` (``Test`` and ``Testing`` are both accepted)."""
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    for name in SPLITS[split]:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: no {' or '.join(SPLITS[split])} folder for the {split} split")


def read_summary(root: str | Path) -> dict[str, dict[str, str]]:
    """Rows of ``data_summary.csv`` keyed by filename.

    Only ``filename`` is required: labels and attributes come from the npz files. When the
    file has no ``gpt4_summary`` column, the summaries come from FairCLIP's separate
    ``gpt-4_summarized_notes.csv`` (or ``gpt4_...``) if there is one.
    """
    path = Path(root) / SUMMARY_FILE
    if not path.is_file():
        raise DataError(
            f"{path}: missing; a FairVLMed folder holds {SUMMARY_FILE} beside its splits"
        )
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "filename" not in (reader.fieldnames or []):
                raise DataError(f"{path}: missing the 'filename' column")
            has_summary = SUMMARY_COLUMN in (reader.fieldnames or [])
            rows = {row["filename"].strip(): row for row in reader}
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV ({e})") from None
    if not has_summary:
        for name, summary in read_summarized_notes(root).items():
            rows.setdefault(name, {"filename": name})[SUMMARY_COLUMN] = summary
    return rows


def read_summarized_notes(root: str | Path) -> dict[str, str]:
    """FairCLIP's summary file, {file name: summary} by column position (0 and 2); {} if none."""
    for name in SUMMARIZED_NOTES_FILES:
        path = Path(root) / name
        if not path.is_file():
            continue
        try:
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
        except (UnicodeDecodeError, csv.Error) as e:
            raise DataError(f"{path}: not a readable CSV ({e})") from None
        out = {}
        for i, row in enumerate(rows[1:], start=2):  # the first row is the header
            if len(row) < 3:
                raise DataError(
                    f"{path}: row {i} has {len(row)} columns; expected file, note, summary"
                )
            out[row[0].strip()] = row[2].strip()
        return out
    return {}


def _scalar_int(data: np.lib.npyio.NpzFile, key: str, path: Path | str) -> int:
    value = np.asarray(data[key])
    if value.size != 1 or value.dtype.kind not in "iuf":  # not complex, timedelta or bool
        raise DataError(
            f"{path}: key {key!r} must be a numeric scalar, got {value.dtype} {value.shape}"
        )
    number = value.reshape(()).item()
    if not math.isfinite(number):
        raise DataError(f"{path}: key {key!r} is {number}, expected an integer code")
    return int(number)


def _attr_code(data: np.lib.npyio.NpzFile, name: str, path: Path | str) -> int:
    attr = ATTRIBUTES[name]
    for key in attr.npz_keys:
        if key in data.files:
            code = _scalar_int(data, key, path)
            if code != UNKNOWN and not 0 <= code < attr.n_groups:
                raise DataError(
                    f"{path}: {key}={code} is out of range for {name} (0..{attr.n_groups - 1} or -1)"
                )
            return code
    raise DataError(f"{path}: missing key {' or '.join(map(repr, attr.npz_keys))} for {name}")


def scan_to_uint8(array: np.ndarray, source: str = "scan") -> np.ndarray:
    """A 2-D uint8 grayscale image from an SLO array (uint8, uint16 or float in [0,1] or [0,255])."""
    a = np.asarray(array)
    if a.dtype.kind not in "iuf":  # checked first: the channel mean below needs numbers
        raise DataError(f"{source}: image dtype {a.dtype} is not numeric")
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        a = a[..., :3].mean(axis=-1) if a.shape[-1] > 1 else a[..., 0]
    if a.ndim != 2 or min(a.shape) < 8:
        raise DataError(f"{source}: expected a 2-D grayscale image, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise DataError(f"{source}: image holds NaN or infinite values")
    hi = float(a.max()) if a.size else 0.0
    if hi <= 1.0:
        a = a * 255.0
    elif hi > 255.0:  # 16-bit scans: rescale the full range
        a = a * (255.0 / hi)
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


def parse_npz(
    source: Path | BinaryIO,
    *,
    with_image: bool,
    name: str | None = None,
    max_bytes: int | None = None,
) -> dict[str, object]:
    """Validate one sample file, given as a path or an open binary file (``name`` labels messages).

    npz members load lazily, so metadata reads skip the image. Never unpickles. ``max_bytes``
    refuses an archive whose members unpack to more (a decompression-bomb guard for uploads);
    zipfile never unpacks a member past the size the archive declares for it.
    """
    path = name or str(source)  # for messages only
    try:
        with np.load(source, allow_pickle=False) as data:
            unpacked = sum(info.file_size for info in data.zip.infolist()) if max_bytes else 0
            if max_bytes is not None and unpacked > max_bytes:
                raise DataError(
                    f"{path}: the archive unpacks to {unpacked / 2**20:.1f} MB, over the "
                    f"{max_bytes / 2**20:.0f} MB limit for one sample"
                )
            for key in ("slo_fundus", LABEL):
                if key not in data.files:
                    raise DataError(f"{path}: missing key {key!r}")
            label = _scalar_int(data, LABEL, path)
            if label not in (0, 1):
                raise DataError(f"{path}: {LABEL}={label}, expected 0 or 1")
            out: dict[str, object] = {
                "label": label,
                "attrs": tuple(_attr_code(data, name, path) for name in ATTRIBUTE_NAMES),
                "note": str(np.asarray(data["note"]).reshape(-1)[0])
                if "note" in data.files
                else "",
            }
            if with_image:
                out["image"] = scan_to_uint8(data["slo_fundus"], str(path))
            return out
    except DataError:
        raise
    except ValueError as e:
        if "pickle" in str(e):  # object arrays: never unpickled, for safety
            raise DataError(
                f"{path}: not an npz archive of plain arrays (pickled content is never loaded)"
            ) from None
        raise DataError(f"{path}: unreadable npz ({e})") from None
    except _UNREADABLE as e:
        raise DataError(f"{path}: unreadable npz ({type(e).__name__}: {e})") from None


def read_npz(path: str | Path) -> dict[str, object]:
    """Read and validate one sample file: image (uint8 HxW), label, attrs, note."""
    return parse_npz(Path(path), with_image=True)


def _read_meta(path: Path, summary: dict[str, dict[str, str]], cut: NoteCut) -> Record:
    """One file's record, without decoding its image."""
    meta = parse_npz(path, with_image=False)
    row = summary.get(path.name)
    if row is None:
        raise DataError(f"{path}: no row for {path.name} in {SUMMARY_FILE}")
    summary_text = (row.get(SUMMARY_COLUMN) or "").strip() or str(meta["note"])
    return Record(
        path.stem,
        path,
        int(meta["label"]),
        meta["attrs"],
        truncate_note(summary_text, cut=cut),
        str(meta["note"]),
    )


class FairVLMedDataset(Dataset):
    """One split of a FairVLMed folder as a torch Dataset.

    Items are dicts: ``pixels`` uint8 (S, S) (normalise batches with ``normalize_scan``), ``tokens``
    (77,) int64, ``label`` int, ``attrs`` (4,) int64 in ATTRIBUTE_NAMES order, ``id`` str.
    Validation and test drop samples with an unknown attribute (as FairCLIP does) and report how many
    in ``dropped_unknown``; training keeps them. ``note_cut`` chooses how the training text is cut
    to 180 characters (see :func:`truncate_note`).
    """

    def __init__(
        self,
        root: str | Path,
        split: Split,
        *,
        image_size: int = 224,
        tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
        drop_unknown: bool | None = None,
        limit: int | None = None,
        note_cut: NoteCut = "clean",
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.image_size = image_size
        self.tokenizer = tokenizer
        folder = find_split_dir(self.root, split)
        files = sorted(folder.glob("data_*.npz"))
        if not files:
            raise DataError(f"{folder}: empty split, no data_*.npz files")
        if limit is not None:
            files = files[:limit]
        summary = read_summary(self.root)
        records = [_read_meta(p, summary, note_cut) for p in files]
        if drop_unknown is None:
            drop_unknown = split != "training"
        kept = [r for r in records if not (drop_unknown and UNKNOWN in r.attrs)]
        self.dropped_unknown = len(records) - len(kept)
        if not kept:
            raise DataError(f"{folder}: no samples left after dropping unknown attributes")
        self.records = kept
        self.labels = np.array([r.label for r in kept], dtype=np.int64)
        self.attrs = np.array([r.attrs for r in kept], dtype=np.int64)  # (N, 4)

    def __len__(self) -> int:
        return len(self.records)

    def attribute_codes(self, name: str) -> np.ndarray:
        """(N,) codes of one attribute."""
        return self.attrs[:, ATTRIBUTE_NAMES.index(attribute(name).name)]

    def load_pixels(self, index: int) -> torch.Tensor:
        rec = self.records[index]
        return preprocess_scan(read_npz(rec.path)["image"], self.image_size)

    def __getitem__(self, index: int) -> dict[str, object]:
        rec = self.records[index]
        item: dict[str, object] = {
            "pixels": self.load_pixels(index),
            "label": rec.label,
            "attrs": torch.tensor(rec.attrs, dtype=torch.int64),
            "id": rec.id,
        }
        if self.tokenizer is not None:
            item["tokens"] = self.tokenizer([rec.text])[0]
        return item

    def summary(self) -> dict[str, object]:
        """Counts per group and label, for checkpoints and reports."""
        out: dict[str, object] = {
            "split": self.split,
            "n": len(self),
            "n_glaucoma": int(self.labels.sum()),
            "dropped_unknown": self.dropped_unknown,
        }
        for j, name in enumerate(ATTRIBUTE_NAMES):
            groups = ATTRIBUTES[name].groups
            counts = {g: int((self.attrs[:, j] == c).sum()) for c, g in enumerate(groups)}
            if (self.attrs[:, j] == UNKNOWN).any():
                counts["Unknown"] = int((self.attrs[:, j] == UNKNOWN).sum())
            out[name] = counts
        return out
