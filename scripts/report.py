"""REPORT.md for the shipped assets: every table recomputed from the runs' score files.

Called by build_assets.py; the tables follow the issue "A Fair-MoE that works": can the model
see the disc, router health before and after, gradient fractions, the fair test with seeds, CIs
and paired differences, other attributes, the weight sweep, ablations, bias variants, and the
ground-truth shortcut probe with the mechanism test.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fairmoe import metrics
from fairmoe.runs_file import AttributeSummary, RoutingHealth, RunEntry
from fairmoe.schema import ATTRIBUTE_NAMES
from fairmoe.scores import ScoreSet, read_scores
from fairmoe.summary import mean_std, paired_difference

GROUPS = ("Asian", "Black", "White")
LABELS = {"clip": "CLIP", "fairclip": "FairCLIP", "fairmoe": "Fair-MoE"}


def summarise(ss: ScoreSet) -> dict:
    """The numbers the report and the app's side-by-side view show for one run, at the operating
    point: a run's ``test`` entry in runs.json (read back by :func:`summary_of`)."""
    results = [ss.fairness(a, ci="none") for a in ATTRIBUTE_NAMES]
    first = results[0]
    return {
        "n": first.n,
        "auc": first.auc,
        "accuracy": first.accuracy,  # one threshold: every attribute's accuracy is everyone's
        "attributes": {
            r.attribute: {
                "es_auc": r.es_auc,
                "dpd": r.dpd,
                "deodds": r.deodds,
                "group_auc": {g.name: g.auc for g in r.groups},
                "group_n": {g.name: g.n for g in r.groups},
            }
            for r in results
        },
    }


def summary_of(run: RunEntry, attr: str) -> AttributeSummary:
    """A run's test summary of one attribute, as :func:`summarise` wrote it into runs.json."""
    if run.test is None or attr not in run.test.attributes:
        raise KeyError(f"run {run.name} has no test summary of {attr!r} in runs.json")
    return run.test.attributes[attr]


def _auc(run: RunEntry) -> float | None:
    """A run's overall test AUC (None when runs.json has no summary)."""
    return run.test.auc if run.test else None


def fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def ms(values: list[float | None]) -> str:
    s = mean_std(values)
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s["std"] is not None else "")


def select(runs: Sequence[RunEntry], **kw: Any) -> list[RunEntry]:
    """Runs matching every field in ``kw`` (defaults: main data, no tag, scale 1, race)."""
    want = {"data": "main", "tag": "", "fairness_scale": 1.0, "attribute": "race"} | kw
    return sorted((r for r in runs if all(getattr(r, k) == v for k, v in want.items())),
                  key=lambda r: -1 if r.seed is None else r.seed)  # fmt: skip


def _row(label: str, rs: list[RunEntry], attr: str = "race") -> str:
    at = [summary_of(r, attr) for r in rs]
    cells = [ms([_auc(r) for r in rs]), ms([a.es_auc for a in at])]
    cells += [ms([a.group_auc.get(g) for a in at]) for g in at[0].group_auc]
    cells += [ms([a.dpd for a in at]), ms([a.deodds for a in at])]
    return f"| {label} | {len(rs)} | " + " | ".join(cells) + " |"


def _head(first: str, attr_groups: list[str]) -> list[str]:
    cols = ["runs", "AUC", "ES-AUC", *(f"AUC {g}" for g in attr_groups), "DPD", "DEOdds"]
    return [f"| {first} | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]


def _scores(out: Path, rs: list[RunEntry]) -> list[ScoreSet]:
    return [read_scores(out / r.scores, r.name) for r in rs]


def disc_section(extras: dict, runs_dir: Path) -> list[str]:
    disc = extras.get("disc")
    if not disc:
        return []
    ref = cdr_reference(runs_dir / "data" / "unbiased")
    lines = ["## Can the model see the optic disc? (pretrained CLIP, unbiased test copy)", "",
             "| | AUC | " + " | ".join(f"AUC {g}" for g in GROUPS) + " |",
             "|---|---:|" + "---:|" * len(GROUPS),
             f"| pretrained CLIP (`{disc['checkpoint']}`) | {fmt(disc['auc'])} | "
             + " | ".join(fmt(disc["race_auc"][g]) for g in GROUPS) + " |",
             f"| the generator's own cup-to-disc ratio (a perfect disc reader) | {fmt(ref['auc'])} | "
             + " | ".join(fmt(ref[g]) for g in GROUPS) + " |", ""]  # fmt: skip
    reached = all(disc["race_auc"][g] >= 0.85 for g in GROUPS)
    lines.append(f"Goal AUC >= 0.85 in every race group: **{'reached' if reached else 'not reached'}**"
                 f" (lowest {min(disc['race_auc'].values()):.3f}).\n")  # fmt: skip
    return lines


def cdr_reference(data: Path) -> dict[str, float]:
    """AUC of the latent CDR the generator drew for each test case, overall and per race group."""
    from fairmoe.data.fairvlmed import find_split_dir
    from fairmoe.data.synthetic import sample_params
    from fairmoe.probe import read_settings

    s = read_settings(data)
    ps = [sample_params(int(p.stem.split("_")[-1]), seed=s.seed, bias=s.bias, config=s.config)
          for p in sorted(find_split_dir(data, "test").glob("data_*.npz"))]  # fmt: skip
    y = np.array([p.glaucoma for p in ps])
    cdr = np.array([p.cdr for p in ps])
    race = np.array([p.race for p in ps])
    out = {"auc": float(metrics.auc(y, cdr))}
    out |= {g: float(metrics.auc(y[race == i], cdr[race == i])) for i, g in enumerate(GROUPS)}
    return out


def health_section(runs: Sequence[RunEntry], extras: dict) -> list[str]:
    before = (extras.get("before") or {}).get("health") or {}
    default = next((r for r in runs if r.role == "default"), None)
    if default is None:
        return []
    lines = ["## Router health (test split)", "",
             "Top-expert share: tokens whose first choice is the most popular expert (1/10 = even, "
             "1 = collapse); entropy of the kept load over experts / log 10; share of tokens kept "
             "by no expert (their expert output is zero).", "",
             "| Model | MoE | top-expert share | kept-load entropy | kept by no expert |",
             "|---|---|---:|---:|---:|"]  # fmt: skip
    rows: list[tuple[str, Mapping[str, RoutingHealth]]] = [
        ("previous release (`fairmoe-race-small-s0`, from scratch, no load balance)",
         {k: RoutingHealth.from_json(v["overall"], "--before") for k, v in before.items()}),
        (f"this release (`{default.name}`)", default.health)]  # fmt: skip
    for label, health in rows:
        for moe, h in health.items():
            lines.append(f"| {label} | {moe} | {fmt(h.top_expert_share)} | "
                         f"{fmt(h.kept_entropy)} | {fmt(h.none_share)} |")  # fmt: skip
    lines += ["", "Per run (seed means; image token MoE): "]
    for tag, label in (("", "Fair-MoE"), ("nobal", "Fair-MoE, load balance off")):
        rs = select(runs, method="fairmoe", tag=tag)
        if rs:
            h = [r.health.get("token_img") for r in rs]
            lines.append(f"- {label} ({len(rs)} seeds): top-expert share "
                         f"{ms([x.top_expert_share if x else None for x in h])}, kept by no "
                         f"expert {ms([x.none_share if x else None for x in h])}")  # fmt: skip
    return [*lines, ""]


def gradient_section(runs_dir: Path, runs: Sequence[RunEntry]) -> list[str]:
    """Per-term gradient norms at the first step of each epoch, as fractions of the contrastive."""
    lines = ["## Gradient of each loss term (first step of each epoch, ratio to contrastive)", "",
             "| Run | epoch | routers: FOL dispersion | routers: load balance (img) | "
             "all: Sinkhorn distance |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in select(runs, method="fairmoe")[:1] + select(runs, method="fairclip")[:1]:
        hist = json.loads((runs_dir / "runs" / f"{r.name}.metrics.json").read_text())["history"]
        for h in hist:

            def ratio(scope: str, term: str, h: dict = h) -> str:
                base = h.get(f"grad_{scope}/clip")
                v = h.get(f"grad_{scope}/{term}")
                return fmt(v / base) if base and v is not None else "n/a"

            lines.append(f"| {r.name} | {h['epoch']} | {ratio('routers', 'fol_dispersion')} | "
                         f"{ratio('routers', 'balance_token_img')} | {ratio('all', 'distance')} |")  # fmt: skip
    return [*lines, ""]


def fair_test_section(runs: Sequence[RunEntry], out: Path) -> list[str]:
    lines = ["## The fair test: race (same pretrained start, same biased data, paired seeds)", "",
             *_head("Method", list(GROUPS))]  # fmt: skip
    by = {m: select(runs, method=m) for m in LABELS}
    for m, rs in by.items():
        if rs:
            lines.append(_row(LABELS[m], rs))
    lines += ["", "95% intervals: percentile bootstrap over test cases (1,000 resamples), every "
              "run re-evaluated on each resample; paired differences are per seed.", "",
              "| | race ES-AUC | AUC | DPD | DEOdds |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    sets = {m: _scores(out, rs) for m, rs in by.items() if rs}
    for m, ss in sets.items():
        cells = [paired_difference(ss, None, "race", k) for k in ("ES-AUC", "AUC", "DPD", "DEOdds")]
        lines.append(f"| {LABELS[m]} (seed mean) | " + " | ".join(_ci(c) for c in cells) + " |")
    verdict = ""
    for m in ("fairmoe", "fairclip"):
        if m in sets and "clip" in sets and len(sets[m]) == len(sets["clip"]):
            cells = [paired_difference(sets[m], sets["clip"], "race", k)
                     for k in ("ES-AUC", "AUC", "DPD", "DEOdds")]  # fmt: skip
            lines.append(f"| {LABELS[m]} − CLIP | " + " | ".join(_ci(c) for c in cells) + " |")
            if m == "fairmoe":
                es, auc = cells[0]["mean"], cells[1]["mean"]
                ok = es >= 0.03 and auc >= -0.01
                verdict = (f"\nAim (Fair-MoE race ES-AUC >= CLIP + 0.03 at AUC >= CLIP - 0.01): "
                           f"**{'reached' if ok else 'not reached'}** (ES-AUC {es:+.3f}, "
                           f"AUC {auc:+.3f}).\n")  # fmt: skip
    return [*lines, verdict, ""]


def _ci(c: dict) -> str:
    ci = c.get("ci")
    return f"{c['mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else fmt(c["mean"])


def attributes_section(runs: Sequence[RunEntry]) -> list[str]:
    lines = ["## The other attributes (seed 0; CLIP ignores the attribute: its race run)", ""]
    clip = select(runs, method="clip", seed=0)
    for attr in ("gender", "ethnicity", "language"):
        groups = list(summary_of((clip or select(runs, attribute=attr))[0], attr).group_auc)
        lines += [f"### {attr}", "", *_head("Method", groups)]
        if clip:
            lines.append(_row("CLIP", clip, attr))
        for m in ("fairclip", "fairmoe"):
            rs = select(runs, method=m, attribute=attr)
            if rs:
                lines.append(_row(LABELS[m], rs, attr))
        lines.append("")
    return lines


def sweep_section(runs: Sequence[RunEntry]) -> list[str]:
    scales = sorted({r.fairness_scale for r in runs if r.method == "fairmoe"
                     and r.data == "main" and not r.tag and r.attribute == "race"})  # fmt: skip
    lines = ["## Fairness-loss weight sweep (Fair-MoE, race; x1 = the defaults)", "",
             "![trade-off](tradeoff.png)", "", *_head("FOL weight", list(GROUPS))]  # fmt: skip
    for s in scales:
        lines.append(_row(f"x{s:g}", select(runs, method="fairmoe", fairness_scale=s)))
    return [*lines, ""]


def ablation_section(runs: Sequence[RunEntry]) -> list[str]:
    rows = [("Fair-MoE (full)", {}), ("FO-MoE without FOL (x0)", {"fairness_scale": 0.0}),
            ("FOL without capacity dropping", {"tag": "nocap"}),
            ("load balancing off", {"tag": "nobal"})]  # fmt: skip
    lines = ["## Ablations (race)", "", *_head("Variant", list(GROUPS))]
    for label, kw in rows:
        rs = select(runs, method="fairmoe", **kw)
        if rs:
            lines.append(_row(label, rs))
    return [*lines, ""]


def variants_section(runs: Sequence[RunEntry]) -> list[str]:
    lines = ["## Bias variants (seed 0): only one mechanism on", ""]
    for v, what in (("shortcut", "only the device stamp that tracks the label in White patients"),
                    ("acquisition", "only the worse acquisition of Asian and Black patients")):  # fmt: skip
        lines += [f"### {v}: {what}", "", *_head("Method", list(GROUPS))]
        for m in LABELS:
            rs = select(runs, method=m, data=v, tag=v)
            if rs:
                lines.append(_row(LABELS[m], rs))
        lines.append("")
    return lines


def probe_section(runs: Sequence[RunEntry], probe: dict) -> list[str]:
    """Mean |probability change| per race group, and AUC original -> counterfactual (seed means)."""
    if not probe:
        return []
    lines = ["## Ground-truth shortcut probe (fairmoe.probe; test split re-rendered)", "",
             "Mean |change| of the calibrated probability over the cases the counterfactual "
             "changes, and the AUC on the original -> counterfactual set (seed means).", ""]  # fmt: skip
    for cf, what in (("no_stamp", "device stamp removed"),
                     ("equal_acquisition", "acquisition equalised (bias-0 draw)")):  # fmt: skip
        lines += [f"### {what}", "",
                  "| Model | " + " | ".join(f"{g}: mean abs change | {g}: AUC" for g in GROUPS) + " |",
                  "|---|" + "---:|---:|" * len(GROUPS)]  # fmt: skip
        for label, kw in [(LABELS[m], {"method": m}) for m in LABELS] + [
            ("Fair-MoE without FOL", {"method": "fairmoe", "fairness_scale": 0.0})
        ]:
            rows = [probe[r.name]["counterfactuals"][cf] for r in select(runs, **kw)
                    if r.name in probe]  # fmt: skip
            if not rows:
                continue
            cells = []
            for g in GROUPS:
                cells.append(ms([x[g]["mean_abs_change"] for x in rows]))
                cells.append(f"{ms([x[g]['auc_original'] for x in rows])} → "
                             f"{ms([x[g]['auc_counterfactual'] for x in rows])}")  # fmt: skip
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines + mechanism_section(runs, probe)


def mechanism_section(runs: Sequence[RunEntry], probe: dict) -> list[str]:
    lines = ["### Does FO-MoE filter the biased patch? (scans with the stamp)", "",
             "Stamp patch minus the mean of the scan's other patches; 95% bootstrap interval over "
             "scans. Positive 'kept by no expert' = the stamp is filtered more often.", "",
             "| Run | stamped scans | kept by no expert: stamp / others / difference | "
             "gate weight kept: stamp / others / difference |", "|---|---:|---|---|"]  # fmt: skip
    for kw in ({"method": "fairmoe"}, {"method": "fairmoe", "fairness_scale": 0.0}):
        for r in select(runs, **kw):
            mech = (probe.get(r.name) or {}).get("mechanism")
            if not mech or not mech.get("n_stamped"):
                continue
            cells = [f"{fmt(m['stamp_patch'])} / {fmt(m['other_patches'])} / {_ci({'mean': m['difference'], 'ci': m['ci']})}"
                     for m in (mech["dropped"], mech["gate"])]  # fmt: skip
            lines.append(f"| {r.name} | {mech['n_stamped']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def tradeoff_png(runs: Sequence[RunEntry], path: Path) -> None:
    """AUC against race ES-AUC and DEOdds: sweep points (seed means, std bars), CLIP, FairCLIP."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), dpi=100)
    series = [(f"Fair-MoE x{s:g}", select(runs, method="fairmoe", fairness_scale=s), "o", "#0072B2")
              for s in sorted({r.fairness_scale for r in runs if r.method == "fairmoe"
                               and r.data == "main" and not r.tag})]  # fmt: skip
    series += [(LABELS[m], select(runs, method=m), mk, c)
               for m, mk, c in (("clip", "s", "#D55E00"), ("fairclip", "^", "#009E73"))]  # fmt: skip
    for ax, key, label, better in ((axes[0], "es_auc", "race ES-AUC", "→ fairer"),
                                   (axes[1], "deodds", "race DEOdds", "← fairer")):  # fmt: skip
        for name, rs, marker, colour in series:
            if not rs:
                continue
            xs = [getattr(summary_of(r, "race"), key) for r in rs]
            ys = [_auc(r) for r in rs]
            ax.errorbar(np.mean(xs), np.mean(ys), xerr=np.std(xs, ddof=1) if len(rs) > 1 else 0,
                        yerr=np.std(ys, ddof=1) if len(rs) > 1 else 0, fmt=marker, color=colour,
                        capsize=3, label=f"{name} ({len(rs)})")  # fmt: skip
        ax.set_xlabel(f"{label} ({better})")
        ax.set_ylabel("test AUC (↑ better)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle("Race: accuracy against fairness, mean ± std over seeds (test split)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report_md(
    runs: Sequence[RunEntry], profile: Mapping[str, Any], out: Path, extras: dict, runs_dir: Path
) -> str:
    device = "CPU (2 cores, no GPU was lent)" if all(r.device == "cpu" for r in runs) else (
        ", ".join(sorted({r.device for r in runs})))  # fmt: skip
    total = sum(r.train_seconds or 0.0 for r in runs)
    stages = ", then ".join(f"{e} epochs at lr {lr:g}" for e, lr in profile["pretrain_stages"])
    lines = [
        "# Fair-MoE Studio: evaluation report", "",
        f"Trained on: **{device}**. Every number below is on the test split, recomputed from "
        "`assets/scores/*.csv` by `fairmoe.metrics` (operating point 0.5 on the calibrated "
        "probability); model selection on validation.", "",
        "**Protocol** (the paper's: fine-tune a pretrained CLIP). One plain CLIP "
        f"(`{profile['config']}`: 96 px, 8x8 patches) is pretrained on "
        f"{profile['pretrain_n']:,} unbiased synthetic cases ({stages}); CLIP, FairCLIP and "
        f"Fair-MoE are then each fine-tuned from it for {profile['epochs']} epochs at lr "
        f"{profile['lr']:g} on the same biased data set ({profile['n_samples']:,} cases, bias "
        f"{profile['bias']:g}, 70/10/20), with paired seeds. Fine-tuning time: "
        f"{total / 60:.0f} CPU-process minutes over {len(runs)} runs.", "",
    ]  # fmt: skip
    lines += disc_section(extras, runs_dir)
    lines += health_section(runs, extras)
    lines += gradient_section(runs_dir, runs)
    lines += fair_test_section(runs, out)
    lines += attributes_section(runs)
    lines += sweep_section(runs)
    lines += ablation_section(runs)
    lines += variants_section(runs)
    lines += probe_section(runs, extras.get("probe") or {})
    return "\n".join(lines)
