"""``python -m fairmoe.audit``: a scores CSV (and optionally its run's metadata) -> audit HTML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fairmoe.audit import AuditError, read_user_scores, write_audit
from fairmoe.checkpoint import CheckpointError, read_metadata
from fairmoe.metrics import STRATEGIES
from fairmoe.schema import ATTRIBUTE_CHOICES, attribute


def _attribute(name: str) -> str:
    try:
        return attribute(name).name
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fairmoe.audit",
        description="Write a self-contained offline HTML fairness audit of a scores CSV "
        "(columns id, label, score, race, gender, ethnicity, language) of any model.",
    )
    p.add_argument("--scores", required=True, type=Path, help="scores CSV")
    p.add_argument("--checkpoint", type=Path, help="the run's NAME.json: adds the model card")
    p.add_argument(
        "--attribute",
        default="race",
        type=_attribute,
        metavar="ATTR",
        help=f"one of {', '.join(ATTRIBUTE_CHOICES)} (two crossed: intersectional cells)",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--threshold",
        type=float,
        nargs="+",
        help="one threshold for everyone, or one per group of the attribute (default 0.5)",
    )
    how.add_argument("--strategy", choices=STRATEGIES, help="let a threshold strategy choose")
    p.add_argument(
        "--cost-ratio", type=float, default=4.0, help="miss / false-alarm cost (strategies)"
    )
    p.add_argument("--out", required=True, type=Path, help="HTML file to write")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        ss = read_user_scores(args.scores)
        meta = read_metadata(args.checkpoint) if args.checkpoint else None
        out = write_audit(
            args.out,
            ss,
            attr=args.attribute,
            threshold=args.threshold,
            strategy=args.strategy,
            cost_ratio=args.cost_ratio,
            meta=meta,
            source=args.scores.name,
            scores_path=args.scores,
        )
    except (AuditError, CheckpointError, OSError) as e:
        print(f"fairmoe.audit: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
