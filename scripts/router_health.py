"""Router health of a checkpoint's token MoEs on a data split (overall and per group), as JSON.

  python scripts/router_health.py --checkpoint assets/model/NAME.json --data DIR [--split test]

The figures (fairmoe.health): top-expert share, kept-load entropy, share of tokens kept by no
expert, per MoE; the report's before/after table is made with this script. ``influence``
(fairmoe.influence): what silencing all image experts, or each one, does to the calibrated
log-odds and the AUC (overall and per group), the per-scan routing figures (share of requests
over capacity, top-1 gate, gate entropy, distinct experts) and the experts' diversity.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _disc_routing(model, data, seed: int, bias: float):
    """fairmoe.influence.content_routing with the disc of each scan from the generator."""
    from fairmoe.influence import content_routing, generator_disc_masks

    size, grid = model.config.vision.image_size, model.grid
    masks = generator_disc_masks(list(data.ids), size, grid, seed=seed, bias=bias)
    return content_routing(model, data.pixels, masks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test", choices=["training", "validation", "test"])
    ap.add_argument("--out", type=Path, help="write the JSON here (default: print it)")
    ap.add_argument(
        "--synthetic-seed",
        type=int,
        help="the synthetic data's --seed: also report how disc and background patches route",
    )
    ap.add_argument("--synthetic-bias", type=float, default=1.0, help="the synthetic data's --bias")
    args = ap.parse_args(argv)
    import torch

    from fairmoe.data.tensors import load_split
    from fairmoe.model import load_model
    from fairmoe.training.evaluation import encode_split, routing_health, split_influence

    model, meta = load_model(args.checkpoint)
    data = load_split(
        args.data,
        args.split,
        image_size=model.config.vision.image_size,
        tokenizer=model.tokenizer(),
    )
    device = torch.device("cpu")
    health = routing_health(model, data, encode_split(model, data, device), device)
    influence = split_influence(model, data, meta.temperature)
    doc = {"checkpoint": meta.name, "split": args.split, "health": health, "influence": influence}
    if args.synthetic_seed is not None:
        doc["disc_routing"] = _disc_routing(model, data, args.synthetic_seed, args.synthetic_bias)
    text = json.dumps(doc, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
