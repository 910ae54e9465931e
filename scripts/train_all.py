"""Every run the report tabulates and the app compares: pretraining, then the fair test.

  python scripts/train_all.py --profile cpu --out runs/assets      # 2 CPU cores (no GPU lent)
  python scripts/train_all.py --profile gpu --out runs/assets      # one GPU: 224 px `demo`

Stages (each resumable; finished runs are listed in runs_done.jsonl and skipped):
1. data: an unbiased pretraining corpus (its own seed, disjoint from the rest), the biased
   fine-tuning data set, an unbiased copy of it (same patients, bias 0; "does it see the disc?")
   and two bias variants (only the shortcut stamp, only the acquisition gap);
2. pretrain: one plain CLIP on the unbiased corpus; ``disc.json``: its AUC per race group on the
   unbiased copy's test split;
3. fine-tune: CLIP, FairCLIP and Fair-MoE from that same start on the same biased data with
   paired seeds, race first and then the other attributes; the FOL-weight sweep with seeds;
   ablations (FO-MoE without FOL, FOL without capacity dropping, load balancing off); the bias
   variants;
4. probe: ``probe.json``, the counterfactual shortcut probe (fairmoe.probe) of every main run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Profile:
    config: str  # model preset of every run
    pretrain_n: int  # cases in the unbiased pretraining corpus
    # (epochs, lr) of each pretraining stage; a stage starts from the one before (--init): the
    # one-cycle schedule restarts, so a second, gentler stage continues a run that still improved
    pretrain_stages: tuple[tuple[int, float], ...]
    epochs: int  # fine-tuning
    lr: float
    batch_size: int
    text_source: str
    n_samples: int = 10_000  # the biased data set (7,000 / 1,000 / 2,000 like FairVLMed)
    # LossConfig fields of every fine-tuning run: the router recipe the placement study chose
    # with the presets' STUDIED_MOE (a 10x load balance keeps renormalised gates from collapsing)
    loss: tuple[tuple[str, float], ...] = (("lambda_balance", 0.1), ("lambda_z", 1e-3))


PROFILES = {
    "cpu": Profile("small", 20_000, ((8, 1e-3), (6, 5e-4)), 2, 2e-4, 64, "mixed"),
    # one H100/H200: the 224 px demo config (about 5,600 images/s at batch 256 for a 21M CLIP)
    "gpu": Profile("demo", 20_000, ((30, 1e-4),), 10, 3e-5, 256, "mixed"),
}
SEEDS = (0, 1, 2)
OTHER_ATTRIBUTES = ("gender", "ethnicity", "language")
SWEEP = (0.25, 4.0)  # x the default fairness weights; x1 is the main run, x0 an ablation
DATA_SEED, PRETRAIN_SEED = 0, 101
NO_CAPACITY_DROP = 3.4  # moe.capacity >= experts / top_k: every expert can keep every token


def plan(p: Profile) -> list[dict]:
    """The fine-tuning runs, most important first (--max-runs keeps a prefix)."""
    runs = [dict(method=m, seed=s) for s in SEEDS for m in ("fairmoe", "clip", "fairclip")]
    runs += [dict(method="fairmoe", seed=s, fairness_scale=0.0) for s in SEEDS]  # no FOL
    runs += [dict(method=m, attribute=a) for a in OTHER_ATTRIBUTES for m in ("fairclip", "fairmoe")]
    runs += [dict(method="fairmoe", seed=s, fairness_scale=w) for w in SWEEP for s in SEEDS]
    runs += [
        dict(method="fairmoe", seed=s, tag="nocap",
             model_overrides=(("moe.capacity", NO_CAPACITY_DROP),))
        for s in SEEDS
    ]  # fmt: skip
    runs += [dict(method="fairmoe", seed=s, tag="nobal", lambda_balance=0.0) for s in SEEDS]
    runs += [
        dict(method=m, data=v, tag=v) for v in ("shortcut", "acquisition") for m in ("clip", "fairclip", "fairmoe")
    ]  # fmt: skip
    for r in runs:
        r.setdefault("attribute", "race")
        r.setdefault("seed", 0)
        r.setdefault("data", "main")
        r.update(model=p.config, epochs=p.epochs, lr=p.lr, batch_size=p.batch_size,
                 text_source=p.text_source)  # fmt: skip
        r.setdefault("loss", p.loss)
    return runs


def _config_of(spec: dict, init: str | None):
    import dataclasses

    from fairmoe import losses
    from fairmoe.training import TrainConfig

    kw = {k: v for k, v in spec.items() if k not in ("data", "lambda_balance", "loss")}
    loss = dataclasses.replace(losses.LossConfig(), **dict(spec.get("loss", ())))
    if "lambda_balance" in spec:
        loss = dataclasses.replace(loss, lambda_balance=spec["lambda_balance"])
    return TrainConfig(**kw, init=init, loss=loss)


def _run(spec: dict, data: str, out: str, cache: str, init: str | None, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from fairmoe.training import train

    cfg = _config_of(spec, init)
    t0 = time.perf_counter()
    res = train(cfg, data, out, cache_dir=cache, progress=False)
    return {
        "name": res["name"],
        "data": spec["data"],
        "wall_seconds": time.perf_counter() - t0,
        "test_auc": res["test"]["auc"],
        "best_epoch": res["best_epoch"],
    }


def _generate(root: Path, **kw) -> Path:
    from fairmoe.data.synthetic import generate, mechanisms_config

    mechanisms = kw.pop("mechanisms", "all")
    if not (root / "data_summary.csv").is_file():
        t0 = time.perf_counter()
        generate(root, config=mechanisms_config(mechanisms), **kw)
        print(f"data {root.name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def make_data(out: Path, p: Profile, *, bias: float, workers: int | None) -> dict[str, Path]:
    """The five data folders (generated once, reused on a rerun)."""
    d = out / "data"
    common = dict(n=p.n_samples, seed=DATA_SEED, workers=workers)
    return {
        "pretrain": _generate(
            d / "pretrain", n=p.pretrain_n, seed=PRETRAIN_SEED, bias=0.0, workers=workers
        ),  # fmt: skip
        "main": _generate(d / "main", bias=bias, **common),
        "unbiased": _generate(d / "unbiased", bias=0.0, **common),
        "shortcut": _generate(d / "shortcut", bias=bias, mechanisms="shortcut", **common),
        "acquisition": _generate(d / "acquisition", bias=bias, mechanisms="acquisition", **common),
    }


def pretrain(out: Path, p: Profile, data: Path, cache: Path, threads: int) -> Path:
    """The one plain CLIP every method starts from (trained once, in ``p.pretrain_stages``)."""
    import torch

    from fairmoe.training import TrainConfig, run_name, train

    torch.set_num_threads(threads)
    folder, init = out / "pretrain", None
    for k, (epochs, lr) in enumerate(p.pretrain_stages, start=1):
        cfg = TrainConfig(method="clip", model=p.config, epochs=epochs, lr=lr, init=init,
                          batch_size=p.batch_size, text_source=p.text_source,
                          tag=f"pretrain{k}")  # fmt: skip
        path = folder / f"{run_name(cfg)}.json"
        if not path.is_file():
            t0 = time.perf_counter()
            train(cfg, data, folder, cache_dir=cache, progress=False)
            print(f"pretraining stage {k}: {time.perf_counter() - t0:.0f} s", flush=True)
        init = str(path)
    return Path(init)


def disc_check(checkpoint: Path, unbiased: Path, cache: Path, out: Path) -> dict:
    """The pretrained CLIP on the unbiased copy's test split: can it see the disc?"""
    from fairmoe.data.tensors import load_split
    from fairmoe.model import load_model
    from fairmoe.training.evaluation import encode_split, split_fairness

    model, meta = load_model(checkpoint)
    size = model.config.vision.image_size
    test = load_split(
        unbiased, "test", image_size=size, tokenizer=model.tokenizer(), cache_dir=cache
    )
    enc = encode_split(model, test, __import__("torch").device("cpu"))
    race = split_fairness(test, enc.cosines, "race", meta.temperature)
    result = {"checkpoint": checkpoint.name, "auc": race.auc,
              "race_auc": {g.name: g.auc for g in race.groups},
              "race_n": {g.name: g.n for g in race.groups}}  # fmt: skip
    (out / "disc.json").write_text(json.dumps(result, indent=2))
    print(f"disc check: {result}", flush=True)
    return result


def finetune(out: Path, runs: list[dict], data: dict[str, Path], init: Path | None, cache: Path,
             jobs: int, threads: int) -> None:  # fmt: skip
    """Train every run not yet in runs_done.jsonl, ``jobs`` processes at a time."""
    from fairmoe.training import run_name

    done_file = out / "runs_done.jsonl"
    finished = set()
    if done_file.is_file():
        finished = {json.loads(line)["name"] for line in done_file.read_text().splitlines()}
    init_s = None if init is None else str(init)  # None: from scratch (smoke runs)
    todo = [r for r in runs if run_name(_config_of(r, init_s)) not in finished]
    print(f"{len(todo)} of {len(runs)} runs to train, {jobs} at a time", flush=True)
    _decode_once(todo, data, cache)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs) as pool:
        futures = [
            pool.submit(
                _run, r, str(data[r["data"]]), str(out / "runs"), str(cache), init_s, threads
            )  # fmt: skip
            for r in todo
        ]
        for f in as_completed(futures):
            res = f.result()
            with done_file.open("a") as fh:
                fh.write(json.dumps(res) + "\n")
            print(f"[{time.perf_counter() - t0:6.0f} s] {res['name']}: test AUC "
                  f"{res['test_auc']:.3f} (epoch {res['best_epoch']}, {res['wall_seconds']:.0f} s)",
                  flush=True)  # fmt: skip


def _decode_once(runs: list[dict], data: dict[str, Path], cache: Path) -> None:
    """Decode every split the runs read into the cache before the workers race to fill it."""
    from fairmoe.data.tensors import load_split
    from fairmoe.model import create_model, get_config

    tok = create_model("tiny", method="clip").tokenizer()  # the same tokenizer for every config
    for key, size in sorted({(r["data"], get_config(r["model"]).vision.image_size) for r in runs}):
        for split in ("training", "validation", "test"):
            load_split(data[key], split, image_size=size, tokenizer=tok, cache_dir=cache)


def run_probe(out: Path, data: Path) -> None:
    """The counterfactual shortcut probe of every run trained on the main data set."""
    from fairmoe import probe

    done = [json.loads(line) for line in (out / "runs_done.jsonl").read_text().splitlines()]
    ckpts = [str(out / "runs" / f"{r['name']}.json") for r in done if r["data"] == "main"]
    probe.main(["--data", str(data), "--checkpoint", *ckpts, "--out", str(out / "probe.json")])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", choices=list(PROFILES), default="cpu")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--bias", type=float, default=1.0)
    ap.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--max-runs", type=int, help="fine-tune only the first N runs of the plan")
    ap.add_argument("--stages", default="data,pretrain,finetune,probe", help="comma-separated")
    args = ap.parse_args(argv)
    prof = PROFILES[args.profile]
    stages = set(args.stages.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "profile.json").write_text(json.dumps({"profile": args.profile, **asdict(prof),
                                                       "bias": args.bias}, indent=2))  # fmt: skip
    cache = args.out / "cache"
    t0 = time.perf_counter()
    data = make_data(args.out, prof, bias=args.bias, workers=args.jobs * args.threads)
    init = pretrain(args.out, prof, data["pretrain"], cache, args.jobs * args.threads)
    if "pretrain" in stages and not (args.out / "disc.json").is_file():
        disc_check(init, data["unbiased"], cache, args.out)
    if "finetune" in stages:
        runs = plan(prof)[: args.max_runs]
        finetune(args.out, runs, data, init, cache, args.jobs, args.threads)
    if "probe" in stages:
        run_probe(args.out, data["main"])
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
