"""Score a large cohort with a checkpoint: the scores CSV the app and the audit read.

python -m fairmoe.score --data DIR --checkpoint FILE --out scores.csv [--split all|training|
                        validation|test] [--batch-size 64] [--workers 2] [--device cpu]
python -m fairmoe.score --data cohort/manifest.csv --checkpoint FILE --out scores.csv
torchrun --nproc_per_node K -m fairmoe.score --data DIR --checkpoint FILE --out scores.csv

``--data`` is a FairVLMed folder (``data_summary.csv`` need not exist: labels and attributes come
from the ``.npz`` files) or a CSV manifest ``file,label,race,gender,ethnicity,language[,note]``
naming images beside it. Scans are decoded in DataLoader workers and scored in batches through
:meth:`fairmoe.inference.Predictor.score_pixels`, the batched forward pass the app's predictions
and cohorts use too. Output (:func:`fairmoe.scores.write_scores`): ``id, label, score, cosines,
attributes, load_e*, gate_e*``, a ``split`` column for a FairVLMed folder, ``assessable`` ("yes",
"no", "not checked": the checkpoint's assessability check, run on every scan when RUN.ood.json
is beside it) and ``decision`` ("glaucoma", "no glaucoma", or "not assessable": a refused scan's
score is unreliable and gets no decision), and a row with ``error`` for every case that could not
be read.

Resumable by id: each process appends its scored rows to ``OUT.partial-RANK.csv`` after every
batch; a run started again with the same arguments skips the ids found there (``--restart``
ignores them). Under ``torchrun`` (one node or many) every rank scores ``cases[rank::world]``
and rank 0 gathers the rows (over the process group: no shared disk needed) and writes OUT.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from fairmoe.checkpoint import CheckpointError
from fairmoe.data.fairvlmed import DataError
from fairmoe.inference import Predictor
from fairmoe.schema import ATTRIBUTE_NAMES, SPLITS
from fairmoe.scores import ScoreSet, write_scores
from fairmoe.scoring import (
    ScanDataset,
    ScoreCase,
    collate_scans,
    csv_cases,
    fairvlmed_cases,
    partial_header,
    read_partial,
    result_rows,
)
from fairmoe.wording import refused_cell

__all__ = ["build_parser", "main", "score_cases"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fairmoe.score", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="FairVLMed folder or CSV manifest")
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint NAME.json")
    p.add_argument("--out", type=Path, required=True, help="scores CSV to write")
    p.add_argument("--split", default="all", choices=["all", *SPLITS], help="FairVLMed split(s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="DataLoader decoding processes")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda:LOCAL_RANK under torchrun)")
    p.add_argument("--limit", type=int, help="score only the first N cases (a quick look)")
    p.add_argument("--restart", action="store_true", help="ignore the partial files of a run")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _cases(data: Path, split: str, limit: int | None) -> list[ScoreCase]:
    if data.is_file() and data.suffix.lower() == ".csv":
        cases = csv_cases(data)
    elif data.is_dir():
        cases = fairvlmed_cases(data, list(SPLITS) if split == "all" else [split])
    else:
        raise DataError(f"{data}: neither a FairVLMed folder nor a .csv manifest")
    return cases[:limit] if limit is not None else cases


def _partials(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.name}.partial-*.csv"))


def score_cases(
    predictor: Predictor,
    cases: Sequence[ScoreCase],
    partial: Path,
    *,
    done: set[str],
    batch_size: int = 64,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, dict[str, str]]:
    """Score the cases whose id is not in ``done``, appending each batch's rows to ``partial``
    (flushed per batch); returns the new rows by id."""
    from tqdm import tqdm

    header = partial_header(predictor.n_experts)
    todo = [c for c in cases if c.id not in done]
    data = ScanDataset(todo, predictor.image_size, predictor.detector)
    loader = DataLoader(data, batch_size=batch_size, num_workers=workers, shuffle=False,
                        collate_fn=collate_scans)  # fmt: skip
    new: dict[str, dict[str, str]] = {}
    fresh = not partial.is_file()
    with (
        partial.open("a", newline="", encoding="utf-8") as f,
        tqdm(
            total=len(cases), initial=len(cases) - len(todo), unit="scan", disable=not progress
        ) as bar,
    ):
        w = csv.writer(f)
        if fresh:
            w.writerow(header)
        for batch in loader:
            ok = [j for j, e in enumerate(batch["error"]) if not e]
            res: dict[str, Any] = {}
            if ok:
                pixels = batch["pixels"][ok]
                res = predictor.score_pixels(pixels)
                res["assessable"] = predictor.assess_pixels(
                    pixels, [batch["statistics"][j] for j in ok], batch["colour"][ok].tolist()
                )
            rows = result_rows(todo, batch, res, predictor.n_experts, predictor.threshold)
            w.writerows(rows)
            f.flush()  # a killed run keeps every finished batch
            new.update((r[0], dict(zip(header, map(str, r), strict=True))) for r in rows)
            bar.update(len(rows))
    return new


def _score_set(name: str, rows: list[dict[str, str]], n_exp: int) -> ScoreSet:
    def col(c: str, dtype: Any = float) -> np.ndarray:
        return np.array([dtype(r[c]) for r in rows])

    loads = gates = None
    if n_exp:
        loads = np.stack([col(f"load_e{e}") for e in range(n_exp)], axis=1)
        gates = np.stack([col(f"gate_e{e}") for e in range(n_exp)], axis=1)
    cosines = np.stack([col("cos_non_glaucoma"), col("cos_glaucoma")], axis=1)
    attrs = {a: col(a, int) for a in ATTRIBUTE_NAMES}
    ids = [r["id"] for r in rows]
    return ScoreSet(name, ids, col("label", int), col("score"), attrs, loads, cosines, gates)


def write_merged(
    out: Path, cases: Sequence[ScoreCase], rows: dict[str, dict[str, str]], n_exp: int
) -> tuple[int, int, int]:
    """Write OUT in the cases' order (atomically); returns (scored, failed, not assessable)."""
    missing = [c.id for c in cases if c.id not in rows]
    if missing:
        raise RuntimeError(f"{len(missing)} cases have no result, e.g. {missing[:3]}")
    ordered = [rows[c.id] for c in cases]
    scored = [r for r in ordered if not r["error"]]
    failed = [
        {"id": r["id"], "split": r["split"], "error": r["error"]} for r in ordered if r["error"]
    ]
    if not scored:
        raise DataError(f"no case could be scored; first problems: {failed[:3]}")
    with_split = any(c.split for c in cases)
    if not with_split:
        for r in failed:
            r.pop("split")
    extra = {"split": [r["split"] for r in scored]} if with_split else {}
    extra |= {k: [r[k] for r in scored] for k in ("assessable", "decision")}
    if failed:
        extra["error"] = [""] * len(scored)  # the failed rows' column: empty for scored rows
    name = out.name.removesuffix(".csv").removesuffix(".scores")
    tmp = out.with_name(out.name + ".tmp")
    write_scores(tmp, _score_set(name, scored, n_exp), extra=extra, failed=failed)
    tmp.replace(out)
    return len(scored), len(failed), sum(refused_cell(r["assessable"]) for r in scored)


def _world() -> tuple[int, int]:
    """(rank, world size), joining torchrun's process group when there is one."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")  # CPU tensors and Python objects: gloo does both
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def run(args: argparse.Namespace) -> tuple[int, int, int] | None:
    """Score this rank's shard; rank 0 merges and writes OUT. Returns (scored, failed, not
    assessable) on rank 0."""
    rank, world = _world()
    device = args.device
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    predictor = Predictor(args.checkpoint, device=device)
    cases = _cases(args.data, args.split, args.limit)
    shard = cases[rank::world]
    header = partial_header(predictor.n_experts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    own = args.out.parent / f"{args.out.name}.partial-{rank}.csv"
    if args.restart and own.exists():
        own.unlink()
    known: dict[str, dict[str, str]] = {}
    if not args.restart:  # other ranks' files are read, never rewritten (a shared disk)
        for path in _partials(args.out):
            known.update(read_partial(path, header, repair=path == own))
    if world > 1:
        dist.barrier()  # every rank has read the partial files before any is appended to
    ids = {c.id for c in shard}
    known = {k: v for k, v in known.items() if k in ids}
    known |= score_cases(predictor, shard, own, done=set(known), batch_size=args.batch_size,
                         workers=args.workers, progress=not args.quiet and rank == 0)  # fmt: skip
    gathered: list[Any] = [known]
    if world > 1:
        gathered = [None] * world
        dist.all_gather_object(gathered, known)
    result = None
    if rank == 0:
        merged = {k: v for part in gathered for k, v in part.items()}
        result = write_merged(args.out, cases, merged, predictor.n_experts)
    if world > 1:
        dist.barrier()  # OUT is written before any partial file goes
    for path in _partials(args.out) if rank == 0 else [own]:
        path.unlink(missing_ok=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except (DataError, CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if result is not None:
        scored, failed, refused = result
        print(
            f"wrote {args.out}: {scored} scored ({refused} not assessable: decision left out, "
            f"score unreliable), {failed} could not be read"
        )
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
