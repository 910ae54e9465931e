"""A FairVLMed split decoded once into in-memory tensors, with an optional on-disk cache.

Training revisits every scan each epoch; decoding 7,000 compressed 664x512 npz files per epoch would
dominate the run on CPU and starve a GPU, so splits are decoded once (in parallel) to uint8 pixels at
the model's input size and kept in memory (7,000 x 224 x 224 = 350 MB).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fairmoe.data.fairvlmed import FairVLMedDataset, NoteCut, Split, preprocess_scan, read_npz
from fairmoe.schema import ATTRIBUTE_NAMES

__all__ = ["SplitTensors", "load_split"]


@dataclass
class SplitTensors:
    """One split: pixels uint8 (N, S, S), tokens (N, 77), labels (N,), attrs (N, 4), ids."""

    pixels: torch.Tensor
    tokens: torch.Tensor
    labels: torch.Tensor
    attrs: torch.Tensor
    ids: list[str]
    summary: dict

    def __len__(self) -> int:
        return len(self.ids)

    def attribute(self, name: str) -> torch.Tensor:
        return self.attrs[:, ATTRIBUTE_NAMES.index(name)]

    def to(self, device: str | torch.device) -> SplitTensors:
        return SplitTensors(
            self.pixels.to(device),
            self.tokens.to(device),
            self.labels.to(device),
            self.attrs.to(device),
            self.ids,
            self.summary,
        )


def _decode(args: tuple[str, int]) -> np.ndarray:
    path, size = args
    return preprocess_scan(read_npz(path)["image"], size).numpy()


def _cache_key(ds: FairVLMedDataset) -> str:
    h = hashlib.sha256(f"{ds.image_size}".encode())
    for r in ds.records:
        st = r.path.stat()
        h.update(f"{r.path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def load_split(
    root: str | Path,
    split: Split,
    *,
    image_size: int,
    tokenizer,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    limit: int | None = None,
    note_cut: NoteCut = "clean",
    drop_unknown: bool | None = None,
) -> SplitTensors:
    """Decode a split (or read it from ``cache_dir``) into tensors. ``drop_unknown``: as
    :class:`FairVLMedDataset` (default: drop cases with an unknown attribute outside training)."""
    ds = FairVLMedDataset(root, split, image_size=image_size, limit=limit, note_cut=note_cut,
                          drop_unknown=drop_unknown)  # fmt: skip
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{split}-{_cache_key(ds)}.safetensors"
    if cache is not None and cache.is_file():
        pixels = load_file(cache)["pixels"]
    else:
        jobs = [(str(r.path), image_size) for r in ds.records]
        workers = workers or min(len(jobs), os.cpu_count() or 1)
        if workers > 1 and len(jobs) > 64:
            with ProcessPoolExecutor(workers) as pool:
                arrays = list(pool.map(_decode, jobs, chunksize=32))
        else:
            arrays = [_decode(j) for j in jobs]
        pixels = torch.from_numpy(np.stack(arrays))  # (N, S, S) uint8
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            save_file({"pixels": pixels}, tmp)
            tmp.replace(cache)
    tokens = tokenizer([r.text for r in ds.records])
    return SplitTensors(
        pixels=pixels,
        tokens=tokens,
        labels=torch.from_numpy(ds.labels),
        attrs=torch.from_numpy(ds.attrs),
        ids=[r.id for r in ds.records],
        summary=ds.summary(),
    )
