"""One pass over the scans a detector is fitted on: input statistics, layer features and
orientation features, a batch at a time (a split does not fit in memory at full resolution)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fairmoe.data.fairvlmed import preprocess_scan
from fairmoe.ood.features import layer_features
from fairmoe.ood.orientation import feature_rows
from fairmoe.ood.quality import scan_statistics

__all__ = ["Encoded", "encode_scans"]


@dataclass
class Encoded:
    """What fitting needs of a set of scans, gathered in one pass (raw scans are dropped)."""

    stats: list[dict[str, float]]
    feats: dict[str, np.ndarray]  # layer -> (n, d) features
    upright: np.ndarray  # orientation feature rows (fairmoe.ood.orientation.feature_rows)
    flipped: np.ndarray | None  # the same, of the scans flipped vertically (reference only)


def encode_scans(
    model: nn.Module,
    images: Iterable[np.ndarray],
    image_size: int,
    batch_size: int,
    *,
    flipped: bool = False,
) -> Encoded:
    stats: list[dict[str, float]] = []
    feats: list[dict[str, np.ndarray]] = []
    up: list[np.ndarray] = []
    down: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        stats.extend(scan_statistics(im) for im in batch)
        up.append(feature_rows(batch))
        if flipped:
            down.append(feature_rows(batch, flip=True))
        px = torch.stack([preprocess_scan(im, image_size) for im in batch])
        feats.append(layer_features(model, px))
        batch.clear()

    for image in images:
        batch.append(image)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not feats:
        raise ValueError("no scans given")
    layers = {k: np.concatenate([f[k] for f in feats]) for k in feats[0]}
    return Encoded(stats, layers, np.vstack(up), np.vstack(down) if flipped else None)
