"""Pixels the model sees: CLIP's resize and centre crop of a grayscale scan, and normalisation.

Shared by training (cached uint8 splits), inference and every evaluation, so a scan is always
prepared the same way.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = ["CLIP_MEAN", "CLIP_STD", "normalize_scan", "preprocess_scan"]

# OpenAI CLIP normalisation: the backbone configs and any pretrained ViT-B/16 weights expect it.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess_scan(image: np.ndarray, image_size: int) -> torch.Tensor:
    """CLIP preprocessing up to the pixel grid: resize shorter side (bicubic), centre crop.

    Returns a uint8 (S, S) tensor; ``normalize_scan`` turns a batch into normalised 3-channel floats.
    Keeping uint8 lets training cache a whole split in memory (7,000 x 224 x 224 = 350 MB).
    """
    pil = Image.fromarray(image, mode="L")
    w, h = pil.size
    scale = image_size / min(w, h)
    nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
    pil = pil.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - image_size) // 2, (nh - image_size) // 2
    pil = pil.crop((left, top, left + image_size, top + image_size))
    return torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy())


def normalize_scan(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (..., S, S) grayscale -> float (..., 3, S, S) with CLIP's mean and std."""
    x = pixels.float().div(255.0).unsqueeze(-3).expand(*pixels.shape[:-2], 3, *pixels.shape[-2:])
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std
