"""Ground-truth shortcut probe: what a model does when the generator's biases are taken away.

The synthetic generator knows every bias it planted, so each test case can be re-rendered as a
counterfactual of itself (same patient, same anatomy, same noise):
- ``no_stamp``: the device stamp removed (it tracks the label in White patients only);
- ``swapped_stamp``: the stamp removed where present and added where absent;
- ``equal_acquisition``: the minority groups' worse acquisition (contrast, blur, vignetting)
  replaced by the draw every group gets at bias 0.
For each model and race group the probe reports the mean |change| of the calibrated probability
over the cases the counterfactual changes, and the AUC on the original and counterfactual sets: a
model that reads the optic disc barely moves; one that reads the stamp does.

It also tests the paper's mechanism claim directly ("FO-MoE filters out biased patch
embeddings"): on scans that carry the stamp, is the stamp's patch kept by no expert more often,
and given less gate weight, than the other patches? (``mechanism``)

    python -m fairmoe.probe --data DIR --checkpoint A.json [B.json ...] --out probe.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairmoe import metrics
from fairmoe.calibration import glaucoma_probability
from fairmoe.data.fairvlmed import FairVLMedDataset, normalize_scan, preprocess_scan, read_npz
from fairmoe.data.synthetic import (
    SCENARIOS,
    SyntheticConfig,
    draw_acquisition,
    mechanisms_config,
    render_scan,
    sample_params,
)
from fairmoe.model import FairMoECLIP, load_model
from fairmoe.schema import ATTRIBUTES

__all__ = ["COUNTERFACTUALS", "Cases", "build_cases", "mechanism", "probe_model", "read_settings"]

COUNTERFACTUALS = ("no_stamp", "swapped_stamp", "equal_acquisition")
BATCH = 256
N_BOOT = 1000  # bootstrap resamples of the mechanism test's paired differences


@dataclass(frozen=True)
class Settings:
    """How a synthetic folder was generated (read back from its SYNTHETIC.md)."""

    seed: int
    bias: float
    mechanisms: str
    config: SyntheticConfig


def read_settings(root: str | Path) -> Settings:
    """Seed, bias and mechanisms of a folder written by ``fairmoe.data.synthetic``."""
    path = Path(root) / "SYNTHETIC.md"
    if not path.is_file():
        raise ValueError(f"{root}: no SYNTHETIC.md; the probe needs a synthetic data folder")
    text = path.read_text(encoding="utf-8")
    found = re.search(r"seed = (-?\d+), bias = ([0-9.]+)", text)
    if found is None:
        raise ValueError(f"{path}: no 'seed = S, bias = B' line; was it written by this version?")
    # the command that wrote the folder (the documentation below it names other presets too)
    cmd = re.search(r"`python -m fairmoe\.data\.synthetic ([^`]*)`", text)
    line = cmd.group(1) if cmd else ""
    mech = re.search(r"--mechanisms ([\w-]+)", line)
    scenario = re.search(r"--scenario ([\w-]+)", line)
    if mech:
        name = mech.group(1)
    elif scenario and scenario.group(1) in SCENARIOS:
        name = SCENARIOS[scenario.group(1)].mechanisms
    else:
        name = "all"
    return Settings(int(found.group(1)), float(found.group(2)), name, mechanisms_config(name))


def _variant(p, which: str, s: Settings):
    if which == "no_stamp":
        return dataclasses.replace(p, marker=False)
    if which == "swapped_stamp":
        return dataclasses.replace(p, marker=not p.marker)
    if which == "equal_acquisition":
        fair = draw_acquisition(s.seed, p.index, p.race, bias=0.0, config=s.config)
        return dataclasses.replace(p, acquisition=fair)
    raise ValueError(f"unknown counterfactual {which!r}; expected one of {COUNTERFACTUALS}")


@dataclass
class Cases:
    """The test split at one image size: originals, counterfactuals and what each changed."""

    ids: list[str]
    labels: np.ndarray  # (N,) recorded labels
    attrs: dict[str, np.ndarray]  # attribute -> (N,) codes
    marker: np.ndarray  # (N,) bool: the original carries the stamp
    original: torch.Tensor  # (N, S, S) uint8 model input
    variants: dict[str, torch.Tensor]  # name -> (N, S, S) uint8
    changed: dict[str, np.ndarray]  # name -> (N,) bool: the counterfactual differs

    def stamp_patch(self, grid: int) -> np.ndarray:
        """(N,) index of the patch (row-major, CLS excluded) holding the stamp; -1 without one."""
        diff = (self.original.int() - self.variants["no_stamp"].int()).abs().float()
        s = diff.shape[-1] // grid
        per_patch = diff[:, : grid * s, : grid * s].reshape(-1, grid, s, grid, s).sum((2, 4))
        idx = per_patch.reshape(len(diff), -1).argmax(1).numpy()
        return np.where(self.marker, idx, -1)


def build_cases(root: str | Path, image_size: int, *, split: str = "test") -> Cases:
    """Re-render every case of ``split`` as each counterfactual (checked against the files)."""
    s = read_settings(root)
    ds = FairVLMedDataset(root, split, image_size=image_size)
    ids, marker = [], []
    original, variants = [], {v: [] for v in COUNTERFACTUALS}
    changed = {v: [] for v in COUNTERFACTUALS}
    for rec in ds.records:
        index = int(rec.id.split("_")[-1])
        p = sample_params(index, seed=s.seed, bias=s.bias, config=s.config)
        if (p.glaucoma, p.race) != (rec.label, rec.attrs[0]):
            raise ValueError(f"{rec.path}: not the case its SYNTHETIC.md settings generate")
        image = read_npz(rec.path)["image"]
        original.append(preprocess_scan(image, image_size))
        for v in COUNTERFACTUALS:
            cf = _variant(p, v, s)
            changed[v].append(cf != p)
            scan = render_scan(cf, s.config) if cf != p else image
            variants[v].append(preprocess_scan(scan, image_size))
        ids.append(rec.id)
        marker.append(p.marker)
    names = list(ATTRIBUTES)
    return Cases(
        ids,
        ds.labels.copy(),
        {a: ds.attrs[:, j].copy() for j, a in enumerate(names)},
        np.array(marker),
        torch.stack(original),
        {v: torch.stack(x) for v, x in variants.items()},
        {v: np.array(x) for v, x in changed.items()},
    )


@torch.no_grad()
def _forward(model: FairMoECLIP, pixels: torch.Tensor, temperature: float) -> dict[str, Any]:
    """Calibrated probabilities (N,) and, for a token MoE, patch routing (N, T-1) as arrays."""
    prompts = model.encode_prompts()
    probs, dropped, gate = [], [], []
    for i in range(0, len(pixels), BATCH):
        f, routing = model.encode_image_with_routing(normalize_scan(pixels[i : i + BATCH]))
        probs.append(glaucoma_probability(f @ prompts.T, temperature=temperature))
        if "token_img" in routing:
            r = routing["token_img"]
            dropped.append(r.dropped[:, 1:])
            gate.append(r.weights[:, 1:].sum(-1))  # (B, T-1) gate weight kept per patch
    out: dict[str, Any] = {"p": torch.cat(probs).numpy()}
    if dropped:
        out["dropped"] = torch.cat(dropped).numpy()
        out["gate"] = torch.cat(gate).numpy()
    return out


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    if not len(y):
        return None
    v = metrics.auc(y, s)
    return None if np.isnan(v) else float(v)


def probe_model(model: FairMoECLIP, temperature: float, cases: Cases) -> dict[str, Any]:
    """Per counterfactual and race group: n changed, mean |change|, decision flips, AUCs."""
    model.eval()
    base = _forward(model, cases.original, temperature)
    out: dict[str, Any] = {}
    race = cases.attrs["race"]
    for v in COUNTERFACTUALS:
        cf = _forward(model, cases.variants[v], temperature)["p"]
        rows = {}
        for g, name in [(None, "all"), *enumerate(ATTRIBUTES["race"].groups)]:
            m = np.ones(len(race), bool) if g is None else race == g
            ch = m & cases.changed[v]
            delta = np.abs(cf[ch] - base["p"][ch])
            flips = (cf[ch] >= 0.5) != (base["p"][ch] >= 0.5)
            rows[name] = {
                "n": int(m.sum()),
                "n_changed": int(ch.sum()),
                "mean_abs_change": float(delta.mean()) if ch.any() else None,
                "decision_flips": float(flips.mean()) if ch.any() else None,
                "auc_original": _auc(cases.labels[m], base["p"][m]),
                "auc_counterfactual": _auc(cases.labels[m], cf[m]),
            }
        out[v] = rows
    return out


def mechanism(model: FairMoECLIP, cases: Cases, *, seed: int = 0) -> dict[str, Any] | None:
    """On stamped scans: the stamp patch's no-expert rate and gate weight vs the other patches.

    Paired per scan (stamp patch minus the mean of the scan's other patches); percentile
    bootstrap intervals over scans. None for a model without a token MoE.
    """
    out = _forward(model, cases.original, temperature=1.0)
    if "dropped" not in out:
        return None
    where = cases.stamp_patch(model.grid)
    rows = np.flatnonzero(where >= 0)
    if not len(rows):
        return {"n_stamped": 0}
    res: dict[str, Any] = {"n_stamped": int(len(rows))}
    rng = np.random.default_rng(seed)
    for key in ("dropped", "gate"):
        vals = out[key][rows].astype(np.float64)  # (n, P)
        at = vals[np.arange(len(rows)), where[rows]]
        rest = (vals.sum(1) - at) / (vals.shape[1] - 1)
        diff = at - rest
        boot = rng.integers(0, len(diff), (N_BOOT, len(diff)))
        lo, hi = np.quantile(diff[boot].mean(1), [0.025, 0.975])
        res[key] = {
            "stamp_patch": float(at.mean()),
            "other_patches": float(rest.mean()),
            "difference": float(diff.mean()),
            "ci": [float(lo), float(hi)],
        }
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fairmoe.probe", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the synthetic folder the runs used")
    ap.add_argument("--checkpoint", type=Path, nargs="+", required=True, help="NAME.json files")
    ap.add_argument("--out", type=Path, required=True, help="JSON report")
    args = ap.parse_args(argv)
    report, cache = {}, {}
    for ckpt in args.checkpoint:
        model, meta = load_model(ckpt)
        size = model.config.vision.image_size
        if size not in cache:
            cache[size] = build_cases(args.data, size)
        report[meta.name] = {
            "method": meta.method,
            "counterfactuals": probe_model(model, meta.temperature, cache[size]),
            "mechanism": mechanism(model, cache[size]),
        }
        print(f"probed {meta.name}", file=sys.stderr)
    args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
