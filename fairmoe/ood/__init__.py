"""Is this scan assessable by this model? Input checks, an upside-down check (``orientation``)
and feature-space novelty, calibrated on validation scans.

``fit_detector(model, data_root)`` fits one; ``detector.assess(model, images)`` gives each scan an
:class:`Assessment` (``assessable``, ``reasons`` in plain words, the scores); ``save``/``load``
write and read NAME.json + NAME.safetensors (``python -m fairmoe.ood`` fits one for a checkpoint
and writes it beside it, where ``fairmoe.inference.Predictor`` finds it). ``negatives.build_negatives`` builds the negative set
the detector is validated on (``benchmarks/bench_ood.py``).
"""

from __future__ import annotations

from fairmoe.ood.detector import (
    FORMAT,
    AssessabilityDetector,
    Assessment,
    DetectorError,
    detector_path,
    load_beside,
    unchecked,
)
from fairmoe.ood.fit import fit_detector, split_scans
from fairmoe.ood.quality import QualitySettings, scan_statistics
from fairmoe.ood.reasons import CHECKS, is_colour

__all__ = [
    "CHECKS",
    "FORMAT",
    "AssessabilityDetector",
    "Assessment",
    "DetectorError",
    "QualitySettings",
    "detector_path",
    "fit_detector",
    "is_colour",
    "load_beside",
    "scan_statistics",
    "split_scans",
    "unchecked",
]
