"""Predictor: scan + note -> calibrated glaucoma probability, expert routing, warnings (CPU-friendly).

The decision uses the scan only, by CLIP zero-shot classification against the two prompts (as Fair-MoE
and FairCLIP evaluate); the note is encoded to show how well it agrees with the scan and which of its
tokens the text experts kept. Patient attributes are never model inputs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairmoe.calibration import OODReference, glaucoma_probability
from fairmoe.checkpoint import RunMetadata
from fairmoe.data.fairvlmed import normalize_scan, preprocess_scan, truncate_note
from fairmoe.explain import attribute_experts, attribute_note
from fairmoe.inputs import (
    MAX_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_NOTE_CHARS,
    NOTE_CHARS,
    InputError,
    ScanInput,
    check_note,
    load_scan,
    quality_warnings,
)
from fairmoe.model import load_model
from fairmoe.schema import ATTRIBUTES, OPERATING_POINT

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NOTE_CHARS",
    "InputError",
    "Predictor",
    "ScanInput",
    "check_note",
    "load_scan",
]


def _uncertainty(p: float, threshold: float) -> str:
    margin = abs(p - threshold)
    if margin < 0.1:
        return (
            f"Inconclusive: {p:.0%} is close to the {threshold:.0%} operating point; the model "
            "cannot tell these cases apart reliably. Treat it as 'not sure'."
        )
    if margin < 0.25:
        return "Moderate confidence: the probability is on one side of the operating point but not far."
    return "High model confidence. This is still a research model, not a diagnosis."


class Predictor:
    """A loaded checkpoint ready to score scans on CPU."""

    def __init__(self, checkpoint: str | Path | RunMetadata, *, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model, self.meta = load_model(checkpoint, device=self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)  # attributions differentiate inputs only (and run faster)
        self.method: str = self.meta.method
        self.attribute: str = self.meta.attribute
        self.image_size: int = self.model.config.vision.image_size
        self.grid: int = self.model.grid
        moe = self.model.token_moe_img
        self.n_experts: int = moe.cfg.n_experts if moe is not None else 0
        attr = ATTRIBUTES.get(self.attribute)
        n_feat = len(self.model.feat_moe_img.experts) if self.model.feat_moe_img is not None else 0
        self.group_names = [
            attr.groups[j] if attr is not None and j < attr.n_groups else f"expert {j}"
            for j in range(n_feat)
        ]
        self.temperature = self.meta.temperature
        self.threshold = OPERATING_POINT  # the temperature keeps the references' 0.5 boundary
        self.tokenizer = self.model.tokenizer()
        with torch.no_grad():  # not inference_mode: attributions differentiate through these
            self.prompts = self.model.encode_prompts().to(self.device)  # (2, E)
        self.ood = OODReference.from_dict(self.meta.ood) if self.meta.ood else None

    # -- inputs ---------------------------------------------------------------------------------
    def scan_pixels(self, scan: ScanInput | Any) -> np.ndarray:
        """The (S, S) uint8 centre-cropped model input, for overlays."""
        return preprocess_scan(load_scan(scan).image, self.image_size).numpy()

    def _image_input(self, scan: ScanInput) -> torch.Tensor:
        pixels = preprocess_scan(scan.image, self.image_size)
        return normalize_scan(pixels.unsqueeze(0)).to(self.device)  # (1, 3, S, S)

    def _tokens(self, note: str) -> torch.Tensor:
        return self.tokenizer([truncate_note(note, NOTE_CHARS)]).to(self.device)  # (1, 77)

    # -- prediction -----------------------------------------------------------------------------
    def _ood_warning(self, feature: torch.Tensor) -> str | None:
        if self.ood is None or not self.ood.is_novel(feature):
            return None
        return (
            "This scan is unlike the scans the model was trained on (its embedding lies outside "
            f"{self.ood.quantile:.0%} of validation scans). The probability may be "
            "meaningless: check that this is an SLO fundus scan of usable quality."
        )

    def _grid(self, values: torch.Tensor) -> list[list[float]]:
        g = self.grid
        return values[1:].reshape(g, g).tolist()  # token 0 is CLS

    def _routing_summary(self, routing: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"experts": [], "dropped_patches": None, "n_dropped": 0}
        tr = routing.get("token_img")
        if tr is not None:
            w, kept = tr.weights[0].float(), tr.kept[0]  # (T, E)
            load = tr.patch_load()[0]  # (E,)
            k1 = self.model.token_moe_img.cfg.top_k
            top = tr.probs[0].topk(k1, dim=-1).indices  # (T, k1): the token's chosen experts
            chosen = torch.zeros_like(kept).scatter_(-1, top, True)
            for e in range(w.shape[1]):
                k = kept[:, e]
                out["experts"].append(
                    {
                        "id": e,
                        "kept_patches": int(k[1:].sum()),
                        "load": float(load[e]),  # kept share of the patches
                        "keeps_cls": bool(k[0]),
                        "gate_mean": float(w[k, e].mean()) if bool(k.any()) else 0.0,
                        "kept": self._grid(k.int()),
                        # chosen by top-k but over this expert's capacity: filtered here
                        "capacity_dropped": self._grid((chosen[:, e] & ~k).int()),
                        "weights": self._grid(w[:, e]),
                    }
                )
            dropped = tr.dropped[0]
            out["dropped_patches"] = self._grid(dropped.int())
            out["n_dropped"] = int(dropped[1:].sum())
        return out

    @torch.inference_mode()
    def predict(self, scan: ScanInput | Any, note: str | None = None) -> dict[str, Any]:
        scan = load_scan(scan)
        note = note if note is not None else scan.note
        note, note_warnings = check_note(note)
        x = self._image_input(scan)
        h = self.model.image_trunk(x)
        feature, routing = self.model.image_head(h)  # (1, E) normalised
        cos = (feature @ self.prompts.T)[0]  # (2,)
        p = float(glaucoma_probability(cos[None].double(), temperature=self.temperature)[0])
        warns = list(scan.warnings) + quality_warnings(scan.image)
        ood = self._ood_warning(feature[0])
        if ood:
            warns.append(ood)
        result: dict[str, Any] = {
            "probability": p,
            "decision": "glaucoma" if p >= self.threshold else "no glaucoma",
            "threshold": self.threshold,
            "uncertainty": _uncertainty(p, self.threshold),
            "raw_cosines": [float(cos[0]), float(cos[1])],
            "temperature": self.temperature,
            "method": self.method,
            "attribute": self.attribute,
            "grid": self.grid,
        }
        result.update(self._routing_summary(routing))
        feat = routing.get("feat_img")
        result["feature_gates"] = {
            "image": feat.weights[0].tolist() if feat is not None else None,
            "text": None,
            "names": self.group_names,
        }
        result["note"] = {
            "text": note,
            "similarity_to_scan": None,
            "tokens": [],
            "dropped_tokens": [],
        }
        if note:
            tokens = self._tokens(note)
            text_feature, troute = self.model.encode_text_with_routing(tokens)
            result["note"]["similarity_to_scan"] = float(feature[0] @ text_feature[0])
            result["note"]["tokens"] = self.model.token_strings(tokens)
            if "feat_txt" in troute:
                result["feature_gates"]["text"] = troute["feat_txt"].weights[0].tolist()
            if "token_txt" in troute:
                n = len(result["note"]["tokens"])
                dropped = troute["token_txt"].dropped[0, 1 : 1 + n].tolist()  # skip SOT
                result["note"]["dropped_tokens"] = [bool(d) for d in dropped]
        else:
            warns.append("No clinical note given: only the scan was used (the decision always is).")
        result["warnings"] = warns + note_warnings
        if scan.attrs is not None:
            result["npz"] = {"attrs": scan.attrs, "label": scan.label}
        if not math.isfinite(p):
            raise RuntimeError("the model produced a non-finite probability")
        return result

    def explain(
        self, scan: ScanInput | Any, note: str | None = None, *, n_steps: int = 16
    ) -> dict[str, Any]:
        """``predict`` plus Captum attributions per image expert and over the note's tokens."""
        scan = load_scan(scan)
        result = self.predict(scan, note)
        x = self._image_input(scan)
        kw = {"prompts": self.prompts, "temperature": self.temperature, "n_steps": n_steps}
        result["attributions"] = attribute_experts(self.model, x, **kw)
        text = result["note"]["text"]
        result["note_attributions"] = (
            attribute_note(self.model, x, self._tokens(text), n_steps=n_steps) if text else []
        )
        return result
