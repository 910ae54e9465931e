"""How strongly each loss term pulls on the routers and on the whole model (gradient L2 norms).

  python benchmarks/bench_gradients.py --data DIR --init PRETRAINED.json [--config small]
         [--steps 8] [--target 0.25]

Runs the first steps of a Fair-MoE fine-tuning (and a FairCLIP one) from the pretrained start and
prints, per term, the median gradient norm and its ratio to the contrastive loss's, on the
routers/gates and on all parameters; then the weight that would put the FOL's dispersion terms at
``--target`` of the contrastive router gradient, and the Sinkhorn distance at ``--target`` of
the contrastive gradient on the whole model. These ratios are how the default weights in
``fairmoe.losses.LossConfig`` were chosen.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _medians(rows: list[dict]) -> dict[str, float]:
    keys = {k for r in rows for k in r if k.startswith("grad_")}
    return {k: float(np.median([r[k] for r in rows if k in r])) for k in sorted(keys)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--init", type=Path, required=True)
    ap.add_argument("--config", default="small")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--target", type=float, default=0.25)
    ap.add_argument("--cache-dir", type=Path)
    args = ap.parse_args(argv)
    import torch

    from fairmoe import losses
    from fairmoe.training import TrainConfig, measure_gradients

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    current = losses.LossConfig()
    for method in ("fairmoe", "fairclip"):
        cfg = TrainConfig(method=method, model=args.config, init=str(args.init), lr=args.lr,
                          batch_size=args.batch_size, text_source="mixed")  # fmt: skip
        med = _medians(
            measure_gradients(cfg, args.data, steps=args.steps, cache_dir=args.cache_dir)
        )
        print(f"\n{method}: median gradient norm over {args.steps} steps (ratio to contrastive)")
        for scope in ("routers", "all"):
            base = med.get(f"grad_{scope}/clip")
            for key, v in med.items():
                if key.startswith(f"grad_{scope}/") and base:
                    print(f"  {key:40s} {v:10.3g}  ({v / base:.3f})")
        r_clip, r_fol = med.get("grad_routers/clip"), med.get("grad_routers/fol_dispersion")
        if r_clip and r_fol:
            unit = r_fol / current.lambda_moe  # the terms are linear in their weight
            print(f"  lambda_moe for {args.target:.0%} of the contrastive router gradient: "
                  f"{args.target * r_clip / unit:.3g} (now {current.lambda_moe:g})")  # fmt: skip
        a_clip, a_dist = med.get("grad_all/clip"), med.get("grad_all/distance")
        if a_clip and a_dist:
            unit = a_dist / current.lambda_distance
            print(f"  lambda_distance for {args.target:.0%} of the contrastive gradient: "
                  f"{args.target * a_clip / unit:.3g} (now {current.lambda_distance:g})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
