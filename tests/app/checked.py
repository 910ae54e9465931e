"""Test assets with an assessability check, and a photo it refuses.

The test assets ship no ``<run>.ood.json``, so their model assesses nothing. :func:`checked_assets`
copies them and fits the real detector (:func:`fairmoe.ood.fit_detector`) for the default
checkpoint on the synthetic scans it was trained on; :func:`camera_photo` writes a colour photo
(not a fundus scan) that such a check refuses. Tests check that it does before relying on it.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
from pathlib import Path

from tests.fairmoe.checked import colour_photo as camera_photo  # one generator for both

__all__ = ["accepted_scans", "camera_photo", "checked_assets", "cohort_zip"]

_BUILT: dict[str, Path] = {}  # one checked copy per assets folder and test session
_LOCK = threading.Lock()


def checked_assets(assets_dir: Path, data_dir: Path) -> Path:
    """A copy of ``assets_dir`` with a detector beside its default checkpoint (built once)."""
    from fairmoe.inference import Predictor
    from fairmoe.ood import detector_path, fit_detector

    with _LOCK:
        if str(assets_dir) in _BUILT:
            return _BUILT[str(assets_dir)]
        root = Path(tempfile.mkdtemp(prefix="fairmoe-checked-assets-"))
        atexit.register(shutil.rmtree, root, True)
        dst = root / "assets"
        shutil.copytree(assets_dir, dst)
        ckpt = dst / json.loads((dst / "runs.json").read_text())["default"]
        fit_detector(Predictor(ckpt).model, data_dir).save(detector_path(ckpt))
        _BUILT[str(assets_dir)] = dst
        return dst


def accepted_scans(predictor, data_dir: Path, n: int) -> list[Path]:
    """The first ``n`` synthetic test scans that ``predictor``'s check accepts."""
    scans = sorted((data_dir / "Test").glob("*.npz"))
    return [p for p in scans if predictor.predict(p)["assessable"]["assessable"]][:n]


def cohort_zip(path: Path, scans: list[Path], photo: bytes | None) -> Path:
    """A CSV-manifest cohort of ``scans`` (labels from the files, all Black women) and, when
    given, ``photo`` as operator.png (label 1, a White man)."""
    import zipfile

    from fairmoe.data.fairvlmed import read_npz

    manifest = "file,label,race,gender,ethnicity,language,note\n"
    manifest += "".join(
        f"{p.name},{read_npz(p)['label']},black,female,unknown,english,\n" for p in scans
    )
    if photo is not None:
        manifest += "operator.png,1,white,male,unknown,english,\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.csv", manifest)
        if photo is not None:
            zf.writestr("operator.png", photo)
        for p in scans:
            zf.write(p, p.name)
    return path
