"""Files: npz members, the byte-reproducible zip writer, the worker pool, data_summary.csv and
SYNTHETIC.md, and ``generate``, which writes a whole folder."""

from __future__ import annotations

import csv
import io
import math
import multiprocessing as mp
import os
import shutil
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from .config import (
    CSV_COLUMNS,
    LABEL_SPELLING,
    MAX_N,
    MECHANISMS,
    SCENARIOS,
    SPLIT_DIRS,
    SPLIT_NAMES,
    NoteConfig,
    Stream,
    SyntheticConfig,
    check_bias,
    csv_value,
    marital_value,
    mechanisms_config,
)
from .notes import note_extra, write_note
from .rendering import render_scan
from .sampling import SampleParams, sample_params

_DOS_TIME = (0, (1980 - 1980) << 9 | 1 << 5 | 1)  # 1980-01-01 00:00: np.savez stamps the clock
# (root, seed, bias, config, [(index, split), ...]): one pool task, a chunk of samples
_Job = tuple[str, int, float, SyntheticConfig, list[tuple[int, str]]]


def make_sample(
    p: SampleParams, config: SyntheticConfig | None = None, *, note: str | None = None
) -> dict[str, np.ndarray]:
    """The npz members of ``p`` (real keys, dtypes and 0-d scalars)."""
    note = write_note(p, config)[0] if note is None else note
    return {
        "slo_fundus": render_scan(p, config),
        "md": np.array(p.md, np.float32),
        "tds": np.array(p.tds, np.float32),
        "age": np.array(p.age, np.float64),
        "gender": np.array(p.gender, np.int64),
        "race": np.array(p.race, np.int64),
        "ethnicity": np.array(p.ethnicity, np.int64),
        "language": np.array(p.language, np.int64),
        "maritalstatus": np.array(p.maritalstatus, np.int64),
        "glaucoma": np.array(p.glaucoma, np.int64),
        "note": np.array(note),
        "note_extra": np.array(note_extra(p, note)),
    }


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray], *, level: int = 1) -> None:
    """Like ``np.savez_compressed`` (deflated zip of .npy members), but byte-reproducible and faster.

    ``zipfile`` stamps members with the wall clock and cannot choose a deflate strategy; Huffman-only
    coding halves the time on noisy scans for ~1% more bytes. Plain zip, no zip64: members < 4 GiB.
    """
    central = []
    with open(path, "wb") as f:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(value), allow_pickle=False)
            raw = buf.getvalue()
            z = zlib.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_HUFFMAN_ONLY)
            data = z.compress(raw) + z.flush()
            name = f"{key}.npy".encode()
            # version 2.0, no flags, deflate, fixed time/date, crc, sizes, name length, no extra
            meta = (20, 0, 8, *_DOS_TIME, zlib.crc32(raw), len(data), len(raw), len(name), 0)
            central.append((name, meta, f.tell()))
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", *meta) + name + data)
        start = f.tell()
        for name, meta, offset in central:
            # made by 2.0, then the local fields, comment/disk/internal attrs, rw-r--r--, offset
            entry = (20, *meta, 0, 0, 0, 0o644 << 16, offset)
            f.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", *entry) + name)
        size, count = f.tell() - start, len(central)
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, size, start, 0))


def _split_of(n: int, seed: int, fractions: tuple[float, float, float]) -> list[str]:
    """Split name of each id 1..n: shuffled ids, exact 70/10/20 counts."""
    n_train = round(n * fractions[0])
    n_val = min(n - n_train, round(n * fractions[1]))
    order = np.random.default_rng([seed, n, Stream.SPLIT]).permutation(n)
    split = np.empty(n, dtype=object)
    split[order[:n_train]] = SPLIT_NAMES[0]
    split[order[n_train : n_train + n_val]] = SPLIT_NAMES[1]
    split[order[n_train + n_val :]] = SPLIT_NAMES[2]
    return list(split)


def _work(args: _Job) -> list[list[str]]:
    """Write the npz files of one chunk and return their CSV rows (runs in a pool worker)."""
    out, seed, bias, cfg, items = args
    rows = []
    for index, split in items:
        p = sample_params(index, seed=seed, bias=bias, config=cfg)
        note, summary = write_note(p, cfg)
        name = f"data_{index:05d}.npz"
        write_npz(Path(out) / SPLIT_DIRS[split] / name, make_sample(p, cfg, note=note))
        rows.append(
            [
                name,
                f"{p.age:.2f}",
                csv_value("gender", p.gender),
                csv_value("race", p.race),
                csv_value("ethnicity", p.ethnicity),
                csv_value("language", p.language),
                marital_value(p.maritalstatus),
                note,
                summary,
                LABEL_SPELLING[p.glaucoma],
                split,
            ]
        )
    return rows


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _prepare_folder(root: Path, overwrite: bool) -> None:
    """Create the split folders; refuse a data set already there unless ``overwrite``, which then
    removes only the files ``generate`` writes (never anything else the user keeps in ``root``)."""
    ours = [
        root / "data_summary.csv",
        root / "SYNTHETIC.md",
        *(root / d for d in SPLIT_DIRS.values()),
    ]
    if root.exists() and not root.is_dir():
        raise ValueError(f"{root}: exists and is not a folder; choose another --out")
    if any(q.exists() for q in ours):
        if not overwrite:
            raise ValueError(f"{root}: already holds a data set; pass --overwrite or another --out")
        for q in ours:
            if q.is_dir():
                shutil.rmtree(q)
            else:
                q.unlink(missing_ok=True)
    for d in SPLIT_DIRS.values():
        (root / d).mkdir(parents=True, exist_ok=True)


def generate(
    out: str | Path,
    *,
    n: int = 10_000,
    seed: int = 0,
    bias: float = 1.0,
    workers: int | None = None,
    config: SyntheticConfig | None = None,
    overwrite: bool = False,
    scenario: str | None = None,
) -> Path:
    """Write a synthetic FairVLMed folder to ``out`` and return its path.

    Refuses a folder that already holds a data set unless ``overwrite`` (which then removes only the
    files this function writes). ``scenario`` (a name of ``SCENARIOS``) is only recorded in
    SYNTHETIC.md, with its role and cause; ``config`` holds its knobs.
    """
    cfg = config or SyntheticConfig()
    bias = check_bias(bias)
    if not 1 <= int(n) <= MAX_N:
        raise ValueError(f"n={n} is out of range; use 1 to {MAX_N} (ids have 5 digits)")
    n = int(n)
    root = Path(out)
    _prepare_folder(root, overwrite)

    splits = _split_of(n, seed, cfg.split_fractions)
    items = [(i + 1, splits[i]) for i in range(n)]
    workers = max(1, min(workers or os.cpu_count() or 1, n))
    chunk = max(1, min(64, math.ceil(n / (workers * 4))))
    jobs = [(str(root), seed, bias, cfg, c) for c in _chunks(items, chunk)]
    if workers == 1:
        results = [_work(j) for j in jobs]
    else:
        # spawn/forkserver: safe even if the caller already started threads (torch, gradio)
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(workers) as pool:
            results = pool.map(_work, jobs, chunksize=1)
    rows = [row for chunk_rows in results for row in chunk_rows]

    with (root / "data_summary.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(rows)
    (root / "SYNTHETIC.md").write_text(_readme(n, seed, bias, cfg, scenario), encoding="utf-8")
    return root


def _readme(
    n: int, seed: int, bias: float, cfg: SyntheticConfig, scenario: str | None = None
) -> str:
    """SYNTHETIC.md: the command, the package docstring (bias mechanisms) and the knob table."""
    # imported here: the package imports this module, and its docstring is the documentation
    from fairmoe.data import synthetic as package

    # the table is for data and bias knobs; the note wording odds (``cfg.note``) appear only when
    # changed, so a default data set's SYNTHETIC.md does not change with them
    shown = [f.name for f in fields(cfg) if f.name != "note" or cfg.note != NoteConfig()]
    knobs = "\n".join(f"| `{name}` | `{getattr(cfg, name)!r}` |" for name in shown)
    doc = (package.__doc__ or "").split("\n\n", 1)[1]
    # the split fractions are not a mechanism: a test-only draw keeps its preset's name
    fractions = cfg.split_fractions
    unsplit = replace(cfg, split_fractions=SyntheticConfig().split_fractions)
    preset = next((m for m in MECHANISMS if mechanisms_config(m) == unsplit), None)
    extra = "" if preset in ("all", None) else f" --mechanisms {preset}"
    if fractions != SyntheticConfig().split_fractions:
        extra += " --splits " + ",".join(f"{f:g}" for f in fractions)
    if scenario is not None:
        extra = f" --scenario {scenario}" + extra.replace(f" --mechanisms {preset}", "")
    command = (
        f"python -m fairmoe.data.synthetic --out DIR --n {n} --seed {seed} --bias {bias}{extra}"
    )
    made = (
        f"Command: `{command}`"
        if preset is not None
        else f"Made by `generate()` with a custom config (the knobs below), like `{command}`"
    )
    return (
        "# Synthetic Harvard-FairVLMed\n\n"
        "Not real patients: written by `fairmoe.data.synthetic` for tests and demos.\n\n"
        f"{made}\n\n"
        f"- n = {n}, seed = {seed}, bias = {bias}\n"
        f"{_scenario_line(scenario, preset)}\n"
        f"{doc}\n## Knobs (SyntheticConfig; bias knobs at bias = 1)\n\n"
        f"| knob | value |\n|---|---|\n{knobs}\n"
    )


def _scenario_line(scenario: str | None, preset: str | None) -> str:
    """The scenario's role and cause, and the preset the probe reads back (``--mechanisms``)."""
    if scenario is None:
        return ""
    s = SCENARIOS[scenario]
    return (
        f"- scenario = {scenario} (role {s.role}; generator preset --mechanisms {preset})\n"
        f"- cause: {s.cause}\n"
    )
