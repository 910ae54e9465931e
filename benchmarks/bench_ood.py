"""The assessability check measured on fresh test scans: benign copies, false alarms per group,
detection of negatives.

python benchmarks/bench_ood.py [--checkpoint FILE] [--detector FILE | --fit] [--data DIR]
                               [--copies 150] [--per-category 20] [--json PATH]

Checks the test split of a synthetic set drawn with a seed the project never trained or fitted
on (the detector and the model never saw these patients):

1. benign copies: ``--copies`` test scans (every k-th), each copied by every transform of
   ``fairmoe.ood.benign.BENCHMARK`` (resized 0.5x-1.5x, JPEG q60/q80, mirrored, rotated +-10
   degrees, brightness and contrast +-15%): the share refused per transform (goal <= 5%);
2. false alarms: every unmodified test scan (2,000 with the default data), overall and per
   race group with the group's count and a 95% Wilson interval (goal <= 5%, groups within 2
   percentage points: with 150 scans in a group, one scan is 0.7 points); the groups are read
   for this report only: the detector never sees them;
3. detection of the negative set of ``fairmoe.ood.negatives`` (built from the test scans and the
   images installed packages ship), per category;
and the time per scan. Each refusal is split into the check that made it: input checks,
upside-down check, novelty.

``--detector``: default the checkpoint's own (``RUN.ood.json`` beside it, what the app serves);
``--fit`` fits one on ``--data``'s training and validation splits instead. ``--data``: a
FairVLMed folder; default: generated once (about 3 minutes on 2 cores) with ``python -m
fairmoe.data.synthetic --out /tmp/fairmoe-ood-bench-n10000-s2207-b1 --n 10000 --seed 2207
--bias 1`` (2,000 test scans: about 150 Asian, 300 Black and 1,550 White patients).
``--checkpoint``: default ``assets/runs.json``'s default run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from fairmoe.data.fairvlmed import FairVLMedDataset, read_npz  # noqa: E402
from fairmoe.model import load_model  # noqa: E402
from fairmoe.ood import AssessabilityDetector, detector_path, fit_detector  # noqa: E402
from fairmoe.ood.benign import BENCHMARK, apply  # noqa: E402
from fairmoe.ood.negatives import build_negatives  # noqa: E402
from fairmoe.schema import ATTRIBUTES  # noqa: E402

SEED, N_CASES = 2207, 10_000  # a seed no shipped model or detector was trained or fitted on
DEFAULT_DATA = Path(f"/tmp/fairmoe-ood-bench-n{N_CASES}-s{SEED}-b1")
UPSIDE_DOWN = ("rotate_180", "vertical_flip")


def _default_checkpoint() -> Path:
    return REPO / "assets" / json.loads((REPO / "assets" / "runs.json").read_text())["default"]


def _ensure_data(path: Path | None) -> Path:
    if path is not None:
        return path
    if not (DEFAULT_DATA / "data_summary.csv").is_file():
        cmd = [sys.executable, "-m", "fairmoe.data.synthetic", "--out", str(DEFAULT_DATA)]
        cmd += ["--n", str(N_CASES), "--seed", str(SEED), "--bias", "1", "--overwrite"]
        print("generating:", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, cwd=REPO, check=True)
    return DEFAULT_DATA


def _assess(
    det: AssessabilityDetector,
    model,
    images: list[np.ndarray],
    colour: list[bool] | None = None,
    bs: int = 64,
) -> dict[str, np.ndarray]:
    """Per scan: refused by any check, by the input checks, upside down, by novelty; the score."""
    colour = colour or [False] * len(images)
    res = [
        a
        for i in range(0, len(images), bs)
        for a in det.assess(model, images[i : i + bs], colour=colour[i : i + bs])
    ]
    return {
        "any": np.array([not a.assessable for a in res]),
        "input": np.array(
            [any(c not in ("orientation", "novelty") for c in a.failed_checks) for a in res]
        ),
        "upside": np.array(["orientation" in a.failed_checks for a in res]),
        "novelty": np.array(["novelty" in a.failed_checks for a in res]),
        "score": np.array([a.novelty for a in res]),
    }


def _rates(r: dict[str, np.ndarray], sel: np.ndarray | None = None) -> dict[str, float]:
    sel = np.ones(len(r["any"]), bool) if sel is None else sel
    out = {k: float(r[k][sel].mean()) if sel.any() else float("nan") for k in _CHECKS}
    return {"n": int(sel.sum()), **out}


_CHECKS = ("any", "input", "upside", "novelty")
_HEAD = f"{'n':>5s} {'refused':>8s} {'input':>6s} {'upside':>6s} {'novel':>6s}"


def _row(name: str, r: dict[str, float], width: int = 24) -> str:
    return (f"{name:{width}s} {r['n']:5d} {r['any']:8.1%} {r['input']:6.1%} {r['upside']:6.1%} "
            f"{r['novelty']:6.1%}")  # fmt: skip


def _wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``p`` of ``n``."""
    if n == 0:
        return float("nan"), float("nan")
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(centre - half), float(centre + half)


def _timing(det: AssessabilityDetector, model, images: list[np.ndarray]) -> dict[str, float]:
    one = []
    for im in images[:20]:
        t = time.perf_counter()
        det.assess(model, [im])
        one.append(time.perf_counter() - t)
    t = time.perf_counter()
    det.assess(model, images[:64])
    return {"single": float(np.median(one)), "batched": (time.perf_counter() - t) / 64}


def _detector(args: argparse.Namespace, model, checkpoint: Path, data: Path):
    if not args.fit:
        path = args.detector or detector_path(checkpoint)
        return AssessabilityDetector.load(path, model), f"{path.name} (as shipped)"
    t0 = time.perf_counter()
    det = fit_detector(model, data, benign_copies=not args.no_benign_copies)
    if args.save:
        print("saved", det.save(args.save))
    return det, f"fitted on {data.name} in {time.perf_counter() - t0:.0f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--detector", type=Path, default=None, help="default: beside the checkpoint")
    p.add_argument("--fit", action="store_true", help="fit a detector on --data instead")
    p.add_argument("--no-benign-copies", action="store_true", help="with --fit: scans alone")
    p.add_argument("--save", type=Path, default=None, help="with --fit: write the detector here")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--copies", type=int, default=150, help="test scans copied per transform")
    p.add_argument("--per-category", type=int, default=20, help="negatives per category")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    data = _ensure_data(args.data)
    checkpoint = args.checkpoint or _default_checkpoint()
    model, meta = load_model(checkpoint)
    det, how = _detector(args, model, checkpoint, data)
    ds = FairVLMedDataset(data, "test", image_size=8, drop_unknown=False)
    scans = [read_npz(r.path)["image"] for r in ds.records]
    out: dict = {"checkpoint": meta.name, "detector": how, "data": str(data)}

    test = _assess(det, model, scans)
    step = max(1, len(scans) // args.copies)
    sample = scans[::step][: args.copies]
    copies = {"original": _rates(_assess(det, model, sample))}
    for name, transform in BENCHMARK.items():
        copies[name] = _rates(_assess(det, model, [apply(s, transform) for s in sample]))
    negatives = build_negatives(scans, per_category=args.per_category)
    neg = _assess(det, model, negatives.images, negatives.colour)
    cats = np.array(negatives.categories)
    timing = _timing(det, model, scans)

    print(f"checkpoint {meta.name}; detector {how}; novelty threshold {det.threshold:.2f}")
    print(f"data {data}: test split, {len(scans)} scans\n")
    print(f"{'benign copies of test scans':24s} {_HEAD}  (every {step}th test scan)")
    for name, r in copies.items():
        print(_row(name, r) + ("" if name == "original" or r["any"] <= 0.05 else "  > 5%"))
    worst = max((r["any"], k) for k, r in copies.items() if k != "original")
    print(f"{'worst transform':24s} {worst[1]} {worst[0]:.1%} (goal <= 5% each)")

    print(f"\n{'false alarms (unmodified)':24s} {_HEAD}  95% interval")
    groups = {"all test scans": _rates(test)}
    race = ds.attribute_codes("race")
    for code, group in enumerate(ATTRIBUTES["race"].groups):
        groups[f"race {group}"] = _rates(test, race == code)
    if (race < 0).any():
        groups["race unknown"] = _rates(test, race < 0)
    for label, name in ((0, "no glaucoma"), (1, "glaucoma")):
        groups[f"label {name}"] = _rates(test, ds.labels == label)
    for name, r in groups.items():
        lo, hi = _wilson(r["any"], r["n"])
        print(_row(name, r) + f"  {lo:5.1%}-{hi:5.1%}")
    by_race = [r["any"] for k, r in groups.items() if k.startswith("race ") and r["n"] >= 30]
    gap = max(by_race) - min(by_race)
    print(f"{'race gap (max - min)':24s} {gap * 100:.1f} percentage points (goal <= 2)")

    print(f"\n{'negatives (detected)':24s} {_HEAD}")
    detection = {c: _rates(neg, cats == c) for c in dict.fromkeys(cats)}
    detection["all"] = _rates(neg)
    detection["all but upside-down"] = _rates(neg, ~np.isin(cats, UPSIDE_DOWN))
    for name, r in detection.items():
        print(_row(name, r))
    y = np.r_[np.zeros(len(test["score"])), np.ones(len(neg["score"]))]
    combined = np.r_[test["score"] + 1e6 * test["input"], neg["score"] + 1e6 * neg["input"]]
    auroc = float(roc_auc_score(y, combined))
    print(f"\nAUROC test vs negatives (input checks, then novelty): {auroc:.3f}")
    print(f"time per scan: {timing['single'] * 1e3:.0f} ms alone, {timing['batched'] * 1e3:.0f} ms "
          f"in a batch of 64 ({args.threads} threads); bench {time.perf_counter() - t_start:.0f} s")  # fmt: skip
    out |= {"copies": copies, "false_alarms": groups, "race_gap": gap, "negatives": detection,
            "auroc": auroc, "timing": timing}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
