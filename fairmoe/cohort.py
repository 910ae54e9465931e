"""Cohort upload: safe zip extraction, layout detection, scoring row by row with bad rows listed.

Two layouts are accepted inside the zip: the Harvard-FairVLMed one (``*.npz`` files, optionally
with ``data_summary.csv``), or a CSV manifest with columns ``file,label,race,gender,ethnicity,
language,note`` beside the image files it names. Rows that cannot be scored are reported with the
reason and skipped; only a zip that is unsafe or holds neither layout is refused as a whole.

A scan the assessability check refuses is scored (its row says ``assessable: no`` and decision
"not assessable") but left out of the metrics unless asked for (``include_not_assessable``): its
probability means nothing, so it must not move an AUC or a fairness gap.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from fairmoe.data.fairvlmed import DataError, read_npz, read_summary
from fairmoe.inference import InputError, Predictor, Prepared, ScanInput
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES, LABEL_CSV, UNKNOWN, code_from_csv
from fairmoe.scores import ScoreSet
from fairmoe.wording import assessable_cell, decision_cell, refused_cell

__all__ = [
    "COHORT_BATCH",
    "CSV_COLUMNS",
    "MAX_ENTRIES",
    "MAX_RATIO",
    "MAX_TOTAL_BYTES",
    "Case",
    "CohortError",
    "CohortResult",
    "cases_from_csv",
    "find_cases",
    "safe_extract",
    "score_cohort",
]

MAX_ENTRIES = 20_000  # FairVLMed has 10,000 scans; twice that is not a cohort but an accident
MAX_TOTAL_BYTES = 2 * 2**30  # uncompressed; the whole of FairVLMed's test split is ~0.7 GB
MAX_RATIO = 100  # uncompressed / compressed; real scans compress ~2-10x, zip bombs ~1000x
CSV_COLUMNS = ("file", "label", "race", "gender", "ethnicity", "language", "note")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npz")
_CHUNK = 1 << 20

Progress = Callable[[float, str], Any]


class CohortError(ValueError):
    """The upload as a whole is unusable; the message says why and what to upload instead."""


@dataclass
class Case:
    """One row to score."""

    row: int  # 1-based row of the manifest, or file index for the FairVLMed layout
    file: str  # as named in the upload (relative path)
    path: Path | None
    label: int | None = None
    attrs: dict[str, int] = field(default_factory=dict)
    note: str = ""
    error: str | None = None  # set when the row is already known to be bad


@dataclass
class CohortResult:
    """Scored rows, the bad rows with reasons, and ScoreSets for the CSV and the metrics.

    ``rows`` and ``all_scores`` hold every scored row, assessable or not (the CSV lists them
    all); ``scores``, what the fairness views compute on, leaves out the rows the assessability
    check refused unless ``include_not_assessable``. Either is None when it has no row.
    """

    layout: str
    rows: list[dict[str, Any]]
    bad: list[dict[str, Any]]
    scores: ScoreSet | None
    all_scores: ScoreSet | None = None
    include_not_assessable: bool = False

    @property
    def not_assessable(self) -> list[dict[str, Any]]:
        """The scored rows the assessability check refused."""
        return [r for r in self.rows if refused_cell(r["assessable"])]

    def including(self, include_not_assessable: bool) -> CohortResult:
        """The same scored cohort with the refused rows in or out of ``scores``."""
        rows = self.rows if include_not_assessable else _assessed(self.rows)
        return replace(self, scores=_score_set(rows), include_not_assessable=include_not_assessable)


# ----------------------------------------------------------------------------- extraction


def _check_member(info: zipfile.ZipInfo) -> str | None:
    """The reason to refuse one zip member, or None."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"{info.filename!r} is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return f"{info.filename!r} points outside the folder (..)"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return f"{info.filename!r} is a symbolic link"
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        return (
            f"{info.filename!r} expands {info.file_size / info.compress_size:.0f}x "
            f"(over {MAX_RATIO}x: a zip bomb?)"
        )
    return None


def safe_extract(zip_path: str | Path, dest: str | Path) -> list[Path]:
    """Extract a zip into ``dest`` refusing traversal, links, bombs and oversize archives.

    The sizes in the zip's headers are checked first and then enforced while writing, since a
    crafted zip can lie about them.
    """
    dest = Path(dest)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as e:
        raise CohortError(f"not a readable zip file ({e}); upload a .zip of the cohort") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise CohortError(f"the zip has {len(infos):,} entries; at most {MAX_ENTRIES:,}")
        for info in infos:
            reason = _check_member(info)
            if reason:
                raise CohortError(f"unsafe zip: {reason}; nothing was extracted")
        declared = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        if declared > MAX_TOTAL_BYTES:
            raise CohortError(
                f"the zip expands to {declared / 2**30:.1f} GB; at most "
                f"{MAX_TOTAL_BYTES / 2**30:.0f} GB (split the cohort)"
            )
        if packed and declared / packed > MAX_RATIO:
            raise CohortError(f"the zip expands {declared / packed:.0f}x: refused as a zip bomb")
        written, out = 0, []
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if info.is_dir() or not parts or parts[0] == "__MACOSX" or parts[-1].startswith("."):
                continue
            target = dest.joinpath(*parts)
            if not target.resolve().is_relative_to(dest.resolve()):
                raise CohortError(f"unsafe zip: {info.filename!r} points outside the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            try:
                with zf.open(info) as src, target.open("wb") as dst:
                    while chunk := src.read(_CHUNK):
                        size += len(chunk)
                        written += len(chunk)
                        if size > info.file_size or written > MAX_TOTAL_BYTES:
                            raise CohortError(
                                f"{info.filename!r} is larger than its zip header says: refused"
                            )
                        dst.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
                raise CohortError(f"cannot extract {info.filename!r} ({e})") from None
            out.append(target)
    return out


# ----------------------------------------------------------------------------- layouts


def _parse_label(value: str) -> int:
    v = str(value).strip().lower()
    if v in LABEL_CSV:
        return LABEL_CSV[v]
    if v in ("0", "1", "0.0", "1.0"):
        return int(float(v))
    if v in ("glaucoma", "true"):
        return 1
    if v in ("non-glaucoma", "no glaucoma", "false"):
        return 0
    raise ValueError(f"label {value!r} is not 0/1 or yes/no")


def _parse_attr(name: str, value: str) -> int:
    a = ATTRIBUTES[name]
    v = str(value).strip()
    if v.lstrip("-").isdigit():
        code = int(v)
        if code != UNKNOWN and not 0 <= code < a.n_groups:
            raise ValueError(f"{name}={code} is out of range (0..{a.n_groups - 1} or -1)")
        return code
    return code_from_csv(a, v)  # "asian", "Asian", "unknown", "" ...


def _csv_manifest(root: Path) -> Path | None:
    for path in sorted(root.rglob("*.csv"), key=lambda p: (len(p.parts), str(p))):
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                header = next(csv.reader(f), [])
        except (UnicodeDecodeError, csv.Error, OSError):
            continue
        if {"file", "label"} <= {h.strip().lower() for h in header}:
            return path
    return None


def cases_from_csv(root: Path, manifest: Path) -> list[Case]:
    """The rows of a CSV manifest; files must lie inside ``root``. Bad rows carry ``error``."""
    cases = []
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            reader.fieldnames = [h.strip().lower() for h in reader.fieldnames or []]
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise CohortError(f"{manifest.name}: not a readable CSV ({e})") from None
    for i, r in enumerate(rows, start=1):
        file = (r.get("file") or "").strip()
        case = Case(row=i, file=file, path=None, note=(r.get("note") or "").strip())
        try:
            if not file:
                raise ValueError("empty 'file' cell")
            path = (manifest.parent / file).resolve()
            if not path.is_relative_to(root.resolve()):
                raise ValueError(f"{file!r} points outside the upload")
            if not path.is_file():
                raise ValueError(f"{file!r} is not in the zip")
            case.path = path
            case.label = _parse_label(r.get("label", ""))
            case.attrs = {a: _parse_attr(a, r.get(a) or "unknown") for a in ATTRIBUTE_NAMES}
        except ValueError as e:
            case.error = str(e)
        cases.append(case)
    return cases


def _cases_from_npz(root: Path, files: list[Path]) -> list[Case]:
    summaries: dict[str, dict[str, str]] = {}
    for summary in root.rglob("data_summary.csv"):
        with contextlib.suppress(DataError):  # notes then come from the npz files themselves
            summaries.update(read_summary(summary.parent))
    cases = []
    for i, path in enumerate(files, start=1):
        rel = str(path.relative_to(root))
        note = (summaries.get(path.name) or {}).get("gpt4_summary", "") or ""
        cases.append(Case(row=i, file=rel, path=path, note=note.strip()))
    return cases


def find_cases(root: str | Path) -> tuple[str, list[Case]]:
    """('csv' | 'fairvlmed', cases) for an extracted upload; CohortError when neither fits."""
    root = Path(root)
    manifest = _csv_manifest(root)
    if manifest is not None:
        return "csv", cases_from_csv(root, manifest)
    npz = sorted(p for p in root.rglob("*.npz") if p.is_file())
    if npz:
        return "fairvlmed", _cases_from_npz(root, npz)
    raise CohortError(
        "the zip holds neither a CSV manifest (columns " + ",".join(CSV_COLUMNS) + ") with its "
        "images, nor FairVLMed .npz files (Training/Validation/Test folders with data_summary.csv)"
    )


# ----------------------------------------------------------------------------- scoring


def _scan_source(case: Case) -> ScanInput | Path | str:
    """What to give Predictor.predict for a row, or the reason the row cannot be scored."""
    if case.path is None:
        return case.error or "no file"
    suffix = case.path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        return f"{case.file}: unsupported file type (use PNG, JPEG, TIFF or .npz)"
    if suffix != ".npz":
        return case.path  # decoded (and checked) by Predictor.predict
    if not zipfile.is_zipfile(case.path):  # np.load would talk about pickles instead
        return f"{case.file}: not a valid .npz file (an .npz is a zip of numpy arrays)"
    try:
        rec = read_npz(case.path)
    except DataError as e:
        return str(e).replace(str(case.path), case.file)
    attrs = dict(zip(ATTRIBUTE_NAMES, rec["attrs"], strict=True))
    if case.label is None:  # FairVLMed layout: label and attributes come from the file
        case.label, case.attrs = int(rec["label"]), attrs
    case.note = case.note or str(rec["note"])
    return ScanInput(
        rec["image"], note=case.note, attrs=attrs, label=int(rec["label"]), source_kind="npz"
    )


COHORT_BATCH = 16  # cases per forward pass; between batches the scoring thread yields


def _row(case: Case, res: dict[str, Any]) -> dict[str, Any]:
    return {
        "row": case.row,
        "file": case.file,
        "label": case.label,
        "score": res["probability"],
        "cosines": res["raw_cosines"],
        "decision": decision_cell(res["decision"]),  # "not assessable" for a refused scan
        "assessable": assessable_cell(res["assessable"]),  # "yes", "no", "not checked"
        "reasons": " ".join(res["assessable"]["reasons"]),
        **{a: case.attrs.get(a, UNKNOWN) for a in ATTRIBUTE_NAMES},
        **{f"load_e{e['id']}": e["load"] for e in res["experts"]},
        "warnings": " | ".join(w for w in res["warnings"] if not w.startswith("No clinical")),
    }


def _score_cases(
    predictor: Predictor, cases: list[Case], batch_size: int, progress: Progress | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(scored rows, bad rows): each case decoded and checked alone, scored in batches."""
    rows, bad = [], []
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        if progress:
            progress(start / max(len(cases), 1), f"scoring {start + 1}/{len(cases)}")
        ready: list[tuple[Case, Prepared]] = []
        for case in chunk:
            source = case.error or _scan_source(case)
            if not isinstance(source, str):
                try:
                    ready.append((case, predictor.prepare(source, case.note or None)))
                    continue
                except InputError as e:
                    source = str(e)
            bad.append({"row": case.row, "file": case.file, "reason": source})
        results = predictor.predict_prepared([item for _, item in ready])
        rows += [_row(case, res) for (case, _), res in zip(ready, results, strict=True)]
        # Give the server's other threads (predictions, the web server) the interpreter and the
        # cores between batches: a cohort must not starve them.
        time.sleep(0)
    return rows, bad


def _assessed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if not refused_cell(r["assessable"])]


def _score_set(rows: list[dict[str, Any]]) -> ScoreSet | None:
    if not rows:
        return None
    loads = None
    if rows[0].get("load_e0") is not None:
        loads = np.array([[r[k] for k in r if k.startswith("load_e")] for r in rows])
    return ScoreSet(
        "cohort",
        [r["file"] for r in rows],
        np.array([r["label"] for r in rows]),
        np.array([r["score"] for r in rows]),
        {a: np.array([r[a] for r in rows]) for a in ATTRIBUTE_NAMES},
        loads,
        np.array([r["cosines"] for r in rows]),
    )


def score_cohort(
    predictor: Predictor,
    upload: str | Path,
    *,
    progress: Progress | None = None,
    batch_size: int = COHORT_BATCH,
    include_not_assessable: bool = False,
) -> CohortResult:
    """Extract ``upload`` to a private temp folder, score every row in batches, clean up.

    The result's ``scores`` leave out the scans that are not assessable, unless
    ``include_not_assessable`` (their probabilities are unreliable: a caller that includes them
    must say so)."""
    upload = Path(upload)
    if not upload.is_file() or upload.stat().st_size == 0:
        raise CohortError(f"{upload.name}: empty or missing upload; upload a .zip of the cohort")
    with tempfile.TemporaryDirectory(prefix="fairmoe-cohort-") as tmp:
        root = Path(tmp)
        if progress:
            progress(0.0, "extracting")
        safe_extract(upload, root)
        layout, cases = find_cases(root)
        rows, bad = _score_cases(predictor, cases, max(1, batch_size), progress)
        if progress:
            progress(1.0, "done")
        shutil.rmtree(root, ignore_errors=True)
    bad.sort(key=lambda b: b["row"])
    every = _score_set(rows)
    return CohortResult(layout, rows, bad, every, every, True).including(include_not_assessable)
