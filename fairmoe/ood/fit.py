"""Fitting a detector from a FairVLMed folder in one call: training scans as the reference,
validation scans for the calibration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from torch import nn

from fairmoe.data.fairvlmed import FairVLMedDataset, Split, read_npz
from fairmoe.ood.detector import AssessabilityDetector
from fairmoe.ood.quality import QualitySettings
from fairmoe.schema import ATTRIBUTES

__all__ = ["fit_detector", "split_groups", "split_scans"]

REPORTED = "race"  # the attribute whose groups' false alarms the detector's file reports


def split_scans(root: str | Path, split: Split, limit: int | None = None) -> Iterator[np.ndarray]:
    """Raw uint8 (H, W) scans of one split, decoded one at a time (a split does not fit in memory
    at full resolution). Scans with unknown attributes are kept: they are valid scans."""
    ds = FairVLMedDataset(root, split, image_size=8, drop_unknown=False, limit=limit)
    for record in ds.records:
        yield read_npz(record.path)["image"]


def split_groups(
    root: str | Path, split: Split, attribute: str = REPORTED, limit: int | None = None
) -> list[str]:
    """Group name of each scan of :func:`split_scans` (same order), "Unknown" where unrecorded.

    For reporting only: the detector never sees a patient's attributes."""
    ds = FairVLMedDataset(root, split, image_size=8, drop_unknown=False, limit=limit)
    names = ATTRIBUTES[attribute].groups
    return [names[c] if c >= 0 else "Unknown" for c in ds.attribute_codes(attribute)]


def fit_detector(
    model: nn.Module,
    data_root: str | Path,
    image_size: int | None = None,
    *,
    reference_split: Split = "training",
    calibration_split: Split = "validation",
    reference_limit: int | None = 2000,
    calibration_limit: int | None = None,
    flag_rate: float = 0.025,
    orientation_rate: float = 0.015,
    settings: QualitySettings | None = None,
    batch_size: int = 128,
    benign_copies: bool = True,
    seed: int = 0,
) -> AssessabilityDetector:
    """Fit the assessability detector of ``model`` on a FairVLMed folder (CPU or the model's device).

    The Gaussians and input ranges come from the first ``reference_limit`` scans of
    ``reference_split`` (file order, which the split assignment has already shuffled); the
    standardisation and the threshold from ``calibration_split``, set so that about
    ``flag_rate`` of its scans are flagged by the input and novelty checks and about
    ``orientation_rate`` by the upside-down check; with ``benign_copies`` both splits also give
    one benign copy of each scan (``AssessabilityDetector.fit``). ``image_size``, when given, must be the model's.
    The calibration scans' false alarms per race group are recorded in ``info`` (the scans'
    attributes are read for that report only).
    """
    size = model.config.vision.image_size
    if image_size is not None and image_size != size:
        raise ValueError(f"image_size {image_size} differs from the model's input size {size}")
    return AssessabilityDetector.fit(
        model,
        split_scans(data_root, reference_split, reference_limit),
        split_scans(data_root, calibration_split, calibration_limit),
        calibration_groups=split_groups(data_root, calibration_split, limit=calibration_limit),
        flag_rate=flag_rate,
        orientation_rate=orientation_rate,
        settings=settings,
        batch_size=batch_size,
        benign_copies=benign_copies,
        seed=seed,
    )
