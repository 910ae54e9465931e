"""Integrated-Gradients steps against convergence: how few steps an explanation can take.

python benchmarks/bench_explain.py [--assets DIR] [--steps 2 4 8 16 32 64] [--threads 1]
python benchmarks/bench_explain.py --parts [--rounds 5]     # one user's explanation, part by part

For every example case of the assets: the expert maps (``fairmoe.explain.attribute_experts``) and
the note's token attributions (Captum LayerIntegratedGradients on the token embedding) at each
step count. Prints per step count: the completeness gap |sum of attributions - score change|
relative to the score change (Captum's convergence delta; max and median over the cases), the
largest difference to the maps of the most steps relative to their colour scale, and the median
time. Then the note's leave-one-phrase-out attributions, which the app serves instead of the
note IG (exact per token, so no step count): their median time beside the IG's in the same run.
Uses the repo's assets/ (the shipped model) by default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.bench_app import _assets  # noqa: E402


def _note_ig(model, x, tokens, steps):  # noqa: ANN001, ANN202
    """(attribution per token, |delta| / |change|) of the scan-note similarity."""
    from captum.attr import LayerIntegratedGradients

    from fairmoe.model.clip import EOT, SOT

    with torch.no_grad():
        image = model.encode_image(x)

    def similarity(tok: torch.Tensor) -> torch.Tensor:
        return (model.encode_text(tok) * image).sum(-1)

    base = torch.where((tokens == SOT) | (tokens == EOT), tokens, torch.zeros_like(tokens))
    lig = LayerIntegratedGradients(similarity, model.clip.token_embedding)
    attr, delta = lig.attribute(tokens, baselines=base, n_steps=steps,
                                internal_batch_size=steps, return_convergence_delta=True)  # fmt: skip
    with torch.no_grad():
        change = float(similarity(tokens) - similarity(base))
    return attr[0].sum(-1).numpy(), abs(float(delta)) / max(abs(change), 1e-12)


def parts(rt, rounds: int) -> None:  # noqa: ANN001
    """Median milliseconds of each part of one explanation as the app serves it (8 IG steps)."""
    from fairmoe.data.fairvlmed import normalize_scan
    from fairmoe.explain import (
        attribute_experts,
        attribute_note,
        attribute_whole_model,
        occlusion_map,
    )
    from fairmoe.explaining import EXPLAIN_STEPS

    pred, model = rt.predictor, rt.predictor.model
    kw = {"prompts": pred.prompts, "temperature": pred.temperature}
    times: dict[str, list[float]] = {}

    def timed(name: str, fn) -> object:  # noqa: ANN001
        t = time.perf_counter()
        out = fn()
        times.setdefault(name, []).append(time.perf_counter() - t)
        return out

    for _ in range(rounds):
        for ex in rt.examples:
            item = timed(
                "decode and check the upload", lambda ex=ex: pred.prepare(ex.file, ex.note)
            )
            timed(
                "predict (incl. assessability, influence)",
                lambda item=item: pred.predict_prepared([item]),
            )
            x = normalize_scan(item.pixels.unsqueeze(0))
            timed(
                f"expert IG (4 to {EXPLAIN_STEPS} steps, until complete)",
                lambda x=x: attribute_experts(model, x, **kw, n_steps=EXPLAIN_STEPS),
            )
            timed(
                f"whole-model IG ({EXPLAIN_STEPS} steps)",
                lambda x=x: attribute_whole_model(model, x, **kw, n_steps=EXPLAIN_STEPS),
            )
            timed("occlusion (64 patches)", lambda x=x: occlusion_map(model, x, **kw))
            tokens = pred._tokens(item.note)
            timed("note, leave-one-phrase-out", lambda x=x, t=tokens: attribute_note(model, x, t))
    total = sum(statistics.median(v) for v in times.values())
    print(
        f"{rt.model_name}: {len(rt.examples)} cases x {rounds} rounds, {torch.get_num_threads()} thread(s)"
    )
    print("part | median ms | share")
    for name, v in times.items():
        m = statistics.median(v)
        print(f"{name} | {m * 1000:.1f} | {m / total:.0%}")
    print(f"sum of medians | {total * 1000:.1f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--assets", type=Path)
    p.add_argument("--steps", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--parts", action="store_true", help="time each part of one explanation")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.parts:
        from app.runtime import load_runtime

        parts(load_runtime(_assets(args.assets), warm_up=False), args.rounds)
        return 0
    from app.runtime import load_runtime
    from fairmoe.explain import attribute_experts, attribute_note

    rt = load_runtime(_assets(args.assets), warm_up=False)
    pred, model = rt.predictor, rt.predictor.model
    cases = [(pred.prepare(ex.file, ex.note), ex.note) for ex in rt.examples]
    res: dict[int, list] = {s: [] for s in args.steps}
    for s in args.steps:
        for item, note in cases:
            x = pred._image_input(item.scan)
            t = time.perf_counter()
            a = attribute_experts(model, x, prompts=pred.prompts, temperature=pred.temperature,
                                  n_steps=s)  # fmt: skip
            t_exp = time.perf_counter() - t
            change = abs(a["logit"] - a["logit_without_experts"])
            t = time.perf_counter()
            note_attr, note_gap = _note_ig(model, x, pred._tokens(note), s)
            t_note = time.perf_counter() - t
            res[s].append((np.array(a["experts"] or [a["total"]]), a["convergence_delta"] / max(change, 1e-12),
                           t_exp, note_attr, note_gap, t_note))  # fmt: skip
    ref = max(args.steps)
    print(f"{rt.model_name}: {len(cases)} cases, {torch.get_num_threads()} torch thread(s)")
    print("steps | experts: gap max  gap med  map err  ms   | note: gap max  gap med  map err  ms")
    for s in args.steps:
        rows = res[s]
        err_e = max(
            np.abs(r[0] - q[0]).max() / (np.abs(q[0]).max() or 1)
            for r, q in zip(rows, res[ref], strict=True)
        )
        err_n = max(
            np.abs(r[3] - q[3]).max() / (np.abs(q[3]).max() or 1)
            for r, q in zip(rows, res[ref], strict=True)
        )
        ge, gn = [r[1] for r in rows], [r[4] for r in rows]
        te, tn = (statistics.median(r[i] for r in rows) * 1000 for i in (2, 5))
        print(f"{s:5d} |          {max(ge):8.1e} {statistics.median(ge):8.1e} {err_e:8.1e} {te:5.0f} |"
              f"       {max(gn):8.1e} {statistics.median(gn):8.1e} {err_n:8.1e} {tn:5.0f}")  # fmt: skip
    print(f"gap: |sum of attributions - score change| / |score change|; map err: max |map - "
          f"map at {ref} steps| / max |map at {ref} steps|")  # fmt: skip
    loo = []
    for _ in range(5):  # leave-one-phrase-out, repeated for a steady median
        for item, note in cases:
            x, tokens = pred._image_input(item.scan), pred._tokens(note)
            t = time.perf_counter()
            attribute_note(model, x, tokens)
            loo.append(time.perf_counter() - t)
    t_loo = statistics.median(loo) * 1000
    for s in args.steps:
        t_ig = statistics.median(r[5] for r in res[s]) * 1000
        print(
            f"note leave-one-phrase-out: median {t_loo:.1f} ms; IG at {s} steps {t_ig:.1f} ms "
            f"(ratio {t_ig / t_loo:.1f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
