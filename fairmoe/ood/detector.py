"""The assessability detector: input checks + multi-layer feature novelty, one verdict per scan.

A scan is *assessable by this model* when it passes every input check (size, shape, field of view,
exposure, sharpness, noise; ``quality``) and its novelty score (``novelty``) is at most the
threshold calibrated on validation scans. The reference and the calibration include a benign copy
of each scan (``benign``: resized, re-compressed, mirrored, slightly turned, brighter or flatter),
so that such a copy of an assessable scan stays assessable. The fitted reference is saved as NAME.json (settings,
ranges, standardisation, threshold, the model's fingerprint, the sha256 of the tensors) beside
NAME.safetensors (per-layer means and shrunk precision matrices); loading never unpickles.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch import nn

from fairmoe.checkpoint import CheckpointError, sha256_file
from fairmoe.data.fairvlmed import preprocess_scan
from fairmoe.ood.acquisition import DetailScale, Standardisation
from fairmoe.ood.assessment import Assessment, unchecked
from fairmoe.ood.encoding import encode_scans
from fairmoe.ood.features import layer_features, tower_fingerprint
from fairmoe.ood.novelty import LayerGaussian, combine, standardised_distances
from fairmoe.ood.orientation import OrientationCheck, orientation_reason
from fairmoe.ood.quality import QualityReference, QualitySettings, scan_statistics
from fairmoe.ood.reasons import CHECKS, input_reasons, novelty_reason

__all__ = [
    "FORMAT",
    "Assessment",
    "AssessabilityDetector",
    "DetectorError",
    "detector_path",
    "load_beside",
    "unchecked",
]

FORMAT = "fairmoe-assessability/1"


class DetectorError(CheckpointError):
    """A saved detector is unreadable, tampered with, or belongs to another model (a checkpoint
    error: the app refuses to start with it, with this message, rather than serve unchecked)."""


def _json_path(path: str | Path) -> Path:
    p = Path(path)
    return p if p.name.endswith(".json") else p.with_name(p.name + ".json")


def detector_path(checkpoint: str | Path) -> Path:
    """Where the detector of checkpoint RUN.json lives: RUN.ood.json beside it."""
    p = Path(checkpoint)
    return p.with_name(p.name.removesuffix(".json") + ".ood.json")


def _doc_digest(doc: Mapping[str, Any]) -> str:
    """sha256 of the JSON document without its own digest (key order fixed)."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class AssessabilityDetector:
    """Fitted input ranges, per-layer Gaussians and the novelty threshold of one model."""

    quality: QualityReference
    layers: dict[str, LayerGaussian]
    threshold: float
    flag_rate: float  # share of calibration scans the detector was set to flag
    image_size: int
    fingerprint: str  # fairmoe.ood.features.tower_fingerprint of the model
    info: dict[str, Any] = field(default_factory=dict)  # counts and rates measured at fit time
    orientation: OrientationCheck | None = None  # the upside-down check; None in older files
    detail: DetailScale | None = None  # the scores' covariate (fairmoe.ood.acquisition)

    # -- fitting ----------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        model: nn.Module,
        reference: Iterable[np.ndarray],
        calibration: Iterable[np.ndarray],
        *,
        flag_rate: float = 0.025,
        orientation_rate: float = 0.015,
        settings: QualitySettings | None = None,
        batch_size: int = 128,
        calibration_groups: Sequence[str] | None = None,
        benign_copies: bool = True,
        seed: int = 0,
    ) -> AssessabilityDetector:
        """Fit on raw uint8 (H, W) scans: ``reference`` (training scans: the input ranges, the
        Gaussians and the orientation classifier) and ``calibration`` (held-out validation
        scans: the standardisation and the thresholds, set so that about ``flag_rate`` of them
        fail the input checks or the novelty check, and ``orientation_rate`` the orientation
        check). With ``benign_copies`` both sets also hold one benign copy of each scan (drawn
        with ``seed``); the input ranges are fitted on the scans alone.

        ``calibration_groups``: a group name per calibration scan, for the report only
        (``info["calibration_flagged_by_race"]``): nothing fitted depends on it.
        """
        if not 0 < flag_rate < 0.5:
            raise ValueError(f"flag_rate must be in (0, 0.5), got {flag_rate}")
        model.eval()
        size = model.config.vision.image_size
        rng = np.random.default_rng(seed) if benign_copies else None
        ref = encode_scans(model, reference, size, batch_size, flipped=True, copies=rng)
        quality = QualityReference.fit(ref.originals, settings)
        layers = {k: LayerGaussian.fit(k, f) for k, f in ref.feats.items()}
        cal = encode_scans(model, calibration, size, batch_size, copies=rng)
        detail = DetailScale.fit([s["detail"] for s in cal.stats])
        covariate = detail.covariate([s["detail"] for s in cal.stats])
        layers = {k: g.calibrated(cal.feats[k], covariate) for k, g in layers.items()}
        novelty = combine(standardised_distances(layers, cal.feats, covariate))
        failed = np.array([bool(input_reasons(quality, s)) for s in cal.stats])
        # The input checks flag some calibration scans too; novelty gets the rest of the budget,
        # but never less than half of it.
        passing = novelty[~failed] if (~failed).sum() >= 10 else novelty
        level = max(flag_rate - failed.mean(), flag_rate / 2)
        threshold = float(np.quantile(passing, 1 - level))
        orientation = OrientationCheck.fit(
            ref.upright, ref.flipped, cal.upright, flag_rate=orientation_rate, covariate=covariate
        )
        upside = orientation.scores(cal.upright, covariate) > orientation.threshold
        flagged = failed | (novelty > threshold) | upside
        scans = ~cal.is_copy
        info = {
            "n_reference": int((~ref.is_copy).sum()),
            "n_calibration": int(scans.sum()),
            "benign_copies": bool(benign_copies),
            "calibration_input_flagged": float(failed[scans].mean()),
            "calibration_novelty_flagged": float((novelty > threshold)[scans].mean()),
            "calibration_orientation_flagged": float(upside[scans].mean()),
            "calibration_flagged": float(flagged[scans].mean()),
            "layer_shrinkage": {k: g.shrinkage for k, g in layers.items()},
        }
        if benign_copies:
            info["calibration_copies_flagged"] = float(flagged[cal.is_copy].mean())
        if calibration_groups is not None:
            info["calibration_flagged_by_race"] = _by_group(flagged[scans], calibration_groups)
        fingerprint = tower_fingerprint(model)
        return cls(
            quality, layers, threshold, flag_rate, size, fingerprint, info, orientation, detail
        )

    # -- checking ---------------------------------------------------------------------------------
    def check_model(self, model: nn.Module) -> None:
        """Refuse a model other than the one this detector was fitted on (DetectorError)."""
        if tower_fingerprint(model) != self.fingerprint:
            raise DetectorError(
                "this assessability reference was fitted on another model's image tower; refit "
                "it for this checkpoint: python -m fairmoe.ood --checkpoint RUN.json --data DIR"
            )

    def statistics(self, image: np.ndarray) -> dict[str, float]:
        """The model-free part of an assessment: the input statistics, and the orientation score
        when this detector has the check (cheap enough for the request's own thread)."""
        stats = scan_statistics(image)
        if self.orientation is not None:
            cov = self._covariate([stats])
            stats["orientation"] = self.orientation.score(
                image, None if cov is None else float(cov[0])
            )
        return stats

    def _covariate(self, stats: Sequence[Mapping[str, float]]) -> np.ndarray | None:
        if self.detail is None:
            return None
        return self.detail.covariate([s["detail"] for s in stats])

    def _orientation_reason(self, stats: dict[str, float], reasons: dict[str, str]) -> None:
        # Only a scan with a usable field of view has anatomy to read.
        check = self.orientation
        if check is None or reasons.keys() & {"blank", "size", "shape", "field_of_view"}:
            return
        if check.flags(stats["orientation"]):
            reasons["orientation"] = orientation_reason(stats["orientation"], check.threshold)

    def novelty_scores(
        self,
        model: nn.Module,
        pixels: torch.Tensor,
        statistics: Sequence[Mapping[str, float]] | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Standardised distance per layer and the combined score, for model pixels (B, S, S);
        ``statistics`` (:meth:`statistics` of each scan) give the detail the standardisation
        takes into account (required when this detector has one)."""
        if self.detail is not None and statistics is None:
            raise ValueError("this detector's novelty scores need the scans' statistics")
        covariate = None if statistics is None else self._covariate(statistics)
        per_layer = standardised_distances(self.layers, layer_features(model, pixels), covariate)
        return per_layer, combine(per_layer)

    def assess(
        self,
        model: nn.Module,
        images: Sequence[np.ndarray],
        *,
        pixels: torch.Tensor | None = None,
        colour: Sequence[bool] | None = None,
        statistics: Sequence[dict[str, float]] | None = None,
    ) -> list[Assessment]:
        """Verdicts for raw uint8 (H, W) scans, one forward pass for the batch.

        ``pixels``: the model inputs (B, S, S) when the caller has them already
        (``preprocess_scan(image, image_size)``, e.g. ``Prepared.pixels`` of the Predictor).
        ``colour``: per scan, whether it was decoded from a colour image
        (``fairmoe.ood.reasons.is_colour`` of the ``ScanInput`` warnings).
        ``statistics``: :meth:`statistics` of each scan when the caller computed them already
        (the Predictor does, in the request's own thread, outside the serial batch); they are
        used as given, so they must be this detector's, of the scan as uploaded.
        """
        if not len(images):
            return []
        colour = list(colour) if colour is not None else [False] * len(images)
        if len(colour) != len(images):
            raise ValueError(f"{len(colour)} colour flags for {len(images)} scans")
        if pixels is None:
            pixels = torch.stack([preprocess_scan(im, self.image_size) for im in images])
        if statistics is not None and len(statistics) != len(images):
            raise ValueError(f"{len(statistics)} statistics for {len(images)} scans")
        all_stats = (
            [dict(s) for s in statistics]
            if statistics is not None
            else [self.statistics(image) for image in images]
        )
        per_layer, novelty = self.novelty_scores(model, pixels, all_stats)
        out = []
        for i, stats in enumerate(all_stats):
            reasons = input_reasons(self.quality, stats, colour=colour[i])
            self._orientation_reason(stats, reasons)
            if novelty[i] > self.threshold:
                reasons["novelty"] = novelty_reason(float(novelty[i]), self.threshold)
            failed = tuple(c for c in CHECKS if c in reasons)
            out.append(
                Assessment(
                    assessable=not failed,
                    reasons=tuple(reasons[c] for c in failed),
                    failed_checks=failed,
                    novelty=float(novelty[i]),
                    threshold=self.threshold,
                    layer_scores={k: float(v[i]) for k, v in per_layer.items()},
                    statistics=stats,
                )
            )
        return out

    def assess_one(self, model: nn.Module, image: np.ndarray) -> Assessment:
        return self.assess(model, [image])[0]

    # -- files ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write NAME.json and NAME.safetensors; returns the JSON's path.

        ``path`` is NAME.json or NAME (".json" is appended, never substituted: for a checkpoint
        runs/x/M.json, save to runs/x/M.ood.json, which leaves M.json alone).
        """
        json_path = _json_path(path)
        tensors_path = json_path.with_name(json_path.name.removesuffix(".json") + ".safetensors")
        json_path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, g in self.layers.items():
            arrays[f"{name}.mean"] = g.mean.astype(np.float32)
            arrays[f"{name}.precision"] = g.precision.astype(np.float32)
        if self.orientation is not None:
            arrays.update(self.orientation.arrays())
        save_file(arrays, str(tensors_path))
        doc = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "image_size": self.image_size,
            "threshold": self.threshold,
            "flag_rate": self.flag_rate,
            "layers": [
                {"name": g.name, "shrinkage": g.shrinkage, **g.standard.to_dict()}
                for g in self.layers.values()
            ],
            "quality": self.quality.to_dict(),
            "orientation": None if self.orientation is None else self.orientation.to_dict(),
            "detail": None if self.detail is None else self.detail.to_dict(),
            "info": self.info,
            "tensors": {"file": tensors_path.name, "sha256": sha256_file(tensors_path)},
        }
        doc["sha256"] = _doc_digest(doc)
        json_path.write_text(json.dumps(doc, indent=1))
        return json_path

    @classmethod
    def load(cls, path: str | Path, model: nn.Module | None = None) -> AssessabilityDetector:
        """Read a detector written by :meth:`save` (DetectorError if unreadable or modified, or
        fitted on another model than ``model`` when given)."""
        json_path = _json_path(path)
        try:
            doc = json.loads(json_path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise DetectorError(f"{json_path}: not a {FORMAT} file")
            if doc.get("sha256") != _doc_digest(doc):
                raise DetectorError(f"{json_path}: modified after it was written (sha256)")
            tensors_path = json_path.parent / Path(doc["tensors"]["file"]).name
            if sha256_file(tensors_path) != doc["tensors"]["sha256"]:
                raise DetectorError(f"{tensors_path}: sha256 does not match {json_path.name}")
            arrays = load_file(str(tensors_path))
            layers = {
                d["name"]: LayerGaussian(
                    d["name"],
                    arrays[f"{d['name']}.mean"].astype(np.float64),
                    arrays[f"{d['name']}.precision"].astype(np.float64),
                    float(d["shrinkage"]),
                    Standardisation.from_dict(d),
                )
                for d in doc["layers"]
            }
            det = cls(
                QualityReference.from_dict(doc["quality"]),
                layers,
                float(doc["threshold"]),
                float(doc["flag_rate"]),
                int(doc["image_size"]),
                str(doc["fingerprint"]),
                dict(doc.get("info") or {}),
                None
                if doc.get("orientation") is None
                else OrientationCheck.from_parts(doc["orientation"], arrays),
                None if doc.get("detail") is None else DetailScale.from_dict(doc["detail"]),
            )
        except DetectorError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DetectorError(f"{json_path}: unreadable assessability reference ({e})") from None
        if model is not None:
            det.check_model(model)
        return det

    def to_summary(self) -> Mapping[str, Any]:
        """What a model card shows: threshold, flag rate, the fit's counts and rates."""
        return {"threshold": self.threshold, "flag_rate": self.flag_rate, **self.info}


def _by_group(flagged: np.ndarray, groups: Sequence[str]) -> dict[str, dict[str, float]]:
    """Scans and the share flagged per group, groups in order of appearance."""
    if len(groups) != len(flagged):
        raise ValueError(f"{len(groups)} group names for {len(flagged)} calibration scans")
    names = np.asarray(groups)
    return {
        g: {"n": int((names == g).sum()), "flagged": float(flagged[names == g].mean())}
        for g in sorted(dict.fromkeys(groups))
    }


def load_beside(checkpoint: str | Path | None, model: nn.Module) -> AssessabilityDetector | None:
    """The detector saved beside checkpoint RUN.json (RUN.ood.json), None when there is none.

    One that exists but is unreadable, modified or fitted on another model raises DetectorError:
    serving without the check it was shipped with would be silent about unassessable scans.
    """
    if checkpoint is None or not detector_path(checkpoint).is_file():
        return None
    return AssessabilityDetector.load(detector_path(checkpoint), model)
