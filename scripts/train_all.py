"""Train every run the app compares and the report tabulates, in parallel worker processes.

  python scripts/train_all.py --profile cpu --out runs/assets      # 2 CPU cores (no GPU lent)
  python scripts/train_all.py --profile gpu --out runs/assets      # one GPU: demo config

The plan: CLIP, FairCLIP and Fair-MoE for each attribute; Fair-MoE on all four attributes at once;
extra seeds for race (mean +- std); a sweep of the fairness-loss weight for Fair-MoE (race); and the
app's default model (Fair-MoE, race) at the larger config. If time runs short, drop seeds first,
then sweep points (the plan is ordered that way; --max-runs cuts its tail).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Profile:
    config: str  # comparison runs
    app_config: str  # the app's default model and its two baselines
    epochs: int
    app_epochs: int
    batch_size: int
    lr: float
    app_lr: float
    text_source: str
    n_samples: int = 10_000


PROFILES = {
    # 2 CPU cores: the comparison table at `tiny`, the app's models at `small` (see REPORT.md).
    "cpu": Profile("tiny", "small", 5, 6, 64, 1e-3, 1e-3, "mixed"),
    # one H100: everything at `demo` (~5,600 images/s at batch 256 measured for a 21M CLIP).
    "gpu": Profile("demo", "demo", 30, 30, 256, 1e-4, 1e-4, "mixed"),
}
ATTRS = ("race", "gender", "ethnicity", "language")
METHODS = ("clip", "fairclip", "fairmoe")
SWEEP = (0.0, 0.25, 0.5, 2.0, 4.0)  # x the default FOL weights; 1.0 is the main run


def plan(p: Profile) -> list[dict]:
    runs = [
        dict(
            method=m,
            attribute="race",
            model=p.app_config,
            epochs=p.app_epochs,
            lr=p.app_lr,
            seed=0,
            role="app",
        )
        for m in ("fairmoe", "clip", "fairclip")
    ]
    runs += [dict(method=m, attribute=a, seed=0) for a in ATTRS for m in METHODS]
    runs.append(dict(method="fairmoe", attribute="all", seed=0))
    runs += [dict(method="fairmoe", attribute="race", seed=0, fairness_scale=s) for s in SWEEP]
    runs += [dict(method=m, attribute="race", seed=s) for s in (1, 2) for m in METHODS]
    for r in runs:
        r.setdefault("model", p.config)
        r.setdefault("epochs", p.epochs)
        r.setdefault("lr", p.lr)
        r.setdefault("role", "table")
    return runs


def _run(spec: dict, data: str, out: str, cache: str, device: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from fairmoe.training import TrainConfig, train

    spec = dict(spec)
    role = spec.pop("role")
    cfg = TrainConfig(**spec)
    t0 = time.perf_counter()
    res = train(cfg, data, out, device=device, cache_dir=cache, progress=False)
    return {
        "name": res["name"],
        "role": role,
        "wall_seconds": time.perf_counter() - t0,
        "test_auc": res["test"]["auc"],
        "best_epoch": res["best_epoch"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", choices=list(PROFILES), default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, help="existing FairVLMed folder (default: synthesise)")
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--bias", type=float, default=1.0)
    ap.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-runs", type=int, help="train only the first N runs of the plan")
    args = ap.parse_args(argv)
    prof = PROFILES[args.profile]
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        from fairmoe.data.synthetic import generate

        data = args.out / "data"
        if not (data / "data_summary.csv").is_file():
            t0 = time.perf_counter()
            generate(data, n=prof.n_samples, seed=args.data_seed, bias=args.bias)
            print(f"synthetic data: {time.perf_counter() - t0:.0f} s", flush=True)
    runs = plan(prof)[: args.max_runs]
    runs = [dict(r, text_source=prof.text_source, batch_size=prof.batch_size) for r in runs]
    # decode each image size once, before the workers race to fill the cache
    from fairmoe.data.tensors import load_split
    from fairmoe.model import create_model, get_config

    cache = args.out / "cache"
    tok = create_model("tiny", method="clip").tokenizer()  # the same tokenizer for every config
    for size in sorted({get_config(r["model"]).vision.image_size for r in runs}):
        for split in ("training", "validation", "test"):
            load_split(data, split, image_size=size, tokenizer=tok, cache_dir=cache)
    done_file = args.out / "runs_done.jsonl"
    finished = set()
    if done_file.is_file():
        finished = {json.loads(line)["name"] for line in done_file.read_text().splitlines()}
    from fairmoe.training import TrainConfig, run_name

    todo = [
        r
        for r in runs
        if run_name(TrainConfig(**{k: v for k, v in r.items() if k != "role"})) not in finished
    ]
    print(f"{len(todo)} of {len(runs)} runs to train, {args.jobs} at a time", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [
            pool.submit(_run, r, str(data), str(args.out), str(cache), args.device, args.threads)
            for r in todo
        ]
        for f in as_completed(futures):
            res = f.result()
            with done_file.open("a") as fh:
                fh.write(json.dumps(res) + "\n")
            print(
                f"[{time.perf_counter() - t0:6.0f} s] {res['name']}: test AUC "
                f"{res['test_auc']:.3f} (epoch {res['best_epoch']}, {res['wall_seconds']:.0f} s)",
                flush=True,
            )
    (args.out / "profile.json").write_text(
        json.dumps(
            {
                "profile": args.profile,
                **prof.__dict__,
                "data": str(data),
                "bias": args.bias,
                "data_seed": args.data_seed,
                "jobs": args.jobs,
                "threads": args.threads,
                "total_seconds": time.perf_counter() - t0,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
