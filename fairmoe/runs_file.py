"""``assets/runs.json``, the list of shipped runs, as frozen dataclasses: read, checked, written.

Written by ``scripts/build_assets.py`` (through :func:`write_runs`), read by the app
(:func:`app.runtime.load_runtime`) and the report builder (``scripts/report.py``)::

    {"default": "model/NAME.json", "pretrained": "model/NAME.json", "runs": [RunEntry, ...],
     "profile": {train_all.py's profile}, "trained_on": "cpu",
     "scenarios": {name: {"role", "mechanisms", "cause"}}}

Each JSON object is one dataclass below, each key one field; a field with a default may be absent
from the file. :func:`read_runs` checks every value against its field's type and raises
:class:`RunsFileError` naming the file and the entry at fault. Keys this reader does not know
are kept in ``extra`` and written back, so an older reader neither rejects nor drops what a newer
writer adds. Free-form parts (``profile``, ``extra``) are read-only mappings with tuples for
lists. ``to_json`` writes every field but those left at a default of None, in the order below,
so the shipped file reads and writes back byte for byte.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType, NoneType, UnionType
from typing import Any, Self, get_args, get_origin, get_type_hints

__all__ = [
    "AttributeSummary",
    "RoutingHealth",
    "RunEntry",
    "RunSummary",
    "RunsFile",
    "RunsFileError",
    "ScenarioEntry",
    "read_runs",
    "write_runs",
]

RUNS_JSON = "runs.json"
INDENT = 1  # as build_assets.py has always written it: diffs stay readable, the file small


class RunsFileError(ValueError):
    """runs.json cannot be read or is not in the shape below; the message names the file and the
    value at fault, e.g. ``assets/runs.json: runs[3] (clip-race-small-s0).seed: expected ...``."""


class _ShapeError(RunsFileError):
    """A value at ``path`` (inside the file) is not what its field expects; :meth:`_Record.from_json`
    adds the file's name."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)


def _no_keys() -> Mapping[str, Any]:
    return MappingProxyType({})


class _Record:
    """A JSON object as a frozen dataclass: :meth:`from_json` checks, :meth:`to_json` writes."""

    @classmethod
    def from_json(cls, obj: Any, source: str = RUNS_JSON) -> Self:
        """``obj`` (parsed JSON) checked against the fields; ``source`` names it in errors."""
        try:
            return _record(cls, obj, "")
        except _ShapeError as e:
            raise RunsFileError(f"{source}: {e}") from None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (dicts, lists): ``from_json(x.to_json()) == x``."""
        return _thaw(self)


@dataclass(frozen=True, kw_only=True)
class AttributeSummary(_Record):
    """One attribute's fairness at the operating point (``scripts/report.py`` ``summarise``)."""

    es_auc: float | None  # None where a group has one class only
    dpd: float | None
    deodds: float | None
    group_auc: Mapping[str, float | None]  # group name -> AUC
    group_n: Mapping[str, int]  # group name -> test cases
    extra: Mapping[str, Any] = field(default_factory=_no_keys)


@dataclass(frozen=True, kw_only=True)
class RunSummary(_Record):
    """A run's test split at the operating point: overall, then per attribute."""

    n: int | None = None  # test cases
    auc: float | None = None
    accuracy: float | None = None  # one threshold: the same for every attribute
    attributes: Mapping[str, AttributeSummary] = field(default_factory=_no_keys)
    extra: Mapping[str, Any] = field(default_factory=_no_keys)


@dataclass(frozen=True, kw_only=True)
class RoutingHealth(_Record):
    """One token MoE's routing on the test split (:func:`fairmoe.health.health`); only
    ``n_tokens`` where no token was routed."""

    n_tokens: int
    top_expert: int | None = None
    top_expert_share: float | None = None  # 1/E spread evenly, 1.0 collapsed
    kept_entropy: float | None = None  # of the kept load over experts / log E
    none_share: float | None = None  # tokens kept by no expert
    kept_share: tuple[float, ...] | None = None  # per expert
    gate_share: tuple[float, ...] | None = None  # per expert: mean gate weight
    collapsed: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_keys)


@dataclass(frozen=True, kw_only=True)
class RunEntry(_Record):
    """One shipped run: how it was trained, where its test scores are, what they summarise to."""

    name: str
    method: str  # a fairmoe.methods name: "clip", "fairclip", "fairmoe"
    attribute: str  # the attribute training read (CLIP's runs read none)
    seed: int | None
    fairness_scale: float  # weight of the fairness loss, relative to the defaults
    tag: str = ""  # an ablation ("nocap", "nobal") or a data variant ("shortcut", ...)
    data: str = "main"  # which data set's test split the scores are on (only "main" compare)
    config: str  # model preset ("tiny", "small", ...)
    role: str = ""  # "default": the app's model; "fair_test": one run of the comparison
    device: str
    epochs: int | None = None
    best_epoch: int | None = None  # chosen on validation
    train_seconds: float | None = None
    temperature: float | None = None  # calibration of the score
    scores: str  # the test scores CSV, relative to the assets folder
    test: RunSummary | None = None
    health: Mapping[str, RoutingHealth] = field(default_factory=_no_keys)  # per token MoE
    auc_ci: str | None = None  # its bootstrap AUC CIs (JSON), relative to the assets folder
    # the fair test (scripts/ship_fair_test.py): the run's arm (clip, fairclip, fairmoe, nofol,
    # fairmoe_notes, fairmoe_inbatch; control and oracle for CLIP on a scenario and on its twin)
    # and the test draw its scores are on
    arm: str | None = None
    test_draw: str | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_keys)


@dataclass(frozen=True, kw_only=True)
class ScenarioEntry(_Record):
    """A synthetic scenario with a known cause (``fairmoe.data.synthetic.SCENARIOS``)."""

    role: str  # positive_control, primary, secondary or negative_control
    mechanisms: str  # the generator preset (``--mechanisms``)
    cause: str  # one line
    extra: Mapping[str, Any] = field(default_factory=_no_keys)


@dataclass(frozen=True, kw_only=True)
class RunsFile(_Record):
    """The whole file. Paths are relative to the folder that holds it."""

    default: str | None = None  # the checkpoint the app loads without --checkpoint
    pretrained: str | None = None  # the plain CLIP every fine-tuned run started from
    runs: tuple[RunEntry, ...] = ()  # names are unique
    profile: Mapping[str, Any] = field(default_factory=_no_keys)  # train_all.py's, free-form
    trained_on: str | None = None  # "cpu" when every run trained on a CPU, else "gpu"
    # the fair test's scenarios; a run whose ``data`` names one has its scores on its test draw
    scenarios: Mapping[str, ScenarioEntry] | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_keys)

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for i, run in enumerate(self.runs):
            if run.name in seen:
                raise _ShapeError(
                    f"runs[{i}]", f"name {run.name!r} also names runs[{seen[run.name]}]"
                )
            seen[run.name] = i

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs]

    def run(self, name: str) -> RunEntry:
        """The run called ``name``, with an error that lists the names."""
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"no run {name!r} in runs.json; it has {', '.join(self.names) or 'none'}")


def read_runs(path: str | Path) -> RunsFile:
    """``path`` (a runs.json) read and checked; :class:`RunsFileError` says what is wrong."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunsFileError(f"{path}: cannot read the run list ({e})") from None
    return RunsFile.from_json(obj, str(path))


def write_runs(path: str | Path, runs: RunsFile) -> None:
    """Write ``runs`` to ``path`` as :func:`read_runs` reads it back."""
    Path(path).write_text(json.dumps(runs.to_json(), indent=INDENT), encoding="utf-8")


# ----------------------------------------------------------------------------- JSON <-> fields

_WANT = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _kind(v: Any) -> str:
    """How a JSON value reads in an error (with the value, when short)."""
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "true/false"}
    kind = "null" if v is None else kinds.get(type(v), "a number")
    shown = json.dumps(v) if isinstance(v, str | int | float) else ""
    return f"{kind} ({shown})" if shown and len(shown) <= 40 else kind


def _record(cls: type, obj: Any, path: str) -> Any:
    if not isinstance(obj, dict):
        raise _ShapeError(path, f"expected a JSON object, not {_kind(obj)}")
    hints, known, values = _hints(cls), {f.name for f in fields(cls)} - {"extra"}, {}
    for f in fields(cls):
        if f.name in known and f.name in obj:
            values[f.name] = _value(obj[f.name], hints[f.name], f"{path}.{f.name}".lstrip("."))
        elif f.name in known and f.default is MISSING and f.default_factory is MISSING:
            raise _ShapeError(path, f"missing key {f.name!r}")
    extra = {k: v for k, v in obj.items() if k not in known}
    return cls(**values, **({"extra": _freeze(extra)} if extra else {}))


def _value(v: Any, hint: Any, path: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return _freeze(v)
    if origin is UnionType:  # only `X | None` is used
        (inner,) = (a for a in args if a is not NoneType)
        return None if v is None else _value(v, inner, path)
    if isinstance(hint, type) and issubclass(hint, _Record):
        return _record(hint, v, path)
    if origin is Mapping:
        if not isinstance(v, dict):
            raise _ShapeError(path, f"expected a JSON object, not {_kind(v)}")
        return MappingProxyType({k: _value(x, args[1], f"{path}.{k}") for k, x in v.items()})
    if origin is tuple:
        if not isinstance(v, list):
            raise _ShapeError(path, f"expected an array, not {_kind(v)}")
        return tuple(_value(x, args[0], _item(path, i, x)) for i, x in enumerate(v))
    number = isinstance(v, int | float) and not isinstance(v, bool)
    ok = {str: isinstance(v, str), bool: isinstance(v, bool), int: number and isinstance(v, int)}
    if not ok.get(hint, number):  # float: any number
        raise _ShapeError(path, f"expected {_WANT[hint]}, not {_kind(v)}")
    return float(v) if hint is float else v


def _item(path: str, i: int, v: Any) -> str:
    """``runs[3] (clip-race-small-s0)``: an array item, by its name when it has one."""
    name = v.get("name") if isinstance(v, dict) else None
    return f"{path}[{i}] ({name})" if isinstance(name, str) else f"{path}[{i}]"


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return MappingProxyType({k: _freeze(x) for k, x in v.items()})
    return tuple(_freeze(x) for x in v) if isinstance(v, list) else v


def _thaw(v: Any) -> Any:
    if isinstance(v, _Record):
        out: dict[str, Any] = {}
        for f in fields(v):
            x = getattr(v, f.name)
            if f.name == "extra":
                out.update(_thaw(x))
            elif x is not None or f.default is not None:
                out[f.name] = _thaw(x)
        return out
    if isinstance(v, Mapping):
        return {k: _thaw(x) for k, x in v.items()}
    return [_thaw(x) for x in v] if isinstance(v, tuple | list) else v
