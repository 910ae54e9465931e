"""Serial batch-worker time of a prediction batch, with the assessability statistics computed in
the worker (as before) or precomputed by ``Predictor.prepare`` in each request's thread (now).

python benchmarks/bench_batch_worker.py [--assets DIR] [--repeats 7]

The batcher (``fairmoe.serving``) runs one batch at a time, so its worker time bounds the
predictions per second; both variants run interleaved in one process on the shipped examples
(16 scans per batch, one torch thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from fairmoe.inference import Predictor  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--assets", type=Path, default=REPO / "assets")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    a = args.assets
    p = Predictor(a / json.loads((a / "runs.json").read_text())["default"])
    if p.detector is None:
        print("the default run ships no assessability detector: nothing to compare")
        return 1
    examples = json.loads((a / "examples" / "examples.json").read_text())
    now = [p.prepare(a / e["file"], e["note"]) for e in examples] * 2
    variants = {"before: worker computes statistics": [dataclasses.replace(i, statistics=None)
                                                       for i in now],
                "now: statistics from prepare()": now}  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, items in variants.items():
            t0 = time.perf_counter()
            p.predict_prepared(items)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    for name, ms in med.items():
        print(f"{name:38s} batch of {len(now)}: median {ms:7.1f} ms")
    before, after = med.values()
    print(f"ratio now / before: {after / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
