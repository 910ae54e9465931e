"""Fit the assessability detector of a checkpoint and write it beside it.

python -m fairmoe.ood --checkpoint RUN.json --data FAIRVLMED_DIR [--out PATH_STEM]

Reference: the first ``--reference-limit`` training scans; threshold: the validation scans; both
with a benign copy of each scan (resized, JPEG, mirrored, turned, brightness and contrast) unless
``--no-benign-copies``. The test split is never read; the validation scans' race is read only to
report their false alarms per group (``info.calibration_flagged_by_race``). Writes ``<run>.ood.json`` and ``<run>.ood.safetensors`` beside the
checkpoint (or ``PATH_STEM.json``/``.safetensors``), which ``fairmoe.inference.Predictor`` loads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from fairmoe.checkpoint import CheckpointError
from fairmoe.data.fairvlmed import DataError
from fairmoe.model import load_model
from fairmoe.ood.detector import detector_path
from fairmoe.ood.fit import fit_detector


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fairmoe.ood", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="the run's metadata JSON")
    p.add_argument("--data", type=Path, required=True, help="a FairVLMed folder (its splits)")
    p.add_argument("--out", type=Path, default=None, help="path stem; default: <run>.ood beside")
    fit = p.add_argument_group("fitting")
    fit.add_argument("--reference-limit", type=int, default=2000, help="training scans used")
    fit.add_argument("--calibration-limit", type=int, default=None, help="validation scans used")
    fit.add_argument("--flag-rate", type=float, default=0.025, help="validation share flagged")
    fit.add_argument(
        "--orientation-rate", type=float, default=0.015, help="validation share flagged upside down"
    )
    fit.add_argument(
        "--no-benign-copies",
        action="store_true",
        help="fit on the scans alone (no resized/JPEG/mirrored/turned copies)",
    )
    fit.add_argument("--seed", type=int, default=0, help="draws of the benign copies")
    fit.add_argument("--batch-size", type=int, default=128)
    fit.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        model, meta = load_model(args.checkpoint)
        det = fit_detector(
            model,
            args.data,
            reference_limit=args.reference_limit,
            calibration_limit=args.calibration_limit,
            flag_rate=args.flag_rate,
            orientation_rate=args.orientation_rate,
            batch_size=args.batch_size,
            benign_copies=not args.no_benign_copies,
            seed=args.seed,
        )
    except (CheckpointError, DataError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = det.save(args.out if args.out is not None else detector_path(args.checkpoint))
    info = det.info
    print(
        f"{meta.name}: fitted on {info['n_reference']} training + {info['n_calibration']} "
        f"validation scans in {time.perf_counter() - t0:.0f} s; novelty threshold "
        f"{det.threshold:.2f}; validation scans flagged {info['calibration_flagged']:.1%} "
        f"(input checks {info['calibration_input_flagged']:.1%}, upside down "
        f"{info['calibration_orientation_flagged']:.1%})"
    )
    groups = info.get("calibration_flagged_by_race") or {}
    if groups:
        print("validation scans flagged per race group: " + ", ".join(
            f"{g} {v['flagged']:.1%} (n={v['n']})" for g, v in groups.items()))  # fmt: skip
    print(f"wrote {out} and {out.with_name(out.name.removesuffix('.json') + '.safetensors')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
