"""Replace some shipped runs by retrained ones without rebuilding every asset.

  python scripts/replace_runs.py RUNS_DIR --data DATA [--placements PLACEMENTS.md] \
      [--reading READING.md] --out assets

RUNS_DIR holds ``train()`` outputs (NAME.json, its weights, NAME.scores.csv, NAME.metrics.json)
whose names are already in runs.json. Their entries, scores and AUC CIs are rewritten; when the
default run is among them its checkpoint replaces the shipped one, the examples are picked again
from its scores (and scored by the shipped checkpoint), and its assessability detector is removed:
refit it on the new model and ship it with ``build_assets.py --ood-only``.
REPORT.md keeps the sections that need the full training folder (disc check, gradients, probe),
marked with the runs they describe; the run-only tables are recomputed and the placement study
and the shipped model's influence are added.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fairmoe.runs_file import RunsFile, read_runs, write_runs  # noqa: E402
from scripts import build_assets as b  # noqa: E402
from scripts.report import (  # noqa: E402
    ablation_section,
    attributes_section,
    fair_test_section,
    health_section,
    sweep_section,
    tradeoff_png,
    variants_section,
)

# Sections of REPORT.md recomputed from runs.json alone (the others need the training folder).
RECOMPUTED = ("## Router health", "## The fair test", "## The other attributes",
              "## Fairness-loss weight sweep", "## Ablations", "## Bias variants")  # fmt: skip


def _sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(preamble, [(heading line, body)]) of a markdown file split at its '## ' headings."""
    parts = re.split(r"^(## .*)$", text, flags=re.M)
    return parts[0], [(parts[i], parts[i + 1]) for i in range(1, len(parts), 2)]


def influence_section(meta: dict) -> list[str]:
    """The default model's influence and routing figures (RunMetadata.influence, test split)
    against the goals of the issue "Experts that matter"."""
    inf = meta.get("influence")
    if not inf:
        return []
    s, r = inf["silenced"], inf["routing"]
    top = ((meta.get("routing_health") or {}).get("token_img") or {}).get("overall", {})
    rows = [
        ("Mean abs change of the calibrated log-odds, all image experts silenced",
         s["mean_abs_delta_logit"], ">= 0.5 (or the next row >= 0.05)"),
        ("AUC lost when they are silenced", s["delta_auc"], ">= 0.05 (or the row above)"),
        ("Largest leave-one-expert-out change", max(e["mean_abs_delta_logit"] for e in inf["leave_one_out"]), ""),
        ("Median share of routing requests over capacity", r["median_over_capacity_share"], "<= 0.20"),
        ("Mean gate of a kept expert", r["mean_kept_gate"], ">= 0.2"),
        ("Mean first-choice gate", r["mean_top1_gate"], ""),
        ("Top-expert share", top.get("top_expert_share"), "<= 0.3"),
        ("Normalised gate entropy", r["mean_gate_entropy"], ""),
        ("Distinct experts per scan (median)", r["median_distinct_experts"], ""),
        ("Expert diversity (mean cosine of parameters; 1 = copies)", inf["expert_diversity"], ""),
    ]  # fmt: skip
    lines = [f"## The image experts' influence (`{meta['name']}`, test split, n = {s['n']})", "",
             "Exact, not a gradient: the image token MoE's output is zeroed and the calibrated "
             "log-odds recomputed (`fairmoe.influence`). Mean abs log-odds with the experts: "
             f"{s['mean_abs_logit']:.2f}.", "", "| Figure | Value | Goal |", "|---|---:|---|"]  # fmt: skip
    lines += [f"| {a} | {'n/a' if v is None else f'{v:.3f}'} | {g} |" for a, v, g in rows]
    by = inf.get("by_group", {}).get("race", {})
    if by:
        lines += ["", "Per race group, mean abs change when silenced: " + ", ".join(
            f"{g} {v['mean_abs_delta_logit']:.3f}" for g, v in by.items()) + "."]  # fmt: skip
    return [*lines, ""]


def replace_runs(
    runs_dir: Path, data: Path, placements: Path | None, out: Path, reading: Path | None = None
) -> list[str]:
    """Rewrite the runs of ``runs_dir`` in ``out``; the names of the runs replaced."""
    index = read_runs(out / "runs.json").to_json()
    names = {r["name"] for r in index["runs"]}
    fresh = sorted(p.stem for p in runs_dir.glob("*.json")
                   if p.stem in names and (runs_dir / f"{p.stem}.scores.csv").is_file())  # fmt: skip
    if not fresh:
        raise SystemExit(f"{runs_dir}: none of its runs is in {out / 'runs.json'}")
    replaced = []
    for i, run in enumerate(index["runs"]):
        if run["name"] in fresh:
            entry = b._run_entry(runs_dir, {"name": run["name"], "data": run["data"]}, out)
            entry["role"] = run["role"]
            index["runs"][i] = entry
            replaced.append(entry)
    b.write_auc_cis(out, replaced)
    if b.DEFAULT in fresh:
        for f in (out / "model").glob(f"{b.DEFAULT}*"):  # its detector too: fitted on the old model
            f.unlink()
        b._copy_checkpoint(runs_dir, b.DEFAULT, out)
        shutil.rmtree(out / "examples", ignore_errors=True)
        examples = b.pick_examples(runs_dir, data, out / "examples")
        (out / "examples" / "examples.json").write_text(json.dumps(examples, indent=1))
        rescore_examples(out)
    runs = RunsFile.from_json(index)
    write_runs(out / "runs.json", runs)
    tradeoff_png(runs.runs, out / "tradeoff.png")
    _rewrite_report(out, runs, fresh, placements, reading)
    b.write_manifest(out)
    return fresh


def rescore_examples(out: Path) -> None:
    """The examples' scores as the shipped checkpoint gives them: it stores weights in fp16, so a
    score can differ from the training run's fp32 one by a few 1e-4 (enough to cross 0.5)."""
    from fairmoe.inference import Predictor

    pred = Predictor(out / "model" / f"{b.DEFAULT}.json")
    path = out / "examples" / "examples.json"
    examples = json.loads(path.read_text())
    for ex in examples:
        ex["score"] = round(pred.predict(out / ex["file"], ex["note"])["probability"], 6)
    path.write_text(json.dumps(examples, indent=1))


def _rewrite_report(
    out: Path, runs: RunsFile, fresh: list[str], placements: Path | None, reading: Path | None
) -> None:
    preamble, sections = _sections((out / "REPORT.md").read_text())
    new = {
        "## Router health": health_section(runs.runs, {}),
        "## The fair test": fair_test_section(runs.runs, out),
        "## The other attributes": attributes_section(runs.runs),
        "## Fairness-loss weight sweep": sweep_section(runs.runs),
        "## Ablations": ablation_section(runs.runs),
        "## Bias variants": variants_section(runs.runs),
    }
    kept_note = (f"\n> Written before {', '.join(f'`{n}`' for n in fresh)} were retrained with "
                 "the placement above; it describes the runs of the previous build.\n")  # fmt: skip
    body = []
    for heading, text in sections:
        key = next((k for k in RECOMPUTED if heading.startswith(k)), None)
        if key is None:
            if heading.startswith(
                ("## Where the image experts sit", "## The image experts' influence")
            ):
                continue  # written again below
            text = re.sub(r"\n> Written before .*\n", "\n", text)  # an earlier replacement's
            body.append(heading + kept_note + text.rstrip("\n") + "\n\n")
        elif new[key]:
            body.append("\n".join(new[key]).rstrip("\n") + "\n\n")
    default = fresh_default(fresh)
    extra = []
    if default is not None:
        extra = influence_section(json.loads((out / "model" / f"{default}.json").read_text()))
    if placements is not None and placements.is_file():
        text = placements.read_text().split("\n", 1)[1]  # drop its '# ' title
        extra += [
            "## Where the image experts sit: the placement study",
            text.replace("\n## ", "\n### "),
        ]
    (out / "REPORT.md").write_text(preamble + "\n".join(extra) + "\n" + "".join(body))


def fresh_default(fresh: list[str]) -> str | None:
    return b.DEFAULT if b.DEFAULT in fresh else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("runs", type=Path, help="folder of retrained runs (train() outputs)")
    ap.add_argument("--data", type=Path, required=True, help="their data set (for the examples)")
    ap.add_argument("--out", type=Path, default=ROOT / "assets")
    ap.add_argument("--placements", type=Path, help="PLACEMENTS.md of the placement study")
    ap.add_argument("--reading", type=Path, help="the team's reading, after the study")
    args = ap.parse_args(argv)
    fresh = replace_runs(args.runs, args.data, args.placements, args.out, args.reading)
    print("replaced:", ", ".join(fresh))
    return 0


if __name__ == "__main__":
    sys.exit(main())
