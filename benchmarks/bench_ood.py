"""The assessability check measured: false alarms on in-distribution scans, detection of negatives.

python benchmarks/bench_ood.py [--checkpoint FILE] [--data DIR] [--per-category 40] [--save PATH]

Fits ``fairmoe.ood`` on the folder's training (reference) and validation (calibration) splits,
then checks the test split (positives; also left-right flipped, which is in-distribution: both
eyes are in the data), the shipped example cases, and the negative set of
``fairmoe.ood.negatives`` built from the test scans and the images installed packages ship.
Prints the false-alarm rate (overall, per race, per label), detection per negative category
(all checks, input checks alone, novelty alone, and today's embedding z-distance of the
checkpoint metadata for comparison), AUROCs, and the time per scan.

``--data``: a FairVLMed folder; default: generated once with
``python -m fairmoe.data.synthetic --out /tmp/fairmoe-ood-bench-n2000-s0-b1 --n 2000 --seed 0
--bias 1 --workers 1``. ``--checkpoint``: default ``assets/runs.json``'s default run.
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

from fairmoe.calibration import OODReference  # noqa: E402
from fairmoe.data.fairvlmed import (  # noqa: E402
    FairVLMedDataset,
    normalize_scan,
    preprocess_scan,
    read_npz,
)
from fairmoe.model import load_model  # noqa: E402
from fairmoe.ood import AssessabilityDetector, fit_detector  # noqa: E402
from fairmoe.ood.negatives import build_negatives  # noqa: E402
from fairmoe.schema import ATTRIBUTES  # noqa: E402

DEFAULT_DATA = Path("/tmp/fairmoe-ood-bench-n2000-s0-b1")


def _default_checkpoint() -> Path:
    return REPO / "assets" / json.loads((REPO / "assets" / "runs.json").read_text())["default"]


def _ensure_data(path: Path | None) -> Path:
    if path is not None:
        return path
    if not (DEFAULT_DATA / "data_summary.csv").is_file():
        cmd = [sys.executable, "-m", "fairmoe.data.synthetic", "--out", str(DEFAULT_DATA)]
        cmd += ["--n", "2000", "--seed", "0", "--bias", "1", "--workers", "1", "--overwrite"]
        print("generating:", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, cwd=REPO, check=True)
    return DEFAULT_DATA


def _assess(
    det: AssessabilityDetector,
    model,
    images: list[np.ndarray],
    colour: list[bool] | None = None,
    bs: int = 64,
) -> dict:
    """Per scan: flagged by any check, by the input checks, by novelty; the novelty score."""
    colour = colour or [False] * len(images)
    res = [
        a
        for i in range(0, len(images), bs)
        for a in det.assess(model, images[i : i + bs], colour=colour[i : i + bs])
    ]
    novelty = np.array([a.novelty for a in res])
    return {
        "any": np.array([not a.assessable for a in res]),
        "input": np.array([any(c != "novelty" for c in a.failed_checks) for a in res]),
        "upside": np.array(["orientation" in a.failed_checks for a in res]),
        "novelty": novelty > det.threshold,
        "score": novelty,
        "layers": {k: np.array([a.layer_scores[k] for a in res]) for k in det.layers},
    }


@torch.inference_mode()
def _old_check(model, meta, images: list[np.ndarray], size: int) -> np.ndarray | None:
    """Today's check: the checkpoint's diagonal z-distance on the normalised final embedding."""
    if not meta.ood:
        return None
    ref = OODReference.from_dict(meta.ood)
    out = []
    for i in range(0, len(images), 64):
        px = torch.stack([preprocess_scan(im, size) for im in images[i : i + 64]])
        feats = model.encode_image(normalize_scan(px))
        out += [ref.distance(f) for f in feats]
    return np.array(out) > ref.threshold


def _timing(det: AssessabilityDetector, model, images: list[np.ndarray]) -> dict[str, float]:
    from fairmoe.ood.quality import scan_statistics

    one = []
    for im in images[:30]:
        t = time.perf_counter()
        det.assess(model, [im])
        one.append(time.perf_counter() - t)
    t = time.perf_counter()
    for im in images[:30]:
        scan_statistics(im)
    checks = (time.perf_counter() - t) / min(30, len(images))
    t = time.perf_counter()
    det.assess(model, images[:64])
    batch = (time.perf_counter() - t) / min(64, len(images))
    return {"single": float(np.median(one)), "input_checks": checks, "batched": batch}


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    y = np.r_[np.zeros(len(pos)), np.ones(len(neg))]
    return float(roc_auc_score(y, np.r_[pos, neg]))


def _combined(r: dict) -> np.ndarray:
    """The full detector as one ranking: a failed input check ranks above every novelty score."""
    return r["score"] + np.where(r["input"], 1e6, 0.0)


def _print_positives(test: dict, hflip: dict, old: np.ndarray | None, ds, examples: dict) -> None:
    print(f"\n{'in-distribution':38s} {'n':>5s} {'flagged':>8s} {'input':>6s} {'upside':>6s} "
          f"{'novel':>6s}")  # fmt: skip
    for name, r in (("test split", test), ("test split, left-right flipped", hflip)):
        n = len(r["any"])
        print(f"{name:38s} {n:5d} {r['any'].mean():8.1%} {r['input'].mean():6.1%} "
              f"{r['upside'].mean():6.1%} {r['novelty'].mean():6.1%}")  # fmt: skip
    race = ds.attribute_codes("race")
    for code, group in enumerate(ATTRIBUTES["race"].groups):
        sel = race == code
        print(f"  race {group:31s} {sel.sum():5d} {test['any'][sel].mean():8.1%}")
    for label, name in ((0, "no glaucoma"), (1, "glaucoma")):
        sel = ds.labels == label
        print(f"  label {name:30s} {sel.sum():5d} {test['any'][sel].mean():8.1%}")
    n_ex = len(examples["any"])
    print(f"{'shipped example cases':38s} {n_ex:5d} {examples['any'].mean():8.1%}")
    if old is not None:
        print(f"{'test split, today check (embedding z)':38s} {len(old):5d} {old.mean():8.1%}")


def _print_negatives(neg: dict, cats: np.ndarray, old: np.ndarray | None) -> None:
    print(f"\n{'negative category':18s} {'n':>4s} {'detected':>9s} {'input':>6s} {'upside':>6s} "
          f"{'novel':>6s} {'today':>6s}")  # fmt: skip
    for c in dict.fromkeys(cats):
        s = cats == c
        today = f"{old[s].mean():6.0%}" if old is not None else "     -"
        print(f"{c:18s} {s.sum():4d} {neg['any'][s].mean():9.0%} {neg['input'][s].mean():6.0%} "
              f"{neg['upside'][s].mean():6.0%} {neg['novelty'][s].mean():6.0%} {today}")  # fmt: skip
    today = f"{old.mean():6.1%}" if old is not None else "     -"
    print(f"{'all':18s} {len(cats):4d} {neg['any'].mean():9.1%} {neg['input'].mean():6.1%} "
          f"{neg['upside'].mean():6.1%} {neg['novelty'].mean():6.1%} {today}")  # fmt: skip
    upright = ~np.isin(cats, ["vertical_flip", "rotate_180"])
    print(f"{'all but upside-down':18s} {upright.sum():4d} {neg['any'][upright].mean():9.1%}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--reference-limit", type=int, default=2000)
    p.add_argument("--flag-rate", type=float, default=0.025)
    p.add_argument("--orientation-rate", type=float, default=0.015)
    p.add_argument("--per-category", type=int, default=40)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--save", type=Path, default=None, help="write the fitted detector here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = _ensure_data(args.data)
    model, meta = load_model(args.checkpoint or _default_checkpoint())
    size = model.config.vision.image_size
    t0 = time.perf_counter()
    det = fit_detector(
        model,
        data,
        reference_limit=args.reference_limit,
        flag_rate=args.flag_rate,
        orientation_rate=args.orientation_rate,
    )
    fit_s = time.perf_counter() - t0
    if args.save:
        print("saved", det.save(args.save))
    ds = FairVLMedDataset(data, "test", image_size=size, drop_unknown=False)
    scans = [read_npz(r.path)["image"] for r in ds.records]
    test = _assess(det, model, scans)
    hflip = _assess(det, model, [s[:, ::-1] for s in scans])
    ex_files = sorted((REPO / "assets" / "examples").glob("*.npz"))
    examples = _assess(det, model, [read_npz(f)["image"] for f in ex_files])
    negatives = build_negatives(scans, per_category=args.per_category)
    neg = _assess(det, model, negatives.images, negatives.colour)
    cats = np.array(negatives.categories)
    old_test = _old_check(model, meta, scans, size)
    old_neg = _old_check(model, meta, negatives.images, size)
    timing = _timing(det, model, scans)
    print(f"checkpoint {meta.name}  data {data}  fit {fit_s:.0f} s on {det.info['n_reference']} "
          f"reference + {det.info['n_calibration']} validation scans; novelty threshold "
          f"{det.threshold:.2f}; validation flagged {det.info['calibration_flagged']:.1%}")  # fmt: skip
    _print_positives(test, hflip, old_test, ds, examples)
    _print_negatives(neg, cats, old_neg)
    print(f"\nAUROC test vs negatives: novelty alone {_auroc(test['score'], neg['score']):.3f}, "
          f"combined {_auroc(_combined(test), _combined(neg)):.3f}")  # fmt: skip
    print("  per layer: " + ", ".join(
        f"{k} {_auroc(test['layers'][k], neg['layers'][k]):.3f}" for k in det.layers))  # fmt: skip
    print(f"time per scan: {timing['single'] * 1e3:.1f} ms alone (input checks "
          f"{timing['input_checks'] * 1e3:.1f} ms), {timing['batched'] * 1e3:.1f} ms in a batch "
          f"of 64 ({args.threads} thread)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
