"""RESULTS.md of the fair test: every table built from results.json, the verdict beside each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairmoe.fairtest.verdict import CRITERIA
from fairmoe.schema import ATTRIBUTES

__all__ = ["markdown", "write_markdown"]

GROUPS = ATTRIBUTES["race"].groups
ARM_NAMES = {"control": "CLIP (positive control)", "oracle": "CLIP on the twin without the cause (oracle)",
             "clip": "CLIP", "fairclip": "FairCLIP", "fairmoe": "Fair-MoE",
             "nofol": "Fair-MoE without FOL",
             "fairmoe_notes": "Fair-MoE, group batches read the notes (reference code)",
             "fairmoe_inbatch": "Fair-MoE, in-batch groups with gradients"}  # fmt: skip


def _f(v: Any, d: int = 3, sign: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.{d}f}" if sign else f"{v:.{d}f}"


def _mean(rows: list[dict], get) -> float | None:
    vals = [get(r) for r in rows]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _positive_control(pc: dict) -> list[str]:
    return [
        "### Positive control",
        "",
        f"- White AUC with the stamp {_f(pc['white_auc_with_stamp'])}, without it "
        f"{_f(pc['white_auc_without_stamp'])}: reliance {_f(pc['stamp_reliance'], sign=True)} "
        "(needs >= 0.03).",
        f"- Race AUC gap (best minus worst group): {_f(pc['race_auc_gap'])} for CLIP, "
        f"{_f(pc['oracle_race_auc_gap'])} for the CLIP fine-tuned on the stamp-free twin.",
        f"- **The positive control {'holds' if pc['holds'] else 'does not hold'}.**",
        "",
    ]


def _arm_table(runs: list[dict]) -> list[str]:
    head = ("| method | seeds | AUC | worst-group AUC | " + " | ".join(f"AUC {g}" for g in GROUPS)
            + " | ES-AUC | stamp reliance | " + " | ".join(f"TPR {g}" for g in GROUPS)
            + " | " + " | ".join(f"FPR {g}" for g in GROUPS)
            + " | TPR gap | DEOdds | DPD | DEOdds @0.5 | DPD @0.5 | "
            + " | ".join(f"ECE {g}" for g in GROUPS) + " |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for arm in ARM_NAMES:
        rows = [r["figures"] for r in runs if r["arm"] == arm]
        if not rows:
            continue
        op = [r["at_operating_point"] for r in rows]
        half = [r["at_0.5"] for r in rows]
        cells = [ARM_NAMES[arm], str(len(rows)), _f(_mean(rows, lambda r: r["auc"])),
                 _f(_mean(rows, lambda r: r["worst_group_auc"]))]  # fmt: skip
        cells += [_f(_mean(rows, lambda r, i=i: r["group_auc"][i])) for i in range(len(GROUPS))]
        cells += [_f(_mean(rows, lambda r: r["es_auc"])),
                  _f(_mean(rows, lambda r: r.get("stamp_reliance")), sign=True)]  # fmt: skip
        for key in ("tpr", "fpr"):
            cells += [_f(_mean(op, lambda r, i=i, k=key: r[k][i])) for i in range(len(GROUPS))]
        cells += [_f(_mean(op, lambda r, k=k: r[k])) for k in ("tpr_gap", "deodds", "dpd")]
        cells += [_f(_mean(half, lambda r, k=k: r[k])) for k in ("deodds", "dpd")]
        cells += [_f(_mean(rows, lambda r, i=i: r["group_ece"][i])) for i in range(len(GROUPS))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _comparisons(res: dict) -> list[str]:
    lines = ["| vs CLIP (paired seeds) | AUC diff | " + " | ".join(CRITERIA) + " |",
             "|---|---|" + "---|" * len(CRITERIA)]  # fmt: skip
    for arm, comp in res.get("comparisons", {}).items():
        if not comp:
            continue
        cells = [ARM_NAMES[arm], _f(comp["auc_diff"], sign=True)]
        for key in CRITERIA:
            c = comp.get(key)
            if c is None:
                cells.append("-")
                continue
            share = "" if c["share"] is None else f", {c['share']:.0%} of headroom"
            cells.append(f"{_f(c['diff'], sign=True)} [{_f(c['ci'][0], sign=True)}, "
                         f"{_f(c['ci'][1], sign=True)}]{share}")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    h = res.get("headroom", {})
    lines += ["", "Headroom: " + "; ".join(f"{k} {_f(v)}" for k, v in h.items()) + "."]
    return lines


def _baselines(res: dict) -> list[str]:
    lines = ["| post-processing on CLIP's scores | TPR gap | FPR gap | DEOdds | DPD |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name, b in res.get("baselines", {}).items():
        if "error" in b:
            lines.append(f"| {name} | {b['error']} | | | |")
            continue
        lines.append(f"| {name} | {_f(b['tpr_gap'])} | {_f(b['fpr_gap'])} | {_f(b['deodds'])} "
                     f"| {_f(b['dpd'])} |")  # fmt: skip
    return lines


def _verdict(v: dict) -> list[str]:
    lines = [f"**Verdict: {v['verdict']}**" + (f" (on {', '.join(v['positive_on'])})"
                                               if v["positive_on"] else ""), ""]  # fmt: skip
    for key, c in v["criteria"].items():
        lines.append(f"- {CRITERIA[key]}: Fair-MoE {'meets' if c['fairmoe_met'] else 'does not meet'}"
                     f" it ({c['fairmoe']}); without FOL {'meets' if c['nofol_met'] else 'does not meet'}"
                     f" it ({c['nofol']}).")  # fmt: skip
    return lines


def markdown(results: dict) -> str:
    out = ["# The fair test: results", "",
           "Built by `scripts/fair_test.py` from `results.json`; criteria in "
           "docs/fair_test/PREREGISTERED.md. TPR/FPR/gaps at each run's operating point "
           "(overall sensitivity 0.85 on validation) unless marked @0.5; ECE with 10 bins; "
           "figures are means over seeds.", ""]  # fmt: skip
    for name, res in results["scenarios"].items():
        runs = [r for r in results["runs"].values() if r["data"] in (name, f"{name}-free")]
        d = res.get("test_draw", {})
        groups = ", ".join(f"{g} {v['n']} (prevalence {v['prevalence']:.2f})"
                           for g, v in d.get("groups", {}).items())  # fmt: skip
        out += [f"## Scenario `{name}`", "", f"Test draw: {d.get('n')} cases; {groups}.", ""]
        if "positive_control" in res:
            out += _positive_control(res["positive_control"])
        out += [
            "### Methods",
            "",
            *_arm_table(runs),
            "",
            "### Paired differences (95% CI)",
            "",
            *_comparisons(res),
            "",
            "### Post-processing baselines",
            "",
            *_baselines(res),
            "",
        ]
        if "verdict" in res:
            out += ["### Verdict", "", *_verdict(res["verdict"]), ""]
    return "\n".join(out) + "\n"


def write_markdown(path: Path, results: dict) -> None:
    path.write_text(markdown(results), encoding="utf-8")
