"""Where the image experts should sit: Fair-MoE placements trained from one pretrained start.

  python scripts/placement_study.py --data DIR --init assets/model/clip-race-small-pretrain2-s0.json \
      --out runs/placement [--seeds 0 1] [--only early-avg,...]
  python scripts/placement_study.py --out runs/placement --table    # PLACEMENTS.md from results

Every placement is the shipped Fair-MoE run (the `cpu` profile of scripts/train_all.py: `small`,
race, 2 epochs, lr 2e-4, batch 64) with one change to where or how the image token MoE routes.
Runs go seed-major (every placement at seed 0 first) so that a cut-short study still compares
all placements; finished runs are listed in results.jsonl and skipped on a rerun. Each row has
the influence and routing figures (fairmoe.influence) and the disc-vs-background routing on the
validation and test splits. The placement is chosen on validation figures only (``choose``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EARLY = ("moe.image_block", 1)  # the middle of the small tower's 3 blocks: block 2 attends to it
# Decisive routing: gates renormalised over the top-k, capacity factor 1.25 (no dropping by
# construction), ST-MoE's router z-loss. Diversified experts: upcycling noise on the copies.
DECISIVE = (("moe.renormalize", True), ("moe.capacity", 1.25))
NOISE = (("moe.expert_noise", 0.1),)
Z_LOSS = {"lambda_z": 1e-3}

FAST = {"moe_lr_scale": 10.0}  # routers and experts at 10x the backbone's learning rate
# The decisive router collapsed onto one expert at the default load balance (0.01): 10x it.
BALANCED = {**Z_LOSS, "lambda_balance": 0.1}

# name -> (model overrides, loss overrides, training overrides, what it tests)
PLACEMENTS: dict[str, tuple[tuple, dict, dict, str]] = {
    "last-avg": ((), {}, {}, "release 2: last block, average pooling (the shipped model)"),
    "early-avg": ((EARLY,), {}, {}, "MoE in block 2 of 3: the last block's attention mixes it in"),
    "early-cls": ((EARLY, ("vision.pool_type", "tok")), {}, {}, "as early-avg with CLS pooling"),
    "early-noise": ((EARLY, *NOISE), {}, {}, "as early-avg, experts diversified (noise 0.1)"),
    "early-decisive": ((EARLY, *DECISIVE), Z_LOSS, {}, "as early-avg, decisive router"),
    "early-all": ((EARLY, *NOISE, *DECISIVE), Z_LOSS, {}, "early, diversified and decisive"),
    "last-all": ((*NOISE, *DECISIVE), Z_LOSS, {}, "last block, diversified and decisive"),
    "first-all": ((("moe.image_block", 0), *NOISE, *DECISIVE), Z_LOSS, {}, "block 1, both"),
    "early-balanced": ((EARLY, *NOISE, *DECISIVE), BALANCED, {},
                       "as early-all, load balance 0.1 instead of 0.01"),
    "first-balanced": ((("moe.image_block", 0), *NOISE, *DECISIVE), BALANCED, {},
                       "as first-all, load balance 0.1"),
    "early-balanced-fast": ((EARLY, *NOISE, *DECISIVE), BALANCED, FAST,
                            "as early-balanced, the MoEs at 10x the learning rate"),
    "first-balanced-fast": ((("moe.image_block", 0), *NOISE, *DECISIVE), BALANCED, FAST,
                            "as first-balanced, the MoEs at 10x the learning rate"),
    "first-balanced-c2": ((("moe.image_block", 0), *NOISE, *DECISIVE, ("moe.capacity", 2.0)),
                          BALANCED, {}, "as first-balanced, capacity factor 2"),
    "first-balanced-t01": ((("moe.image_block", 0), *NOISE, *DECISIVE,
                            ("moe.router_temperature", 0.1)), BALANCED, {},
                           "as first-balanced, router temperature 0.1"),
}  # fmt: skip
PROFILE = dict(method="fairmoe", attribute="race", model="small", epochs=2, lr=2e-4,
               batch_size=64, text_source="mixed")  # fmt: skip
DATA_SEED, DATA_BIAS = 0, 1.0  # the generator's draw of --data (scripts/train_all.py DATA_SEED)


def _config(name: str, seed: int, init: str, limit: int | None = None):
    import dataclasses

    from fairmoe import losses
    from fairmoe.training import TrainConfig

    overrides, loss, training, _ = PLACEMENTS[name]
    return TrainConfig(
        **PROFILE,
        **training,
        seed=seed,
        init=init,
        limit=limit,
        tag=f"place-{name}",
        model_overrides=tuple(overrides),
        loss=dataclasses.replace(losses.LossConfig(), **loss),
    )


def _row(name: str, seed: int, result: dict, ckpt: Path, data: Path, cache: Path) -> dict:
    """The study's figures of one finished run, on validation and test."""
    from fairmoe.data.tensors import load_split
    from fairmoe.influence import content_routing, generator_disc_masks
    from fairmoe.model import load_model
    from fairmoe.training.evaluation import split_influence

    model, meta = load_model(ckpt)
    row = {"placement": name, "seed": seed, "run": meta.name,
           "train_seconds": result["train_seconds"], "best_epoch": result["best_epoch"]}  # fmt: skip
    for split in ("validation", "test"):
        d = load_split(data, split, image_size=model.config.vision.image_size,
                       tokenizer=model.tokenizer(), cache_dir=cache)  # fmt: skip
        # the test split's figures were measured at the end of training (RunMetadata.influence)
        inf = meta.influence if split == "test" else split_influence(model, d, meta.temperature)
        masks = generator_disc_masks(list(d.ids), model.config.vision.image_size, model.grid,
                                     seed=DATA_SEED, bias=DATA_BIAS)  # fmt: skip
        disc = content_routing(model, d.pixels, masks)
        report = result[split]
        kept_share = (meta.routing_health or {}).get("token_img", {}).get("overall", {})
        row[split] = {
            "auc": report["auc"],
            "race_es_auc": report["attributes"]["race"]["es_auc"],
            "race_auc": {g["name"]: g["auc"] for g in report["attributes"]["race"]["groups"]},
            "influence": inf["silenced"],
            "influence_by_race": {
                g: v["mean_abs_delta_logit"] for g, v in inf["by_group"]["race"].items()
            },
            "leave_one_out_max": max(e["mean_abs_delta_logit"] for e in inf["leave_one_out"]),
            "routing": inf["routing"],
            "expert_diversity": inf["expert_diversity"],
            "disc_mi_bits": disc["mutual_information_bits"],
            "disc_mi_max_bits": disc["patch_type_entropy_bits"],
            "disc_first_expert": disc["disc_first_expert"],
            "background_first_expert": disc["background_first_expert"],
        }
        if split == "test":  # the checkpoint's health figures are of the test split
            row[split]["top_expert_share"] = kept_share.get("top_expert_share")
        else:  # the selected epoch's validation health, from the training log
            epoch = result["history"][result["best_epoch"] - 1]
            row[split]["top_expert_share"] = epoch.get("token_img/top_expert_share")
    return row


# The goals for the shipped model, as (label, figure, test).
GOALS = (
    ("influence >= 0.5 or dAUC >= 0.05",
     lambda f: f["influence"]["mean_abs_delta_logit"] >= 0.5 or (f["influence"]["delta_auc"] or 0) >= 0.05),
    ("over capacity <= 20%", lambda f: f["routing"]["median_over_capacity_share"] <= 0.2),
    ("kept gate >= 0.2", lambda f: f["routing"]["mean_kept_gate"] >= 0.2),
    ("top-expert share <= 0.3", lambda f: (f["top_expert_share"] or 1.0) <= 0.3),
)  # fmt: skip
COLUMNS = (
    ("AUC", lambda f: f["auc"]),
    ("race ES-AUC", lambda f: f["race_es_auc"]),
    ("mean abs dlogit silenced", lambda f: f["influence"]["mean_abs_delta_logit"]),
    ("dAUC silenced", lambda f: f["influence"]["delta_auc"]),
    ("max leave-one-out", lambda f: f["leave_one_out_max"]),
    ("over capacity", lambda f: f["routing"]["median_over_capacity_share"]),
    ("kept gate", lambda f: f["routing"]["mean_kept_gate"]),
    ("top-1 gate", lambda f: f["routing"]["mean_top1_gate"]),
    ("top-expert share", lambda f: f["top_expert_share"]),
    ("gate entropy", lambda f: f["routing"]["mean_gate_entropy"]),
    ("diversity", lambda f: f["expert_diversity"]),
    ("disc MI bits", lambda f: f["disc_mi_bits"]),
)


def _mean_sd(values: list[float]) -> str:
    import numpy as np

    v = np.array([x for x in values if x is not None], float)
    if not len(v):
        return "n/a"
    return f"{v.mean():.3f}" + (f" +- {v.std(ddof=1):.3f}" if len(v) > 1 else "")


def choose(rows: list[dict]) -> tuple[str, dict[str, tuple]]:
    """The placement to ship, on validation figures only: most goals met by every seed, with
    validation AUC within 0.01 of release 2's (last-avg) as one more goal; ties broken by the
    mean validation influence. Returns the name and each placement's (goals met, influence)."""
    import numpy as np

    by = {}
    for r in rows:
        by.setdefault(r["placement"], []).append(r["validation"])
    ref = np.mean([f["auc"] for f in by.get("last-avg", [])] or [0.0])
    scores = {}
    for name, fs in by.items():
        met = sum(all(test(f) for f in fs) for _, test in GOALS)
        met += all(f["auc"] >= ref - 0.01 for f in fs)
        influence = float(np.mean([f["influence"]["mean_abs_delta_logit"] for f in fs]))
        scores[name] = (met, influence)
    return max(scores, key=lambda n: scores[n]), scores


def write_table(out: Path) -> str:
    """OUT/PLACEMENTS.md: mean +- sd over seeds per placement, test then validation."""
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    for r in rows:  # rows written before the study recorded it: the run's own training log
        if "top_expert_share" not in r["validation"]:
            m = json.loads((out / "runs" / f"{r['run']}.metrics.json").read_text())
            epoch = m["history"][m["best_epoch"] - 1]
            r["validation"]["top_expert_share"] = epoch.get("token_img/top_expert_share")
    best, scores = choose(rows)
    lines = [f"# Placements of the image token MoE ({len(rows)} runs)", ""]
    for split in ("test", "validation"):
        lines += [f"## {split.capitalize()} split (mean +- sd over seeds)", "",
                  "| placement | seeds | " + " | ".join(c for c, _ in COLUMNS) + " | goals met |",
                  "|---|---|" + "---:|" * (len(COLUMNS) + 1)]  # fmt: skip
        for name in PLACEMENTS:
            fs = [r[split] for r in rows if r["placement"] == name]
            if not fs:
                continue
            seeds = ",".join(str(r["seed"]) for r in rows if r["placement"] == name)
            met = sum(all(test(f) for f in fs) for _, test in GOALS)
            cells = [_mean_sd([get(f) for f in fs]) for _, get in COLUMNS]
            lines.append(f"| {name} | {seeds} | " + " | ".join(cells) + f" | {met}/{len(GOALS)} |")
        lines.append("")
    lines += ["Goals (each must hold for every seed): " + "; ".join(g for g, _ in GOALS) + ".", "",
              "## Placements", ""]  # fmt: skip
    lines += [f"- `{n}`: {why}." for n, (*_, why) in PLACEMENTS.items()]
    lines += ["", f"Chosen on validation (goals met incl. AUC within 0.01 of last-avg, then "
              f"influence): **{best}**; " + ", ".join(f"{n} {m}/{len(GOALS) + 1}, {i:.3f}"
              for n, (m, i) in scores.items()) + "."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    (out / "PLACEMENTS.md").write_text(text)
    return text


def run_study(args) -> None:
    import torch

    from fairmoe.training import run_name, train

    torch.set_num_threads(args.threads)
    out = args.out
    (out / "runs").mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    done = set()
    if results.is_file():
        done = {
            (r["placement"], r["seed"])
            for r in map(json.loads, results.read_text().split("\n")[:-1])
        }
    names = args.only.split(",") if args.only else list(PLACEMENTS)
    for seed in args.seeds:
        for name in names:
            if (name, seed) in done:
                continue
            cfg = _config(name, seed, str(args.init), args.limit)
            t0 = time.perf_counter()
            res = train(cfg, args.data, out / "runs", cache_dir=args.cache, progress=False)
            ckpt = out / "runs" / f"{run_name(cfg)}.json"
            row = _row(name, seed, res, ckpt, args.data, args.cache)
            row["wall_seconds"] = time.perf_counter() - t0
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            v, t = row["validation"], row["test"]
            print(f"{name} s{seed}: {row['wall_seconds']:.0f} s; val AUC {v['auc']:.4f} "
                  f"influence {v['influence']['mean_abs_delta_logit']:.3f}; test AUC "
                  f"{t['auc']:.4f} influence {t['influence']['mean_abs_delta_logit']:.3f}",
                  flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, help="the seed-0 biased synthetic data set")
    ap.add_argument(
        "--init", type=Path, default=ROOT / "assets/model/clip-race-small-pretrain2-s0.json"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cache", type=Path, help="decoded-split cache folder (default: OUT/cache)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--only", help="comma-separated placements (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, help="cases per split (a smoke run)")
    ap.add_argument("--table", action="store_true", help="write OUT/PLACEMENTS.md and stop")
    args = ap.parse_args(argv)
    if args.table:
        print(write_table(args.out))
        return 0
    if args.data is None:
        ap.error("--data is required to train")
    args.cache = args.cache or args.out / "cache"
    run_study(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
