"""The library tests' model with an assessability check, and a photo that check refuses.

``conftest.predictor``'s checkpoint ships no ``.ood.json``: it assesses nothing.
:func:`checked_checkpoint` copies it and fits the real detector (:func:`fairmoe.ood.fit_detector`)
beside the copy on a small synthetic set (once per test session: every module that asks gets the
same copy); :func:`colour_photo` is a PNG it refuses (tests check that it does before relying on
it).
"""

from __future__ import annotations

import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fairmoe.inference import Predictor

__all__ = ["N_SYNTHETIC", "checked_checkpoint", "colour_photo"]

N_SYNTHETIC = 120  # 84 training (reference), 12 validation (threshold), 24 test scans


_BUILT: dict[str, tuple[Path, Path]] = {}  # checkpoint -> (checked copy, synthetic data)
_LOCK = threading.Lock()


def checked_checkpoint(
    predictor: Predictor, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(``predictor``'s checkpoint copied with a detector beside it, the synthetic FairVLMed
    folder the detector was fitted on), built once per session."""
    from fairmoe.data.synthetic import generate
    from fairmoe.ood import detector_path, fit_detector

    src = Path(predictor.meta.path)
    with _LOCK:
        if str(src) not in _BUILT:
            root = tmp_path_factory.mktemp("checked")
            data = generate(root / "data", n=N_SYNTHETIC, seed=3, workers=1)
            for f in [src.name, *predictor.meta.files]:
                shutil.copy(src.parent / f, root / f)
            fit_detector(predictor.model, data).save(detector_path(root / src.name))
            _BUILT[str(src)] = (root / src.name, data)
        return _BUILT[str(src)]


def colour_photo(path: Path | None = None, seed: int = 0) -> bytes:
    """A 640x480 colour photo of something that is not a fundus (a camera operator, say:
    coloured blocks on a bright wall), as PNG bytes; written to ``path`` too when given."""
    rng = np.random.default_rng(seed)
    photo = np.empty((480, 640, 3), np.uint8)
    photo[...] = (200, 170, 120)  # a warm, bright wall
    for _ in range(12):
        r, c = rng.integers(0, 400), rng.integers(0, 560)
        h, w = rng.integers(40, 160, size=2)
        photo[r : r + h, c : c + w] = rng.integers(0, 256, size=3)
    photo = np.clip(photo + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    if path is not None:
        Path(path).write_bytes(buf.getvalue())
    return buf.getvalue()
