"""Training throughput of Fair-MoE vs plain CLIP (same config, batch, device), and CPU latency.

  python benchmarks/bench_train.py [--config demo] [--batch-size 32] [--steps 6] [--device auto]

Prints images/s (median over steps after warm-up) for: clip (contrastive loss only), fairmoe with
the contrastive loss only (the MoE layers' cost), and fairmoe with the full FOL on in-batch groups;
the ratios against clip; then the median latency of one case (image + note) through the Predictor
path (encode image with routing + encode note) for the demo config on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fairmoe import losses  # noqa: E402
from fairmoe.model import create_model, get_config  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(
    method: str, cfg: str, batch: int, steps: int, device: torch.device, fol: bool
) -> float:
    torch.manual_seed(0)
    model = create_model(cfg, method=method, n_groups=3).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    size = get_config(cfg).vision.image_size
    x = torch.randn(batch, 3, size, size, device=device)
    t = torch.randint(1, 49000, (batch, 77), device=device)
    groups = torch.arange(batch, device=device) % 3
    lc = losses.LossConfig()
    times = []
    for i in range(steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(x, t)
        img, txt, scale = out.image_features.float(), out.text_features.float(), out.logit_scale
        loss = losses.clip_contrastive_loss(img, txt, scale)
        if fol:
            dist = losses.similarity_distribution(img, txt, scale, form=lc.distance_form)
            group_routing = [{k: type(r)(*[v[groups == g] for v in r]) for k, r in out.routing.items()}
                             for g in range(3)]  # fmt: skip
            fair, _ = losses.fairness_oriented_loss(
                out.routing, group_routing, dist, [dist[groups == g] for g in range(3)],
                variant="paper", lambda_moe=lc.lambda_moe, lambda_distance=lc.lambda_distance,
                blur=lc.blur,
            )  # fmt: skip
            loss = loss + fair
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


@torch.inference_mode()
def latency(cfg: str, repeats: int) -> tuple[float, float]:
    from fairmoe.data.fairvlmed import normalize_scan, preprocess_scan

    out = []
    for method in ("clip", "fairmoe"):
        torch.manual_seed(0)
        model = create_model(cfg, method=method, n_groups=3).eval()
        tok = model.tokenizer()
        scan = (torch.rand(664, 512) * 255).to(torch.uint8).numpy()
        note = "Moderate primary open-angle glaucoma OU; CDR 0.7; IOP 24 mmHg on latanoprost."
        times = []
        for i in range(repeats + 3):
            t0 = time.perf_counter()
            x = normalize_scan(preprocess_scan(scan, model.config.vision.image_size)[None])
            model.encode_image_with_routing(x)
            model.encode_text_with_routing(tok([note]))
            if i >= 3:
                times.append(time.perf_counter() - t0)
        out.append(statistics.median(times) * 1000)
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config", default="demo")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--latency-repeats", type=int, default=20)
    args = ap.parse_args(argv)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                       ("cpu" if args.device == "auto" else args.device))  # fmt: skip
    name = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"device: {name}; config {args.config}; batch {args.batch_size}; median of {args.steps} steps"
    )
    clip = throughput("clip", args.config, args.batch_size, args.steps, dev, fol=False)
    moe = throughput("fairmoe", args.config, args.batch_size, args.steps, dev, fol=False)
    full = throughput("fairmoe", args.config, args.batch_size, args.steps, dev, fol=True)
    print(f"clip                      {clip:8.1f} images/s")
    print(f"fairmoe (contrastive)     {moe:8.1f} images/s   ratio {moe / clip:.2f}x")
    print(f"fairmoe (contrastive+FOL) {full:8.1f} images/s   ratio {full / clip:.2f}x")
    c_ms, f_ms = latency(args.config, args.latency_repeats)
    print(
        f"CPU latency, one case (image + note), {args.config}: clip {c_ms:.1f} ms, "
        f"fairmoe {f_ms:.1f} ms (median of {args.latency_repeats})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
