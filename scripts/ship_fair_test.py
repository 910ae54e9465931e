"""Ship the fair test (scripts/fair_test.py's folder) into assets/: runs, scenarios, results, report.

  python scripts/ship_fair_test.py runs/fair_test --out assets

- every evaluated run becomes a runs.json entry with role "fair_test" and ``data`` = its scenario
  (an oracle's: ``NAME-free``; the positive control's two CLIPs: "stamp-control"), its scores on
  the scenario's independent test draw in ``scores/fair_test/NAME.scores.csv`` (an oracle's on
  the draw's twin) and their AUC intervals beside them;
- runs.json records the scenarios (``fairmoe.data.synthetic.scenario_record``);
- ``fair_test/results.json``, ``RESULTS.md`` and ``control.json`` are copied as they are;
- REPORT.md's fair-test section (between the markers below) is rebuilt from results.json.
Runs of an earlier shipment of these scenarios are replaced; every other run stays.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fairmoe.data.synthetic import SCENARIOS, scenario_record  # noqa: E402
from fairmoe.fairtest.run import load_draw  # noqa: E402
from fairmoe.runs_file import RunsFile, read_runs, write_runs  # noqa: E402
from fairmoe.scores import ScoreSet, read_scores, write_scores  # noqa: E402
from scripts import build_assets as b  # noqa: E402
from scripts.report import summarise  # noqa: E402

BEGIN, END = "<!-- fair-test:begin -->", "<!-- fair-test:end -->"
CONTROL = "stamp-control"  # the scenario the positive control's runs are listed under


def ship_runs(ft: Path, out: Path, size: int) -> list[dict]:
    """Scores CSVs, AUC intervals and runs.json entries of every evaluated run."""
    results = json.loads((ft / "results.json").read_text())
    done = {}
    for line in (ft / "runs_done.jsonl").read_text().splitlines():
        done[json.loads(line)["name"]] = json.loads(line)
    draws: dict[str, object] = {}
    entries = []
    (out / "scores" / "fair_test").mkdir(parents=True, exist_ok=True)
    for name, r in results["runs"].items():
        oracle = r["arm"] == "oracle"
        key = f"test-{r['data']}"
        if key not in draws:
            draws[key] = load_draw(ft / "data" / key, "test", ft / "cache", size).t
        t = draws[key]
        p = np.load(ft / "scores" / f"{name}.npz")["test_free" if oracle else "test"]
        attrs = {a: t.attribute(a).numpy() for a in ("race", "gender", "ethnicity", "language")}
        ss = ScoreSet(name, list(t.ids), t.labels.numpy().astype(int), p, attrs)
        rel = f"scores/fair_test/{name}.scores.csv"
        write_scores(out / rel, ss)
        ss = read_scores(out / rel, name)  # summarised as the app reads it (6 decimals)
        ci_rel = rel.replace(".scores.csv", b.AUC_CI_SUFFIX)
        (out / ci_rel).write_text(json.dumps(b.auc_cis(out / rel), indent=1))
        meta = json.loads((ft / "runs" / f"{name}.json").read_text())
        tc = meta["train_config"]
        entries.append({
            "name": name, "method": tc["method"], "attribute": tc["attribute"],
            "seed": tc["seed"], "fairness_scale": tc["fairness_scale"], "tag": tc["tag"],
            "data": CONTROL if "-control-" in name else r["data"],
            "config": tc["model"], "role": "fair_test", "device": "cpu" if "cpu" in
            str(meta.get("device", "cpu")).lower() else "gpu", "epochs": tc["epochs"],
            "best_epoch": done[name]["best_epoch"], "train_seconds": done[name]["wall_seconds"],
            "temperature": meta.get("calibration", {}).get("temperature", meta.get("temperature")),
            "scores": rel, "test": summarise(ss), "auc_ci": ci_rel,
            # kept in RunEntry.extra: which arm of the test, and the draw its scores are on
            "arm": r["arm"], "test_draw": key.replace("test-", "test draw of "),
        })  # fmt: skip
        print(f"shipped {name}", flush=True)
    return entries


def update_runs(out: Path, entries: list[dict]) -> None:
    """Replace the runs on any scenario's data (an earlier shipment, or release 2's bias variant
    of the same name, which the scenario supersedes) and delete their files."""
    old = read_runs(out / "runs.json")
    j = old.to_json()
    named = {CONTROL, *SCENARIOS, *(f"{n}-free" for n in SCENARIOS)}  # twins: the oracles
    for r in old.runs:
        if r.data in named and not r.scores.startswith("scores/fair_test/"):
            for rel in (r.scores, r.auc_ci):
                if rel:
                    (out / rel).unlink(missing_ok=True)
    j["runs"] = [r for r in j["runs"] if r.get("data") not in named] + entries
    j["scenarios"] = scenario_record()
    write_runs(out / "runs.json", RunsFile.from_json(j, str(out / "runs.json")))


def report_section(results: dict) -> str:
    """The REPORT.md section: RESULTS.md's tables one heading level down, and the reading."""
    from fairmoe.fairtest.report import markdown

    body = markdown(results).split("\n", 1)[1]  # without RESULTS.md's own title
    body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())
    # the team's reading of the verdicts and the context (published numbers, corrections)
    docs = [ROOT / "docs" / "fair_test" / f for f in ("READING.md", "CONTEXT.md")]
    extra = "".join("\n" + d.read_text().strip() + "\n" for d in docs if d.is_file())
    return (f"{BEGIN}\n## The fair test: scenarios with a known cause (release 3)\n{body}{extra}"
            f"\n{END}")  # fmt: skip


def update_report(out: Path, results: dict) -> None:
    path = out / "REPORT.md"
    text = path.read_text(encoding="utf-8")
    section = report_section(results)
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("fair_test", type=Path, help="scripts/fair_test.py's --out folder")
    ap.add_argument("--out", type=Path, default=ROOT / "assets")
    ap.add_argument("--image-size", type=int, default=96)
    args = ap.parse_args(argv)
    ft, out = args.fair_test, args.out
    results = json.loads((ft / "results.json").read_text())
    shutil.rmtree(out / "scores" / "fair_test", ignore_errors=True)
    entries = ship_runs(ft, out, args.image_size)
    update_runs(out, entries)
    (out / "fair_test").mkdir(exist_ok=True)
    for f in ("results.json", "RESULTS.md", "control.json"):
        shutil.copy2(ft / f, out / "fair_test" / f)
    update_report(out, results)
    changed = ["runs.json", "REPORT.md", *(f"fair_test/{f}" for f in ("results.json", "RESULTS.md",
               "control.json"))]  # fmt: skip
    changed += [p.relative_to(out).as_posix() for p in (out / "scores" / "fair_test").iterdir()]
    b.update_manifest(out, changed)
    _prune_manifest(out)
    return 0


def _prune_manifest(out: Path) -> None:
    """Drop the entries of files an earlier shipment wrote and this one did not."""
    path = out / "MANIFEST.json"
    files = json.loads(path.read_text())["files"]
    kept = {rel: e for rel, e in files.items() if (out / rel).is_file()}
    path.write_text(json.dumps({"files": kept}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
