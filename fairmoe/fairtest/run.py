"""Score the fair test's runs on the independent test draws and reach the verdicts.

``evaluate_all`` takes the plan's runs as entries ``{"name", "data", "arm", "seed"}`` (arm:
``control`` and ``oracle`` for the positive control's CLIP on the stamp data and on its
stamp-free twin; ``clip``, ``fairclip``, ``fairmoe``, ``nofol`` for the test) and writes
``results.json`` (every figure) and ``RESULTS.md`` (the tables and verdicts,
:mod:`fairmoe.fairtest.report`). Scores are cached per run in ``scores/NAME.npz``.

Operating point: each run's own threshold reaching overall sensitivity 0.85 on its scenario's
validation split; "at 0.5" is the calibrated probability's default threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairmoe.calibration import glaucoma_probability
from fairmoe.data.tensors import SplitTensors, load_split
from fairmoe.fairtest.baselines import BASELINES, fit_baseline
from fairmoe.fairtest.clinical import ranking_figures, rate_figures
from fairmoe.fairtest.paired import N_BOOT, paired_difference
from fairmoe.fairtest.verdict import verdict
from fairmoe.metrics import auc, group_aucs
from fairmoe.metrics.thresholds import SENSITIVITY_TARGET, threshold_for_sensitivity
from fairmoe.probe import read_settings
from fairmoe.schema import ATTRIBUTES, OPERATING_POINT

__all__ = ["evaluate_all", "load_draw"]

RACE = ATTRIBUTES["race"]
G = len(RACE.groups)
WHITE = RACE.groups.index("White")
RELIANCE_MIN = 0.03  # the positive control: White AUC falls by at least this without the stamp


class _Split:
    """Labels, race codes and the decoded pixels of one split."""

    def __init__(self, t: SplitTensors):
        self.t, self.y = t, t.labels.numpy().astype(int)
        self.g = t.attribute("race").numpy()
        self.ids = list(t.ids)


def load_draw(root: Path, split: str, cache: Path, size: int) -> _Split:
    """A split with every case kept (``.t`` its tensors), as the fair test reads it."""
    from fairmoe.model import create_model

    tok = create_model("tiny", method="clip").tokenizer()  # the same tokenizer for every preset
    # every case counts: the test is by race, which every synthetic patient has (an unknown
    # language or ethnicity would drop 10% of the draw under FairCLIP's rule)
    t = load_split(root, split, image_size=size, tokenizer=tok, cache_dir=cache, drop_unknown=False)
    if (t.attribute("race") < 0).any():
        raise ValueError(f"{root}: cases without a race; the fair test compares race groups")
    return _Split(t)


@torch.no_grad()
def _probabilities(ckpt: Path, splits: dict[str, _Split]) -> dict[str, np.ndarray]:
    from fairmoe.model import load_model
    from fairmoe.training.evaluation import encode_split

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, meta = load_model(ckpt, device=device)
    return {k: glaucoma_probability(encode_split(model, s.t, device).cosines,
                                    temperature=meta.temperature)
            for k, s in splits.items()}  # fmt: skip


def _run_figures(
    p: dict, val: _Split, test: _Split, free: _Split | None, oracle: bool, stamp: bool
) -> dict:
    """Ranking figures, rates at the validation operating point and at 0.5, stamp reliance."""
    t = threshold_for_sensitivity(val.y, p["val"], SENSITIVITY_TARGET)
    main = "test_free" if oracle else "test"
    s = free if oracle else test
    out = {"threshold": t, **ranking_figures(s.y, p[main], s.g, G)}
    out["at_operating_point"] = rate_figures(s.y, (p[main] >= t).astype(float), s.g, G)
    out["at_0.5"] = rate_figures(s.y, (p[main] >= OPERATING_POINT).astype(float), s.g, G)
    if stamp and free is not None and "test_free" in p and not oracle:
        free_auc = group_aucs(free.y, p["test_free"], free.g, n_groups=G)
        out["group_auc_without_stamp"] = [float(v) for v in free_auc]
        out["stamp_reliance"] = out["group_auc"][WHITE] - float(free_auc[WHITE])
    out["auc_gap"] = float(np.nanmax(out["group_auc"]) - np.nanmin(out["group_auc"]))
    return out


def _stats(p: dict, thr: float, test: _Split, free: _Split | None) -> dict:
    """``free``: the stamp-free twin of the test draw (stamp scenarios only), for the reliance."""
    """Per-criterion statistics on resampled cases, oriented larger = fairer."""
    y, g = test.y, test.g

    def wg(idx):
        return float(np.nanmin(group_aucs(y[idx], p["test"][idx], g[idx], n_groups=G)))

    def neg_tpr_gap(idx):
        return -rate_figures(y[idx], (p["test"][idx] >= thr).astype(float), g[idx], G)["tpr_gap"]

    out = {"worst_group_auc": wg, "tpr_gap": neg_tpr_gap}
    if free is not None:

        def neg_reliance(idx):
            w = idx[g[idx] == WHITE]
            return -(auc(y[w], p["test"][w]) - auc(y[w], p["test_free"][w]))

        out["stamp_reliance"] = neg_reliance
    return out


def _compare(
    runs: dict, arm: str, base: list[str], test: _Split, free, headroom: dict, n_boot: int
) -> dict:
    mine = sorted((r for r in runs.values() if r["arm"] == arm), key=lambda r: r["seed"])
    seeds = {r["seed"] for r in mine}
    base = [n for n in base if runs[n]["seed"] in seeds]  # paired: CLIP's runs of the same seeds
    if len(mine) != len(base) or not mine:
        return {}
    stats_a = [_stats(runs[n]["p"], runs[n]["figures"]["threshold"], test, free) for n in base]
    stats_b = [_stats(r["p"], r["figures"]["threshold"], test, free) for r in mine]
    out: dict[str, Any] = {
        "auc_diff": float(
            np.mean([r["figures"]["auc"] for r in mine])
            - np.mean([runs[n]["figures"]["auc"] for n in base])
        )  # fmt: skip
    }
    for key in stats_a[0]:
        c = paired_difference([s[key] for s in stats_a], [s[key] for s in stats_b], len(test.y),
                              n_boot=n_boot)  # fmt: skip
        h = headroom.get(key)
        c["headroom"] = h
        c["share"] = c["diff"] / h if h and h > 0 else None
        out[key] = c
    return out


def evaluate_all(
    out: Path,
    data: dict[str, Path],
    entries: list[dict],
    cache: Path,
    image_size: int,
    *,
    n_boot: int = N_BOOT,
) -> dict:
    # the scenario of the positive control first: it decides whether any scenario's verdict can
    # be negative ("the gap was closable"); the rest in name order
    names = {e["data"] for e in entries}
    ctrl = {e["data"] for e in entries if e["arm"] == "control"}
    scen = sorted((n for n in names if not n.endswith("-free")), key=lambda n: (n not in ctrl, n))
    control_holds = False
    results: dict[str, Any] = {"runs": {}, "scenarios": {}}
    for name in scen:
        free_key = f"test-{name}-free"
        test = load_draw(data[f"test-{name}"], "test", cache, image_size)
        free = load_draw(data[free_key], "test", cache, image_size) if free_key in data else None
        if free is not None and free.ids != test.ids:
            raise ValueError(f"{free_key}: not the same cases as test-{name}")
        stamp = read_settings(data[name]).mechanisms == "stamp"  # reliance: the stamp's alone
        vals = {
            k: load_draw(data[k], "validation", cache, image_size)
            for k in (name, f"{name}-free")
            if k in data
        }
        runs: dict[str, dict] = {}
        for e in entries:
            if e["data"] not in (name, f"{name}-free"):
                continue
            ckpt = out / "runs" / f"{e['name']}.json"
            if not ckpt.is_file():
                continue
            splits = {"val": vals[e["data"]], "test": test}
            if free is not None and (stamp or e["arm"] == "oracle"):
                splits["test_free"] = free
            npz = out / "scores" / f"{e['name']}.npz"
            if npz.is_file():
                p = dict(np.load(npz))
            else:
                p = _probabilities(ckpt, splits)
                npz.parent.mkdir(parents=True, exist_ok=True)
                np.savez(npz, **p)
            oracle = e["arm"] == "oracle"
            fig = _run_figures(p, vals[e["data"]], test, free, oracle, stamp)
            runs[e["name"]] = dict(e, p=p, figures=fig)
            print(f"scored {e['name']}: AUC {fig['auc']:.3f}", flush=True)
        res = _scenario_results(
            runs, test, free if stamp else None, vals[name], n_boot, control_holds
        )
        control_holds = control_holds or res.get("positive_control", {}).get("holds", False)
        results["scenarios"][name] = res
        results["runs"].update({k: {kk: vv for kk, vv in r.items() if kk != "p"}
                                for k, r in runs.items()})  # fmt: skip
        results["scenarios"][name]["test_draw"] = _draw_summary(test)
    (out / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False,
                                                 default=_none))  # fmt: skip
    from fairmoe.fairtest.report import write_markdown

    write_markdown(out / "RESULTS.md", results)
    return results


def _none(v):
    return None


def _scenario_results(
    runs: dict, test: _Split, free, val: _Split, n_boot: int, control_holds: bool
) -> dict:
    res: dict[str, Any] = {}
    ctrl = [r for r in runs.values() if r["arm"] == "control"]
    orc = [r for r in runs.values() if r["arm"] == "oracle"]
    if ctrl and orc:
        c, o = ctrl[0]["figures"], orc[0]["figures"]
        rel = c.get("stamp_reliance", float("nan"))
        res["positive_control"] = {
            "control": ctrl[0]["name"], "oracle": orc[0]["name"],
            "white_auc_with_stamp": c["group_auc"][WHITE],
            "white_auc_without_stamp": c["group_auc_without_stamp"][WHITE],
            "stamp_reliance": rel, "race_auc_gap": c["auc_gap"], "oracle_race_auc_gap": o["auc_gap"],
            "holds": bool(rel >= RELIANCE_MIN and c["auc_gap"] > o["auc_gap"]),
        }  # fmt: skip
    base = [r["name"] for r in sorted(runs.values(), key=lambda r: r["seed"]) if r["arm"] == "clip"]
    if not base:
        return res
    clip = [runs[n]["figures"] for n in base]
    headroom = {}
    if orc:
        o = orc[0]["figures"]
        headroom["worst_group_auc"] = o["worst_group_auc"] - np.mean(
            [f["worst_group_auc"] for f in clip]
        )
        headroom["tpr_gap"] = np.mean([f["at_operating_point"]["tpr_gap"] for f in clip]) - o[
            "at_operating_point"]["tpr_gap"]  # fmt: skip
    if free is not None:
        headroom["stamp_reliance"] = float(np.mean([f["stamp_reliance"] for f in clip]))
    res["headroom"] = headroom
    res["comparisons"] = {arm: _compare(runs, arm, base, test, free, headroom, n_boot)
                          for arm in ("fairclip", "fairmoe", "nofol", "fairmoe_notes",
                                      "fairmoe_inbatch")}  # fmt: skip
    res["baselines"] = _baselines(runs, base, val, test)
    holds = res.get("positive_control", {}).get("holds", control_holds)
    if res["comparisons"].get("fairmoe"):
        res["verdict"] = verdict(
            res["comparisons"]["fairmoe"], res["comparisons"].get("nofol"), holds
        )
    return res


def _baselines(runs: dict, base: list[str], val: _Split, test: _Split) -> dict:
    """Each post-processing rule on each CLIP seed's scores: rates on test (AUC is CLIP's)."""
    out: dict[str, Any] = {}
    for b in BASELINES:
        per_seed = []
        for n in base:
            p = runs[n]["p"]
            try:
                decide = fit_baseline(b, (val.y, p["val"], val.g))
            except ValueError as e:  # a validation group with one class only (tiny splits)
                out[b] = {"error": f"cannot fit on validation: {e}"}
                break
            per_seed.append(rate_figures(test.y, decide(p["test"], test.g), test.g, G))
        if b in out:
            continue
        out[b] = {"per_seed": per_seed, **{k: float(np.mean([s[k] for s in per_seed]))
                                           for k in ("tpr_gap", "fpr_gap", "dpd", "deodds")}}  # fmt: skip
    return out


def _draw_summary(s: _Split) -> dict:
    return {"n": len(s.y), "groups": {RACE.groups[g]: {"n": int((s.g == g).sum()),
            "prevalence": float(s.y[s.g == g].mean())} for g in range(G)}}  # fmt: skip
