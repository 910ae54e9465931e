"""Train and evaluate CLIP, FairCLIP or Fair-MoE on a FairVLMed folder (CPU, GPU, or torchrun DDP).

python train.py --synthetic 300 --method fairmoe --attribute race --config tiny --out runs/smoke
torchrun --nproc_per_node 2 train.py --data DIR --method fairmoe --config demo --out runs/x
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_parser() -> argparse.ArgumentParser:
    """The run's options (data, devices, outputs) and a flag per TrainConfig field (its default)."""
    from fairmoe.training.cli import add_config_arguments

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = p.add_argument_group("data")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="a folder in the Harvard-FairVLMed layout")
    src.add_argument("--synthetic", type=int, metavar="N", help="generate N synthetic cases first")
    d.add_argument("--bias", type=float, default=1.0, help="synthetic group bias (0 = unbiased)")
    d.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data set")
    d.add_argument("--cache-dir", type=Path, help="cache decoded splits here (reused across runs)")
    titles = ("model and method", "loss", "optimisation", "run")
    groups = add_config_arguments(p, {"data": d} | {t: p.add_argument_group(t) for t in titles})
    r = groups["run"]
    r.add_argument("--out", type=Path, required=True, help="output folder")
    r.add_argument("--name", help="checkpoint name (default: METHOD-ATTRIBUTE-CONFIG-sSEED)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    r.add_argument("--no-resume", action="store_true", help="ignore an interrupted run's state")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _device(requested: str, local_rank: int, distributed: bool) -> str | None:
    """The device of this process (joining the process group under torchrun); None if absent."""
    import torch
    import torch.distributed as dist

    if requested == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    else:
        device = requested
    if device.startswith("cuda") and not torch.cuda.is_available():
        return None
    if distributed:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(device)
    return device


def _synthetic_data(args: argparse.Namespace, rank: int, distributed: bool) -> Path:
    """Generate the --synthetic data set once (rank 0) beside the outputs."""
    import torch.distributed as dist

    from fairmoe.data.synthetic import generate

    data = args.out / f"synthetic-{args.synthetic}-s{args.data_seed}-b{args.bias:g}"
    if rank == 0 and not (data / "data_summary.csv").is_file():
        generate(data, n=args.synthetic, seed=args.data_seed, bias=args.bias)
    if distributed:
        dist.barrier()
    return data


def train_config(args: argparse.Namespace, seed: int):
    """The TrainConfig of one seed from the parsed arguments."""
    from fairmoe.training.cli import config_from_args

    return config_from_args(args, seed=seed)


def _report(res: dict) -> None:
    from fairmoe import metrics

    print(
        f"\n{res['name']}: best epoch {res['best_epoch']} on validation, "
        f"temperature {res['temperature']:.4g}, {res['images_per_second'] or 0:.1f} images/s"
    )
    print(metrics.format_report_table(res["test"]))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:  # a bad --model-overrides key is the user's error: say so before any work
        configs = [train_config(args, seed) for seed in args.seed]
        for cfg in configs:
            cfg.model_config()
    except ValueError as e:
        parser.error(str(e))
    import torch.distributed as dist

    from fairmoe.data.fairvlmed import DataError
    from fairmoe.training import train

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = _device(args.device, local_rank, distributed)
    if device is None:
        print("error: --device cuda asked for but no CUDA device is available", file=sys.stderr)
        return 2
    rank = dist.get_rank() if distributed else 0
    results = []
    try:
        data = args.data
        if args.synthetic is not None:
            data = _synthetic_data(args, rank, distributed)
        for cfg in configs:
            name = args.name if args.name and len(configs) == 1 else None
            res = train(
                cfg,
                data,
                args.out,
                device=device,
                name=name,
                cache_dir=args.cache_dir,
                resume=not args.no_resume,
                progress=not args.quiet,
            )
            results.append(res)
            if rank == 0:
                _report(res)
    except DataError as e:  # user-facing data errors get one clear line
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if distributed:
            dist.destroy_process_group()
    if rank == 0:
        print(json.dumps([{"name": r["name"], "test_auc": r["test"]["auc"]} for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
