"""Predictor: scan + note -> calibrated glaucoma probability, expert routing, warnings (CPU-friendly).

The decision uses the scan only, by CLIP zero-shot classification against the two prompts (as Fair-MoE
and FairCLIP evaluate); the note is encoded to show how well it agrees with the scan and which of its
tokens the text experts kept. Patient attributes are never model inputs.

A scan the assessability check (``fairmoe.ood``) refuses gets ``decision: None``
(:func:`fairmoe.wording.decision_of`) and no explanation: :meth:`Predictor.explain` and
:meth:`Predictor.model_maps` answer it with the refusal and skip the attribution work.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fairmoe.calibration import OODReference, glaucoma_logit, glaucoma_probability
from fairmoe.checkpoint import RunMetadata
from fairmoe.data.fairvlmed import normalize_scan, preprocess_scan, truncate_note
from fairmoe.explaining import EXPLAIN_STEPS, Explaining
from fairmoe.influence import scan_influence
from fairmoe.inputs import (
    MAX_FILE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_NOTE_CHARS,
    NOTE_CHARS,
    InputError,
    Prepared,
    ScanInput,
    check_note,
    edited_scan,
    load_scan,
    quality_warnings,
)
from fairmoe.model import load_model
from fairmoe.ood import is_colour, load_beside, unchecked
from fairmoe.schema import ATTRIBUTES, OPERATING_POINT
from fairmoe.wording import NOT_ASSESSABLE, decision_of, is_refused, uncertainty

__all__ = [
    "EXPLAIN_STEPS",
    "MAX_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NOTE_CHARS",
    "InputError",
    "Predictor",
    "Prepared",
    "ScanInput",
    "check_note",
    "decision_of",
    "edited_scan",
    "load_scan",
]


@dataclass
class ImageBatch:
    """The image tower's answer for a batch: features, prompt cosines, probabilities, routing."""

    features: torch.Tensor  # (B, E) normalised
    cosines: torch.Tensor  # (B, 2); index 1 is glaucoma
    probabilities: torch.Tensor  # (B,) float64, calibrated
    routing: dict[str, Any]
    # (B, 2) calibrated log-odds with and without every image expert (influence=True only)
    influence_logits: torch.Tensor | None = None


class Predictor(Explaining):
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
        # the validated check (fairmoe.ood) when RUN.ood.json is beside the checkpoint
        self.detector = load_beside(self.meta.path, self.model)

    def clone(self) -> Predictor:
        """An independent copy of the model (same weights), for work that must not share it.

        Captum's layer attributions hook the note's token embedding while an explanation runs;
        a prediction running through the same module at that moment would pass through the hook.
        """
        twin = copy.copy(self)
        twin.model = copy.deepcopy(self.model)
        twin.prompts = self.prompts.clone()
        return twin

    def warm_up(self) -> None:
        """The attributions of a noise image, so the first user does not pay for lazy setup
        (run directly: the assessability check would refuse the noise)."""
        rng = np.random.default_rng(0)
        image = (rng.random((self.image_size, self.image_size)) * 255).astype(np.uint8)
        item = self.prepare(image, "warm-up note")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.predict_prepared([item])
            self._attributions(item, n_steps=4, model_maps=True)

    # -- inputs ---------------------------------------------------------------------------------
    def scan_pixels(self, scan: ScanInput | Any) -> np.ndarray:
        """The (S, S) uint8 centre-cropped model input, for overlays."""
        return preprocess_scan(load_scan(scan).image, self.image_size).numpy()

    def _image_input(self, scan: ScanInput) -> torch.Tensor:
        pixels = preprocess_scan(scan.image, self.image_size)
        return normalize_scan(pixels.unsqueeze(0)).to(self.device)  # (1, 3, S, S)

    def _tokens(self, notes: str | Sequence[str]) -> torch.Tensor:
        notes = [notes] if isinstance(notes, str) else list(notes)
        return self.tokenizer([truncate_note(n, NOTE_CHARS) for n in notes]).to(self.device)

    def prepare(
        self,
        scan: ScanInput | Any,
        note: str | None = None,
        *,
        assess: bool = True,
        edited: np.ndarray | None = None,
    ) -> Prepared:
        """Decode and check one request (InputError for a bad scan or note); ``assess=False``
        skips the assessability statistics (for work that gives no verdict).

        ``edited``: the model input (S, S) uint8 after the scan editor's edits. The model then
        sees exactly these pixels, and every check measures :func:`edited_scan`, the upload
        with the edit pasted in: an edit that ruins the scan is refused like an upload would be.
        """
        scan = load_scan(scan)
        text, note_warnings = check_note(note if note is not None else scan.note)
        pixels = preprocess_scan(scan.image, self.image_size)
        if edited is not None:
            edited = np.asarray(edited)
            size = (self.image_size, self.image_size)
            if edited.shape != size or edited.dtype != np.uint8:
                raise ValueError(
                    f"edited pixels must be uint8 {size}, got {edited.dtype} {edited.shape}"
                )
            image = edited_scan(scan.image, pixels.numpy(), edited)
            scan = dataclasses.replace(scan, image=image, warnings=list(scan.warnings))
            pixels = torch.from_numpy(edited.copy())
        check = assess and self.detector is not None
        stats = self.detector.statistics(scan.image) if check else None
        return Prepared(scan, text or "", pixels, note_warnings, stats)

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

    def _routing_summary(self, routing: dict[str, Any], i: int = 0) -> dict[str, Any]:
        """Routing of sample ``i`` of a batch: per-expert patch grids, dropped patches."""
        out: dict[str, Any] = {"experts": [], "dropped_patches": None, "n_dropped": 0}
        tr = routing.get("token_img")
        if tr is not None:
            w, kept = tr.weights[i].float(), tr.kept[i]  # (T, E)
            load = tr.patch_load()[i]  # (E,)
            k1 = self.model.token_moe_img.cfg.top_k
            top = tr.probs[i].topk(k1, dim=-1).indices  # (T, k1): the token's chosen experts
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
            dropped = tr.dropped[i]
            out["dropped_patches"] = self._grid(dropped.int())
            out["n_dropped"] = int(dropped[1:].sum())
        return out

    @torch.inference_mode()
    def forward_pixels(
        self, pixels: torch.Tensor | np.ndarray, *, influence: bool = False
    ) -> ImageBatch:
        """One forward pass of the image tower over uint8 pixels (B, S, S); ``influence``: also
        the log-odds with every image expert silenced (one more pass of the tower's head).

        Every sample is routed and scored on its own (capacities are per sample), so a batch
        gives each scan the answer it gets alone, up to float rounding.
        """
        x = normalize_scan(torch.as_tensor(pixels).to(self.device))
        h = self.model.image_trunk(x)
        features, routing = self.model.image_head(h)
        cos = features @ self.prompts.T  # (B, 2)
        p = glaucoma_probability(cos.double(), temperature=self.temperature)
        both = None
        if "token_img" in routing and influence:  # exact: the experts' output zeroed
            n_exp, (b, t, d) = self.model.token_moe_img.cfg.n_experts, h.shape
            quiet = self.model.image_head(h, contributions=h.new_zeros(b, n_exp, t, d))[0]
            both = torch.stack([glaucoma_logit(f, self.prompts, self.temperature)
                                for f in (features, quiet)], dim=1)  # fmt: skip
        return ImageBatch(features, cos, p, routing, both)

    def score_pixels(self, pixels: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """What a scores CSV holds for a batch: ``score``, ``cosines`` and, with experts,
        ``loads`` and ``gate_loads`` (share of patches each image expert kept, mean gate)."""
        out = self.forward_pixels(pixels)
        res = {
            "score": out.probabilities.cpu().numpy(),
            "cosines": out.cosines.double().cpu().numpy(),
        }
        tr = out.routing.get("token_img")
        if tr is not None:
            res["loads"] = tr.patch_load().double().cpu().numpy()
            res["gate_loads"] = tr.patch_gate_load().double().cpu().numpy()
        return res

    def assess_pixels(
        self,
        pixels: torch.Tensor | np.ndarray,
        statistics: Sequence[dict[str, float] | None],
        colour: Sequence[bool],
    ) -> list[dict[str, Any]]:
        """Assessability of model inputs (B, S, S) decoded elsewhere (``python -m fairmoe.score``
        decodes in DataLoader workers): ``statistics`` are the detector's
        :meth:`~fairmoe.ood.AssessabilityDetector.statistics` of each uploaded scan (None
        without a detector), ``colour`` whether it was decoded from colour. "Not checked"
        without a detector."""
        if self.detector is None:
            return [unchecked() for _ in statistics]
        if any(s is None for s in statistics):
            raise ValueError("the model has an assessability check: every scan needs statistics")
        px = torch.as_tensor(pixels)
        found = self.detector.assess(
            self.model,
            list(px.numpy()),  # not read: the statistics hold what is measured on the upload
            pixels=px,
            colour=list(colour),
            statistics=list(statistics),  # type: ignore[arg-type]
        )
        return [a.to_dict() for a in found]

    def _assess(self, items: Sequence[Prepared], pixels: torch.Tensor) -> list[dict[str, Any]]:
        """Assessability of each scan of a batch (one pass), or "not checked" without a detector."""
        if self.detector is None:
            return [unchecked() for _ in items]
        found = self.detector.assess(
            self.model,
            [item.scan.image for item in items],
            pixels=pixels,
            colour=[is_colour(item.scan.warnings) for item in items],
            statistics=None
            if any(i.statistics is None for i in items)
            else [i.statistics for i in items],  # fmt: skip
        )
        return [a.to_dict() for a in found]

    def _result(
        self, item: Prepared, batch: ImageBatch, i: int, assessed: dict[str, Any]
    ) -> dict[str, Any]:
        """The JSON answer of sample ``i`` (the note's part is filled in by the caller)."""
        p = float(batch.probabilities[i])
        if not math.isfinite(p):
            raise RuntimeError("the model produced a non-finite probability")
        cos = batch.cosines[i]
        result: dict[str, Any] = {
            "probability": p,  # reported even when refused, but then it must not be used
            "decision": decision_of(p, self.threshold, assessable=not is_refused(assessed)),
            "threshold": self.threshold,
            "uncertainty": uncertainty(p, self.threshold),
            "raw_cosines": [float(cos[0]), float(cos[1])],
            "temperature": self.temperature,
            "method": self.method,
            "attribute": self.attribute,
            "grid": self.grid,
        }
        result.update(self._routing_summary(batch.routing, i))
        if batch.influence_logits is not None:  # the image experts' influence on this scan
            result["influence"] = scan_influence(*batch.influence_logits[i].tolist())
        feat = batch.routing.get("feat_img")
        weights = feat.weights[i].tolist() if feat is not None else None
        result["feature_gates"] = {
            "image": weights,
            "text": None,
            # one expert per attribute group at training, but the gate sees only the embedding:
            # the experts are not the groups, so they are not named after them
            "names": [f"Feature expert {j}" for j in range(len(weights or []))],
        }
        result["note"] = {
            "text": item.note,
            "similarity_to_scan": None,
            "tokens": [],
            "dropped_tokens": [],
        }
        warns = list(item.scan.warnings) + quality_warnings(item.scan.image)
        ood = self._ood_warning(batch.features[i]) if self.detector is None else None
        result["warnings"] = warns + ([ood] if ood else [])
        result["assessable"] = assessed
        if is_refused(assessed):
            result["warnings"].insert(0, assessed["summary"])  # "Not assessable by this model: ..."
            result["uncertainty"] = NOT_ASSESSABLE
        if item.scan.attrs is not None:
            result["npz"] = {"attrs": item.scan.attrs, "label": item.scan.label}
        return result

    def _add_notes(self, items: Sequence[Prepared], results: list[dict], batch: ImageBatch) -> None:
        """Encode the notes of the batch in one text forward pass; fill in each note's part."""
        with_note = [i for i, item in enumerate(items) if item.note]
        if with_note:
            tokens = self._tokens([items[i].note for i in with_note])
            text_features, troute = self.model.encode_text_with_routing(tokens)
        for k, i in enumerate(with_note):
            note, gates = results[i]["note"], results[i]["feature_gates"]
            note["similarity_to_scan"] = float(batch.features[i] @ text_features[k])
            note["tokens"] = self.model.token_strings(tokens[k])
            if "feat_txt" in troute:
                gates["text"] = troute["feat_txt"].weights[k].tolist()
            if "token_txt" in troute:
                n = len(note["tokens"])
                dropped = troute["token_txt"].dropped[k, 1 : 1 + n].tolist()  # skip SOT
                note["dropped_tokens"] = [bool(d) for d in dropped]
        for item, result in zip(items, results, strict=True):
            if not item.note:
                result["warnings"].append(
                    "No clinical note given: only the scan was used (the decision always is)."
                )
            result["warnings"] += item.note_warnings

    @torch.inference_mode()
    def predict_prepared(self, items: Sequence[Prepared]) -> list[dict[str, Any]]:
        """``predict`` for a batch of prepared requests: one image and one text forward pass."""
        if not items:
            return []
        pixels = torch.stack([item.pixels for item in items])
        batch = self.forward_pixels(pixels, influence=True)
        assessed = self._assess(items, pixels)
        results = [self._result(item, batch, i, assessed[i]) for i, item in enumerate(items)]
        self._add_notes(items, results, batch)
        return results

    def predict_batch(
        self, scans: Sequence[ScanInput | Any], notes: Sequence[str | None] | None = None
    ) -> list[dict[str, Any]]:
        """``predict`` for many scans in one forward pass (InputError for the first bad input)."""
        notes = list(notes) if notes is not None else [None] * len(scans)
        return self.predict_prepared(
            [self.prepare(s, n) for s, n in zip(scans, notes, strict=True)]
        )

    def predict(self, scan: ScanInput | Any, note: str | None = None) -> dict[str, Any]:
        """Calibrated probability, decision, routing summary and warnings for one scan.

        A scan that is not assessable gets ``decision: None``; its ``probability`` is kept for
        the record but must not be used (``uncertainty`` and the first warning say so)."""
        return self.predict_prepared([self.prepare(scan, note)])[0]
