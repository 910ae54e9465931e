"""Where a fairness panel's scores come from, resolved once for the Fairness and Cohort tabs.

Both tabs' model menus list the shipped runs' test scores and one entry, :data:`USER_SCORES`, for
the user's own: the scores CSV uploaded on the Fairness tab, the cohort scored on the Cohort tab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.callbacks.common import user_error
from app.runtime import Runtime
from fairmoe.checkpoint import CheckpointError, RunMetadata, read_metadata
from fairmoe.scores import ScoreSet

__all__ = [
    "USER_SCORES",
    "ScoreSource",
    "UserKind",
    "require_source",
    "resolve_source",
    "run_metadata",
]

USER_SCORES = "__user_scores__"  # the model menus' entry for the user's own scores

UserKind = Literal["own", "cohort"]  # an uploaded scores CSV, or a cohort scored in the session
_LABEL = {"own": "your scores CSV", "cohort": "the cohort scored in this session"}
_MISSING = {
    "own": "Upload your scores CSV first (or choose a model).",
    "cohort": "Score a cohort first (or choose a model's test scores).",
}


@dataclass(frozen=True)
class ScoreSource:
    """Scores for a panel, how the audit names them, and the model's metadata where known."""

    scores: ScoreSet
    label: str
    meta: RunMetadata | None


def run_metadata(rt: Runtime, name: str) -> RunMetadata | None:
    """The metadata of a run: the loaded model's, else NAME.json beside the shipped model."""
    if name == rt.default_run:
        return rt.meta
    path = rt.assets / "model" / f"{name}.json"
    try:
        return read_metadata(path) if path.is_file() else None
    except CheckpointError:
        return None


def resolve_source(
    rt: Runtime, model: str | None, user: ScoreSet | None, kind: UserKind
) -> ScoreSource | None:
    """The menu's choice: a run's test scores, or the user's (None until there are some)."""
    if model in (None, "", USER_SCORES):
        if user is None:
            return None
        return ScoreSource(user, _LABEL[kind], rt.meta if kind == "cohort" else None)
    try:
        run = rt.run(model)
    except KeyError as e:
        raise user_error(str(e.args[0])) from None
    return ScoreSource(run.scores, f"test scores of {run.name}", run_metadata(rt, run.name))


def missing_scores(kind: UserKind) -> str:
    """What to do when the menu points at the user's scores and there are none yet."""
    return _MISSING[kind]


def require_source(
    rt: Runtime, model: str | None, user: ScoreSet | None, kind: UserKind
) -> ScoreSource:
    """:func:`resolve_source`, with a message saying what to do when there are no scores yet."""
    src = resolve_source(rt, model, user, kind)
    if src is None:
        raise user_error(missing_scores(kind))
    return src
