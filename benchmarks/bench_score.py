"""Cohort scoring throughput: ``python -m fairmoe.score`` with 1 process and under
``torch.distributed.run`` with 2 (gloo, one torch thread each), on CPU.

python benchmarks/bench_score.py --data DIR [--checkpoint FILE] [--batch-size 64] [--workers 1]

``--data``: a FairVLMed folder, e.g. ``python -m fairmoe.data.synthetic --out DIR --n 600 --seed 0``
(all splits are scored). Prints wall time (process start to scores written) and cases/s per
configuration, and checks that the outputs agree (same ids, scores within 1e-6).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _scores(path: Path) -> dict[str, float]:
    with path.open(newline="") as f:
        return {r["id"]: float(r["score"]) for r in csv.DictReader(f) if r["score"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers per process")
    args = p.parse_args(argv)
    ckpt = (
        args.checkpoint
        or REPO / "assets" / json.loads((REPO / "assets" / "runs.json").read_text())["default"]
    )
    out = Path(tempfile.mkdtemp(prefix="fairmoe-bench-score-"))
    common = ["--data", str(args.data), "--checkpoint", str(ckpt), "--quiet"]
    common += ["--batch-size", str(args.batch_size), "--workers", str(args.workers)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    dist = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    configs = {
        "1 process, 2 torch threads": (
            [sys.executable, "-m", "fairmoe.score"],
            {"OMP_NUM_THREADS": "2"},
        ),
        "1 process, 1 torch thread": ([sys.executable, "-m", "fairmoe.score"], {"OMP_NUM_THREADS": "1"}),
        "2 processes (gloo), 1 thread each": ([*dist, "2", "-m", "fairmoe.score"], {"OMP_NUM_THREADS": "1"}),
    }  # fmt: skip
    results = {}
    for name, (cmd, extra) in configs.items():
        path = out / f"{len(results)}.csv"
        wall = _run([*cmd, *common, "--out", str(path)], {**env, **extra})
        results[name] = (wall, _scores(path))
    n = len(next(iter(results.values()))[1])
    print(f"{ckpt.name} on {args.data} ({n} scans scored), batch {args.batch_size}, "
          f"{args.workers} DataLoader worker(s) per process, {os.cpu_count()} CPUs")  # fmt: skip
    first = next(iter(results.values()))[1]
    for name, (wall, scores) in results.items():
        same = scores.keys() == first.keys() and all(
            abs(scores[k] - first[k]) <= 1e-6 + 1e-12 for k in first
        )
        print(f"  {name:36s} {wall:6.1f} s  {n / wall:6.1f} cases/s  same scores: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
