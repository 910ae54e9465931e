"""Command line: ``python -m fairmoe.data.synthetic --out DIR --n N --seed S [--bias B]``.

``main`` lives here rather than in ``__main__.py``: the package re-exports it, and a package that
imports its own ``__main__`` makes ``python -m`` warn that the module was already imported.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

from .config import MAX_BIAS, MECHANISMS, SCENARIOS, mechanisms_config
from .writing import generate


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m fairmoe.data.synthetic --out DIR --n N --seed S [--bias B] [--workers W]``."""
    ap = argparse.ArgumentParser(
        prog="python -m fairmoe.data.synthetic",
        description="Write a synthetic Harvard-FairVLMed folder with controllable group bias.",
    )
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--n", type=int, default=10_000, help="number of patients (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bias", type=float, default=1.0, help=f"0 unbiased .. {MAX_BIAS}; default 1")
    ap.add_argument(
        "--mechanisms",
        choices=MECHANISMS,
        default="all",
        help="which bias mechanisms --bias turns on (default all; see SYNTHETIC.md)",
    )
    ap.add_argument(
        "--scenario",
        choices=tuple(SCENARIOS),
        default=None,
        help="a fair-test scenario with a known cause (sets --mechanisms; see SYNTHETIC.md)",
    )
    ap.add_argument(
        "--splits",
        default=None,
        metavar="TRAIN,VAL,TEST",
        help="split fractions (default 0.7,0.1,0.2, FairVLMed's); e.g. 0,0,1 for a test-only draw",
    )
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    ap.add_argument("--overwrite", action="store_true", help="replace a data set already in --out")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        if args.scenario is not None and args.mechanisms != "all":
            raise ValueError("--scenario sets the mechanisms itself; leave out --mechanisms")
        mechanisms = (
            args.mechanisms if args.scenario is None else SCENARIOS[args.scenario].mechanisms
        )
        config = mechanisms_config(mechanisms)
        if args.splits is not None:
            config = replace(config, split_fractions=_fractions(args.splits))
        root = generate(
            args.out,
            n=args.n,
            seed=args.seed,
            bias=args.bias,
            workers=args.workers,
            config=config,
            overwrite=args.overwrite,
            scenario=args.scenario,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.n} samples to {root} in {time.perf_counter() - t0:.1f} s")
    return 0


def _fractions(text: str) -> tuple[float, float, float]:
    """``--splits``: three non-negative fractions that add up to 1 (ValueError otherwise)."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) < 0 or abs(sum(parts) - 1) > 1e-3:
        raise ValueError(f"--splits takes three fractions that add up to 1, got {text!r}")
    return parts  # type: ignore[return-value]
