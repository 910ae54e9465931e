"""CPU inference options side by side: latency and agreement with eager fp32 on a test split.

python benchmarks/bench_inference.py --data DIR [--checkpoint FILE] [--threads 1] [--repeats 30]
                                     [--skip compile onnxruntime ...]

Options: eager fp32 (what the app runs), ``torch.compile``, channels-last, bf16 autocast, dynamic
int8 quantisation of the Linear layers (``torch.ao.quantization.quantize_dynamic``) and ONNX
Runtime (when ``onnxruntime``, ``onnx`` and ``onnxscript`` import; exported with torch.onnx's
dynamo exporter). Each scores the image tower to the two prompt cosines and the calibrated
probability. Timing calls alternate between the options. Prints per option the median latency at batch 1 and 8, the ratio to eager, the
largest |probability difference| to eager over the test split and how many test decisions (at
the 0.5 operating point) change. ``--data``: a FairVLMed folder, e.g. from
``python -m fairmoe.data.synthetic --out DIR --n 600 --seed 0``; checkpoint: runs.json's default.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from fairmoe.calibration import glaucoma_probability  # noqa: E402
from fairmoe.data.fairvlmed import normalize_scan  # noqa: E402
from fairmoe.inference import Predictor  # noqa: E402

Scorer = Callable[[torch.Tensor], np.ndarray]  # normalised (B, 3, S, S) -> cosines (B, 2)


class Cosines(nn.Module):
    """The image tower up to the prompt cosines: what a prediction's number depends on."""

    def __init__(self, model: nn.Module, prompts: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("prompts", prompts.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, _ = self.model.image_head(self.model.image_trunk(x))
        return features.float() @ self.prompts.T


def _eager(m: Cosines) -> Scorer:
    return lambda x: m(x).double().numpy()


def _channels_last(m: Cosines) -> Scorer:
    cl = copy.deepcopy(m).to(memory_format=torch.channels_last)
    return lambda x: cl(x.contiguous(memory_format=torch.channels_last)).double().numpy()


def _bf16(m: Cosines) -> Scorer:
    def run(x: torch.Tensor) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return m(x).double().numpy()

    return run


def _int8(m: Cosines) -> Scorer:
    from torch.ao.quantization import quantize_dynamic

    q = quantize_dynamic(copy.deepcopy(m), {nn.Linear}, dtype=torch.qint8)
    return lambda x: q(x).double().numpy()


def _compile(m: Cosines) -> Scorer:
    # dynamic=True ran 25-40x slower than eager here (guards fail on the routing's data-dependent
    # shapes); static shapes compile once per batch size, ~30 s each on 2 cores.
    c = torch.compile(copy.deepcopy(m), dynamic=False)
    return lambda x: c(x).double().numpy()


def _onnxruntime(m: Cosines) -> Scorer:
    import tempfile

    import onnxruntime as ort

    path = Path(tempfile.mkdtemp(prefix="fairmoe-onnx-")) / "cosines.onnx"
    x = torch.randn(2, 3, m.model.config.vision.image_size, m.model.config.vision.image_size)
    batch = torch.export.Dim("batch", min=1, max=256)
    torch.onnx.export(m, (x,), str(path), dynamo=True, input_names=["x"],
                      dynamic_shapes=({0: batch},))  # fmt: skip
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: sess.run(None, {"x": x.numpy()})[0].astype(np.float64)


OPTIONS: dict[str, Callable[[Cosines], Scorer]] = {
    "eager fp32": _eager,
    "torch.compile": _compile,
    "channels-last": _channels_last,
    "bf16 autocast": _bf16,
    "int8 dynamic (Linear)": _int8,
    "onnxruntime": _onnxruntime,
}
SKIP_NAMES = {"compile": "torch.compile", "channels-last": "channels-last", "bf16": "bf16 autocast",
              "int8": "int8 dynamic (Linear)", "onnxruntime": "onnxruntime"}  # fmt: skip


def _interleaved_ms(fns: dict[str, Scorer], x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median ms per call of each option, calls taken in turn so that a machine whose load
    changes during the run slows every option alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeats + 3):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn(x)
            if i >= 3:  # warm-up calls
                times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def _test_pixels(data: Path, image_size: int) -> torch.Tensor:
    from fairmoe.scoring import ScanDataset, fairvlmed_cases

    ds = ScanDataset(fairvlmed_cases(data, ["test"]), image_size)
    return torch.stack([ds[i]["pixels"] for i in range(len(ds))])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="FairVLMed folder (its test split)")
    p.add_argument("--checkpoint", type=Path)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the app: cores - 1)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--skip", nargs="*", default=[], choices=sorted(SKIP_NAMES))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    ckpt = (
        args.checkpoint
        or REPO / "assets" / json.loads((REPO / "assets" / "runs.json").read_text())["default"]
    )
    pred = Predictor(ckpt)
    m = Cosines(pred.model, pred.prompts).eval()
    x_all = normalize_scan(_test_pixels(args.data, pred.image_size))
    skip = {SKIP_NAMES[s] for s in args.skip}
    print(f"{pred.meta.name}: test split of {args.data} ({len(x_all)} scans), "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")  # fmt: skip
    head = f"{'option':24s} {'batch 1 ms':>10s} {'ratio':>6s} {'batch 8 ms':>10s} {'ratio':>6s}"
    print(head + f" {'max |dp|':>9s} {'decisions changed':>18s}  setup")
    fns, probs, setup = {}, {}, {}
    with torch.inference_mode():
        for name, make in OPTIONS.items():
            if name in skip:
                continue
            t = time.perf_counter()
            try:
                fn = make(m)
                cos = np.concatenate([fn(x_all[i : i + 8]) for i in range(0, len(x_all), 8)])
                fn(x_all[:1])  # both timed shapes are ready before timing starts
            except Exception as e:  # an option this machine cannot run is reported, not fatal
                print(f"{name:24s} unavailable: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
                continue
            fns[name], setup[name] = fn, time.perf_counter() - t
            probs[name] = glaucoma_probability(cos, temperature=pred.temperature)
        t1, t8 = (_interleaved_ms(fns, x_all[:b], args.repeats) for b in (1, 8))
    ref = probs["eager fp32"]
    for name in fns:
        diff = float(np.abs(probs[name] - ref).max())
        changed = int(((probs[name] >= pred.threshold) != (ref >= pred.threshold)).sum())
        r1, r8 = t1[name] / t1["eager fp32"], t8[name] / t8["eager fp32"]
        print(f"{name:24s} {t1[name]:10.2f} {r1:6.2f} {t8[name]:10.2f} {r8:6.2f} "
              f"{diff:9.1e} {changed:12d} / {len(ref):3d}  {setup[name]:.1f} s")  # fmt: skip
    print("adopt only what is faster with no decision changed and max |dp| < 1e-3")
    return 0


if __name__ == "__main__":
    sys.exit(main())
