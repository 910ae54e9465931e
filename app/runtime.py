"""What the app loads once: the Predictor, the cached scores of every run, examples, the report.

Per-user choices never live here (they are ``gr.State`` in the UI); this object is read-only after
:func:`load_runtime` apart from memo caches inside each :class:`~fairmoe.scores.ScoreSet` and the
model's serving front, made on first use (:func:`app.callbacks.serving.serving`).

Each run's bootstrap AUC CIs ship beside its scores (``auc_ci`` in runs.json, written by
``scripts/build_assets.py``; ~60 ms each to compute) and are checked like the scores. So are the
fair test's post-processing baselines and verdicts (``fair_test/results.json``, when shipped;
:mod:`app.scenarios`); each run knows the scenario whose test draw its scores are on.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import ConfigError, ServerConfig, server_config
from app.manifest import MANIFEST, ManifestCheck, ManifestError, check_manifest
from app.privacy import cache_dir
from app.runinfo import TAG_LABELS, RunInfo
from app.scenarios import load_fair_test, scenario_of
from app.startup import DEFAULT_ASSETS, StartupError, runs_and_checkpoint
from fairmoe.checkpoint import CheckpointError, RunMetadata, read_metadata
from fairmoe.inference import InputError, Predictor
from fairmoe.runs_file import RunsFile, ScenarioEntry
from fairmoe.schema import ATTRIBUTE_NAMES
from fairmoe.scores import ScoresError, ScoreSet

__all__ = [
    "DEFAULT_ASSETS",
    "Example",
    "RunInfo",
    "Runtime",
    "StartupError",
    "TAG_LABELS",
    "load_runtime",
]

OUTPUT_MAX_AGE_S = 3600  # overlay PNGs and cohort CSVs older than this are deleted


@dataclass(frozen=True)
class Example:
    """A one-click case from examples.json."""

    id: str
    title: str
    file: Path  # PNG (preferred) or npz
    note: str
    attrs: dict[str, int]
    label: int | None


@dataclass
class Runtime:
    """The loaded model and everything the app reads but never changes."""

    assets: Path
    checkpoint: Path
    predictor: Predictor
    runs: dict[str, RunInfo]
    default_run: str | None  # the run of the loaded checkpoint, if its scores are known
    examples: list[Example]
    report_md: str | None
    out_dir: Path  # per-process folder for overlay and preview PNGs and cohort CSVs
    skipped: list[str] = field(default_factory=list)  # runs/examples left out, with reasons
    manifest: ManifestCheck = field(default_factory=lambda: ManifestCheck(present=False))
    config: ServerConfig = field(default_factory=ServerConfig)
    # runs.json's fair-test scenarios (name -> role, mechanisms, cause); empty in older files
    scenarios: Mapping[str, ScenarioEntry] = field(default_factory=dict)
    # fair_test/results.json's part per scenario (baselines, verdict); empty when not shipped
    fair_test: dict[str, Any] = field(default_factory=dict)
    # app.callbacks.serving's Serving (batcher, explanation processes), made there on first use
    _serving: Any = field(default=None, init=False, repr=False, compare=False)
    _serving_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @property
    def meta(self) -> RunMetadata:
        return self.predictor.meta

    @property
    def model_name(self) -> str:
        return self.meta.name or self.checkpoint.stem

    @property
    def model_scores(self) -> ScoreSet | None:
        return self.runs[self.default_run].scores if self.default_run else None

    def run(self, name: str) -> RunInfo:
        """A run by name or label, with an error that lists the valid names."""
        if name in self.runs:
            return self.runs[name]
        for r in self.runs.values():
            if name == r.label:
                return r
        raise KeyError(f"unknown model {name!r}; choose one of {', '.join(self.runs) or '(none)'}")

    def new_output_path(self, stem: str, suffix: str) -> Path:
        """A fresh file path in the output folder; old outputs are pruned on the way."""
        now = time.time()
        for p in self.out_dir.iterdir():
            try:
                if now - p.stat().st_mtime > OUTPUT_MAX_AGE_S:
                    p.unlink()
            except OSError:
                pass
        return Path(tempfile.mkstemp(prefix=f"{stem}-", suffix=suffix, dir=self.out_dir)[1])


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StartupError(f"{path}: cannot read {what} ({e})") from None


def _load_runs(
    assets: Path, index: RunsFile, check: ManifestCheck, skipped: list[str]
) -> dict[str, RunInfo]:
    runs: dict[str, RunInfo] = {}
    for entry in index.runs:
        try:
            if problem := check.status(entry.scores):
                raise ScoresError(problem)
            scores = ScoreSet.from_csv(assets / entry.scores, entry.name)
        except ScoresError as e:
            skipped.append(f"run {entry.name}: {e}")
            continue
        if entry.auc_ci:
            try:
                _load_auc_cis(assets, entry.auc_ci, scores, check)
            except ScoresError as e:
                skipped.append(f"the AUC CIs of run {entry.name} (computed on first use): {e}")
        runs[entry.name] = RunInfo(
            name=entry.name,
            method=entry.method,
            attribute=entry.attribute,
            seed=entry.seed,
            fairness_scale=entry.fairness_scale,
            config=entry.config,
            device=entry.device,
            scores=scores,
            test=entry.test.to_json() if entry.test else {},
            tag=entry.tag,
            data=entry.data,
            scenario=scenario_of(entry.data, index.scenarios),
        )
    return runs


def _load_auc_cis(assets: Path, rel: str, scores: ScoreSet, check: ManifestCheck) -> None:
    """Memoise a run's shipped ``{attribute: bootstrap_ci(**scores.auc_ci_job(attribute))}``
    (scripts/build_assets.py); :class:`ScoresError` says why they cannot be used."""
    if problem := check.status(rel):
        raise ScoresError(problem)
    try:
        cis = json.loads((assets / rel).read_text(encoding="utf-8"))
        # with another number of resamples they would differ from the CIs computed here
        if any(ci["n_boot"] != scores.auc_ci_job(a)["n_boot"] for a, ci in cis.items()):
            raise ValueError("made with another number of resamples")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ScoresError(f"{assets / rel}: not usable AUC CIs ({type(e).__name__}: {e})") from None
    for attr, ci in cis.items():
        scores.remember_auc_ci(attr, ci)


def _load_examples(assets: Path, check: ManifestCheck, skipped: list[str]) -> list[Example]:
    path = assets / "examples" / "examples.json"
    if not path.is_file():
        return []
    if problem := check.status("examples/examples.json"):
        skipped.append(f"all examples: {problem}")
        return []
    out = []
    for e in _read_json(path, "examples"):
        try:
            rel = e.get("file") or e.get("npz")
            file = assets / rel
            if not file.is_file():
                raise FileNotFoundError(f"{file} missing")
            for other in {rel, e.get("npz")} - {None}:
                if problem := check.status(other):
                    raise ValueError(problem)
            attrs = {k: int(v) for k, v in (e.get("attrs") or {}).items() if k in ATTRIBUTE_NAMES}
            out.append(
                Example(
                    id=str(e.get("id", file.stem)),
                    title=str(e.get("title") or e.get("id") or file.stem),
                    file=file,
                    note=str(e.get("note") or ""),
                    attrs=attrs,
                    label=e.get("label"),
                )
            )
        except (KeyError, TypeError, ValueError, FileNotFoundError) as err:
            skipped.append(f"example {e.get('id', '?') if isinstance(e, dict) else e}: {err}")
    return out


def _model_run(
    predictor: Predictor, checkpoint: Path, runs: dict[str, RunInfo], skipped: list[str]
) -> str | None:
    """The run of the loaded checkpoint: by name in runs.json, else its scores file beside it."""
    meta = predictor.meta
    name = meta.name or checkpoint.stem
    if name in runs:
        return name
    scores_file = meta.scores_file
    if scores_file and (checkpoint.parent / scores_file).is_file():
        try:
            scores = ScoreSet.from_csv(checkpoint.parent / scores_file, name)
        except ScoresError as e:
            skipped.append(f"scores of the loaded checkpoint: {e}")
            return None
        runs[name] = RunInfo(
            name=name,
            method=predictor.method,
            attribute=predictor.attribute,
            seed=meta.seed,
            fairness_scale=meta.fairness_scale,
            config=meta.config_name,
            device=meta.device,
            scores=scores,
            test=meta.test_metrics,
        )
        return name
    return None


def load_runtime(
    assets: str | Path | None = None,
    checkpoint: str | Path | None = None,
    *,
    warm_up: bool = True,
    config: ServerConfig | None = None,
) -> Runtime:
    """Load the model once, plus the scores (and shipped CIs) of every run in ``assets/runs.json``.

    ``config``: how the server serves; by default :func:`app.config.server_config` without flags.
    Raises :class:`StartupError` with one clear line for anything the user can fix.
    """
    try:
        config = config if config is not None else server_config()
    except ConfigError as e:
        raise StartupError(str(e)) from None
    assets = Path(assets) if assets is not None else DEFAULT_ASSETS
    runs_path = assets / "runs.json"
    index, checkpoint = runs_and_checkpoint(assets, checkpoint)
    try:
        check = check_manifest(assets)
    except ManifestError as e:
        raise StartupError(str(e)) from None
    _require_unchanged(assets, check, [runs_path] if runs_path.is_file() else [])
    try:
        meta = read_metadata(checkpoint)  # read once: verified here, loaded by the Predictor
        _require_unchanged(assets, check, _model_files(assets, meta))
        predictor = Predictor(meta)
    except (CheckpointError, InputError, OSError) as e:
        raise StartupError(f"cannot load checkpoint {checkpoint}: {e}") from None
    skipped: list[str] = []
    runs = _load_runs(assets, index, check, skipped)
    default_run = _model_run(predictor, checkpoint, runs, skipped)
    examples = _load_examples(assets, check, skipped)
    fair_test = load_fair_test(assets, check, skipped)
    report = assets / "REPORT.md"
    report_md = report.read_text(encoding="utf-8") if report.is_file() else None
    if report_md is not None and (problem := check.status("REPORT.md")):
        skipped.append(f"the report: {problem}")
        report_md = None
    # Inside Gradio's cache folder, so Gradio serves outputs in place rather than copying them.
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out_dir = Path(tempfile.mkdtemp(prefix="fairmoe-app-", dir=cache))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)
    if warm_up:
        predictor.warm_up()
    return Runtime(
        assets=assets,
        checkpoint=checkpoint,
        predictor=predictor,
        runs=runs,
        default_run=default_run,
        examples=examples,
        report_md=report_md,
        out_dir=out_dir,
        skipped=skipped,
        manifest=check,
        config=config,
        scenarios=index.scenarios or {},
        fair_test=fair_test,
    )


def _model_files(assets: Path, meta: RunMetadata) -> list[Path]:
    """The checkpoint's metadata and weight files when they lie inside the assets folder."""
    path = meta.path.resolve() if meta.path else None
    if path is None or not path.is_relative_to(assets.resolve()):
        return []
    return [path, *(path.parent / f for f in meta.files)]


def _require_unchanged(assets: Path, check: ManifestCheck, files: list[Path]) -> None:
    """A changed run list or model file inside the assets stops the start (MANIFEST.json)."""
    if not check.present:
        return
    for f in files:
        rel = f.resolve().relative_to(assets.resolve()).as_posix()
        if problem := check.status(rel):
            raise StartupError(
                f"{assets / MANIFEST}: {problem}. The shipped assets were changed: restore them "
                "(git checkout -- assets) or rebuild them with scripts/build_assets.py"
            )
