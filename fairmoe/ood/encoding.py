"""One pass over the scans a detector is fitted on: input statistics, layer features and
orientation features, a batch at a time (a split does not fit in memory at full resolution)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fairmoe.data.fairvlmed import preprocess_scan
from fairmoe.ood.benign import benign_copy
from fairmoe.ood.features import layer_features
from fairmoe.ood.orientation import feature_rows
from fairmoe.ood.quality import scan_statistics

__all__ = ["Encoded", "encode_scans"]


@dataclass
class Encoded:
    """What fitting needs of a set of scans, gathered in one pass (raw scans are dropped).

    With benign copies, each batch's scans are followed by their copies: ``is_copy`` tells them
    apart (the input ranges are fitted on the scans alone; the rest on both)."""

    stats: list[dict[str, float]]
    feats: dict[str, np.ndarray]  # layer -> (n, d) features
    upright: np.ndarray  # orientation feature rows (fairmoe.ood.orientation.feature_rows)
    flipped: np.ndarray | None  # the same, of the scans flipped vertically (reference only)
    is_copy: np.ndarray  # (n,) bool: a benign copy (fairmoe.ood.benign) of the scan before

    @property
    def originals(self) -> list[dict[str, float]]:
        """The statistics of the scans themselves, in order."""
        return [s for s, c in zip(self.stats, self.is_copy, strict=True) if not c]


def encode_scans(
    model: nn.Module,
    images: Iterable[np.ndarray],
    image_size: int,
    batch_size: int,
    *,
    flipped: bool = False,
    copies: np.random.Generator | None = None,
) -> Encoded:
    """Encode raw uint8 (H, W) scans; with ``copies``, also one benign copy of each scan
    (``fairmoe.ood.benign.benign_copy`` drawn from that generator)."""
    stats: list[dict[str, float]] = []
    feats: list[dict[str, np.ndarray]] = []
    up: list[np.ndarray] = []
    down: list[np.ndarray] = []
    is_copy: list[np.ndarray] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        n = len(batch)
        if copies is not None:
            batch.extend(benign_copy(im, copies) for im in batch[:n])
        stats.extend(scan_statistics(im) for im in batch)
        up.append(feature_rows(batch))
        if flipped:
            down.append(feature_rows(batch, flip=True))
        px = torch.stack([preprocess_scan(im, image_size) for im in batch])
        feats.append(layer_features(model, px))
        is_copy.append(np.arange(len(batch)) >= n)
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
    down_rows = np.vstack(down) if flipped else None
    return Encoded(stats, layers, np.vstack(up), down_rows, np.concatenate(is_copy))
