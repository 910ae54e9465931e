"""Router health of a checkpoint's token MoEs on a data split (overall and per group), as JSON.

  python scripts/router_health.py --checkpoint assets/model/NAME.json --data DIR [--split test]

The figures (fairmoe.health): top-expert share, kept-load entropy, share of tokens kept by no
expert, per MoE; the report's before/after table is made with this script.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test", choices=["training", "validation", "test"])
    ap.add_argument("--out", type=Path, help="write the JSON here (default: print it)")
    args = ap.parse_args(argv)
    import torch

    from fairmoe.data.tensors import load_split
    from fairmoe.model import load_model
    from fairmoe.training.evaluation import encode_split, routing_health

    model, meta = load_model(args.checkpoint)
    data = load_split(
        args.data,
        args.split,
        image_size=model.config.vision.image_size,
        tokenizer=model.tokenizer(),
    )
    device = torch.device("cpu")
    health = routing_health(model, data, encode_split(model, data, device), device)
    text = json.dumps({"checkpoint": meta.name, "split": args.split, "health": health}, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
