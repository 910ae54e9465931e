"""Synthetic Harvard-FairVLMed: SLO-like fundus scans, clinical notes and controllable group bias.

Writes the real folder layout (``data_summary.csv`` + ``{Training,Validation,Test}/data_NNNNN.npz``, same
keys, dtypes and CSV spellings), so ``fairmoe.data.fairvlmed`` reads it on the same path as real data.

The glaucoma signal lives in the optic disc: a larger cup-to-disc ratio (CDR), a vertically elongated cup
(thin superior/inferior rim) and sometimes an inferior notch. Classes overlap, so no single pixel decides.

Group bias: four mechanisms, each a ``SyntheticConfig`` knob multiplied by ``bias`` (0 = every group gets
the same acquisition and label process; 1 = default; at most 2):

1. Group-dependent acquisition: Black and Asian patients' scans get lower contrast, more blur and
   stronger vignetting (darker pigmented fundi reflect less light), so the cup boundary is harder to see.
2. Spurious marker: a small bright device stamp whose presence tracks the recorded label in White
   patients only (80% of glaucoma vs 20% of non-glaucoma scans at bias 1; 50/50 in other groups). A
   plain model can learn it as a shortcut that then fails the minority groups.
3. Physiological confound: Black patients have larger discs and, without glaucoma, a higher
   baseline CDR (a clinical fact), so the CDR cue misfires for them.
4. Label noise: the recorded diagnosis (label, note and summary) is flipped with some probability in
   small groups (Hispanic, Spanish- or Other-speaking), while the scan shows the true disease.

Not scaled by ``bias``: the real group sizes and glaucoma prevalences (base rates, not bias).

Scenarios of the fair test (``--scenario NAME``; ``SCENARIOS``, each with a role and a one-line cause):

- ``stamp-control`` (role positive_control) and ``stamp`` (primary), the same data: only mechanism 2,
  with a 72x72-px stamp (``marker_size``; one whole 12-px patch at 96 px, over the corner patch of
  the centre crop) on 85% of White glaucoma scans and 15% of White controls
  (``marker_strength`` 0.35), and on half of everyone else's at random. Its twin
  ``--mechanisms stamp-free`` (same seed) has the same patients without any stamp
  (``marker_base`` 0): CLIP's reliance on the stamp and the oracle gap are measured against it.
- ``acquisition`` (secondary): only mechanism 1, a score shift with the ranking largely intact.
- ``confound`` (negative_control): only mechanism 3, no stamp; a 96-px disc reader cannot undo it.

Each has a twin (``--mechanisms NAME-free``, ``TWINS``): the same patients with the cause switched
off, the data of the scenario's oracle.

Use: ``generate(out, n=..., seed=..., bias=...)`` for a folder; for one example case,
``p = sample_params(i, force={"race": 1, "glaucoma": 1})``, then ``render_scan(p)`` and
``write_note(p)`` (note, summary). ``SampleParams`` holds every latent value (CDR, acquisition,
marker, label flip) for checks and documentation.

Determinism: every sample draws from ``np.random.default_rng([seed, index, stream])``, so files do not
depend on the worker count, and npz files are zipped with a fixed timestamp: the same
``(n, seed, bias)`` gives byte-identical folders.
"""

# SYNTHETIC.md copies this docstring from its second paragraph on: edit it as documentation.
# Modules: config (knobs, constants), sampling (latent parameters), rendering (scan),
# notes (note and summary text), writing (files, generate), cli (python -m).

from __future__ import annotations

from .cli import main
from .config import (
    CSV_COLUMNS,
    MAX_BIAS,
    MAX_N,
    MECHANISMS,
    ROLES,
    SCENARIOS,
    SPLIT_DIRS,
    SPLIT_NAMES,
    TWINS,
    NoteConfig,
    Scenario,
    SyntheticConfig,
    mechanisms_config,
    scenario_record,
)
from .notes import write_note
from .rendering import render_scan
from .sampling import Acquisition, SampleParams, draw_acquisition, sample_params
from .writing import generate, make_sample, write_npz

__all__ = [
    "Acquisition",
    "CSV_COLUMNS",
    "MAX_BIAS",
    "MAX_N",
    "MECHANISMS",
    "NoteConfig",
    "ROLES",
    "SCENARIOS",
    "Scenario",
    "SPLIT_DIRS",
    "SPLIT_NAMES",
    "SampleParams",
    "SyntheticConfig",
    "TWINS",
    "mechanisms_config",
    "scenario_record",
    "draw_acquisition",
    "generate",
    "main",
    "make_sample",
    "render_scan",
    "sample_params",
    "write_note",
    "write_npz",
]
