"""What ``python -m app`` does before its heavy imports: find the checkpoint to load and start
the explanation processes, so that they import torch and load the model while the server
imports torch, gradio and open_clip and loads its own copy (on 2 cores the two starts overlap
instead of following each other).

Nothing here imports torch, gradio or the model: :mod:`fairmoe.worker` and
:mod:`fairmoe.runs_file` are light to import.
"""

from __future__ import annotations

from pathlib import Path

from app.config import ServerConfig
from fairmoe.runs_file import RunsFile, RunsFileError, read_runs
from fairmoe.worker import ProcessPredictor

__all__ = ["DEFAULT_ASSETS", "StartupError", "prestart_explainer", "runs_and_checkpoint"]

DEFAULT_ASSETS = Path(__file__).resolve().parents[1] / "assets"


class StartupError(RuntimeError):
    """The app cannot start with what it was given (bad checkpoint, missing runs.json)."""


def runs_and_checkpoint(assets: Path, checkpoint: str | Path | None) -> tuple[RunsFile, Path]:
    """runs.json of ``assets`` (empty when there is none) and the checkpoint to load: the given
    one, else runs.json's default (StartupError when neither exists)."""
    runs_path = assets / "runs.json"
    try:
        index = read_runs(runs_path) if runs_path.is_file() else RunsFile()
    except RunsFileError as e:
        raise StartupError(f"{e}; fix it or rebuild it (scripts/build_assets.py)") from None
    if checkpoint is None:
        if not index.default:
            raise StartupError(
                f"no model to load: {runs_path} is missing or names no 'default' checkpoint; "
                "pass --checkpoint PATH or --assets DIR"
            )
        checkpoint = assets / index.default
    return index, Path(checkpoint)


def prestart_explainer(
    assets: Path | None, checkpoint: Path | None, config: ServerConfig
) -> ProcessPredictor | None:
    """Start the explanation processes before the server imports and loads its own model, so
    that both load at once (None without processes, or when the checkpoint cannot be resolved:
    the runtime's load then says why). :func:`app.readiness.start_serving` checks that their
    weights are the server's."""
    if config.explain_processes == 0:
        return None
    try:
        path = runs_and_checkpoint(assets or DEFAULT_ASSETS, checkpoint)[1]
    except StartupError:
        return None
    return ProcessPredictor(path, processes=config.explain_processes, threads=config.threads)
