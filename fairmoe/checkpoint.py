"""Checkpoints: safetensors weights (sharded below 15 MiB) + JSON metadata with sha256 of each file.

Layout for a checkpoint named NAME in folder DIR:
  DIR/NAME.json                      metadata (config, method, attribute, metrics, hashes, ...)
  DIR/NAME.safetensors               weights, when they fit in one shard, or
  DIR/NAME-0000k-of-0000n.safetensors + DIR/NAME.safetensors.index.json (Hugging Face convention)
A tensor larger than a shard (the 49,408-row token embedding of `demo`) is stored as row blocks named
`KEY.__part{i}of{n}` and concatenated on load, so no file exceeds the limit.
Loading never unpickles: only safetensors and JSON are read, and every file's hash is checked first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

__all__ = [
    "CheckpointError",
    "FORMAT_VERSION",
    "RunMetadata",
    "check_state",
    "config_from_dict",
    "load_checkpoint",
    "read_metadata",
    "resolve_checkpoint",
    "save_checkpoint",
    "sha256_file",
]

FORMAT_VERSION = 1
SHARD_BYTES = 15 * 2**20  # keep each file under 15 MiB: fits the device tool's 16 MiB transfers


class CheckpointError(ValueError):
    """A checkpoint is missing, tampered with, or does not match its own config."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) frozen dataclass from ``dataclasses.asdict`` output; unknown keys refused."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise CheckpointError(f"config for {cls.__name__} has unknown fields {sorted(unknown)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        target = next((t for t in options if dataclasses.is_dataclass(t)), None)
        if target is not None and isinstance(value, dict):
            value = config_from_dict(target, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def resolve_checkpoint(path: str | Path) -> Path:
    """The metadata JSON of a checkpoint given as NAME.json, NAME.safetensors or DIR/NAME."""
    p = Path(path)
    if p.suffix == ".json" and not p.name.endswith(".index.json"):
        candidate = p
    elif p.name.endswith(".safetensors.index.json"):
        candidate = p.with_name(p.name[: -len(".safetensors.index.json")] + ".json")
    elif p.suffix == ".safetensors":
        stem = p.stem.split("-0000")[0]
        candidate = p.with_name(stem + ".json")
    else:
        candidate = p.with_name(p.name + ".json")
    if not candidate.is_file():
        raise CheckpointError(
            f"{path}: no checkpoint metadata found (expected {candidate.name}); a checkpoint is "
            "NAME.json + NAME.safetensors written by train.py"
        )
    return candidate


@dataclass(frozen=True)
class RunMetadata:
    """What a checkpoint's NAME.json says: enough to rebuild, calibrate and describe the model.

    The JSON layout is format version 1 (``to_dict``/``from_dict`` round-trip it). ``config`` is
    the model config as a dict (``fairmoe.model`` parses it); ``train_config`` the resolved
    training config. Fields filled by :func:`save_checkpoint` (``files`` and below) are empty
    until the weights are written.
    """

    method: str
    config: dict[str, Any]  # ModelConfig.to_dict()
    name: str = ""
    attribute: str = "race"
    n_groups: int = 3  # feature-MoE experts = groups of the attribute
    seed: int | None = None
    train_config: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0  # calibration: softmax(cos / T), fitted on validation
    calibration_fitted_on: str | None = None
    best_epoch: int | None = None
    data: dict[str, Any] = field(default_factory=dict)  # per-split summaries
    data_synthetic: bool = False  # the data folder carried the generator's SYNTHETIC.md
    ood: dict[str, Any] | None = None  # fairmoe.calibration.OODReference.to_dict()
    metrics: dict[str, Any] = field(default_factory=dict)  # {"test": report, "validation": ...}
    routing_health: dict[str, Any] | None = None  # fairmoe.health reports of the test split
    influence: dict[str, Any] | None = None  # fairmoe.influence report of the test split
    device: str = ""
    world_size: int = 1
    train_seconds: float | None = None
    scores_file: str | None = None
    scores_sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    dtype: str | None = None
    n_parameters: int | None = None
    torch_version: str | None = None
    python_version: str | None = None
    format_version: int = FORMAT_VERSION
    path: Path | None = field(default=None, compare=False)  # where it was read from (not saved)

    @property
    def config_name(self) -> str:
        return str(self.config.get("name", ""))

    @property
    def fairness_scale(self) -> float:
        return float(self.train_config.get("fairness_scale", 1.0))

    @property
    def test_metrics(self) -> dict[str, Any]:
        return self.metrics.get("test") or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as NAME.json (format version 1)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("path", "temperature", "calibration_fitted_on"):
            del out[key]
        out["calibration"] = {"temperature": self.temperature}
        if self.calibration_fitted_on is not None:
            out["calibration"]["fitted_on"] = self.calibration_fitted_on
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, path: Path | None = None) -> RunMetadata:
        """Parse NAME.json; CheckpointError names what is missing or wrong."""
        where = path or "metadata"
        missing = [k for k in ("format_version", "config", "method", "files") if k not in data]
        if missing:
            raise CheckpointError(f"{where}: metadata lacks {missing}; was it written by train.py?")
        if data["format_version"] != FORMAT_VERSION:
            raise CheckpointError(
                f"{where}: format version {data['format_version']}, this code reads {FORMAT_VERSION}"
            )
        known = {f.name for f in dataclasses.fields(cls)} - {"path"}
        kwargs = {k: v for k, v in data.items() if k in known}
        calibration = data.get("calibration") or {}
        if not isinstance(data["config"], dict) or not isinstance(calibration, dict):
            raise CheckpointError(f"{where}: 'config' and 'calibration' must be JSON objects")
        kwargs["temperature"] = float(calibration.get("temperature", 1.0))
        kwargs["calibration_fitted_on"] = calibration.get("fitted_on")
        try:
            return cls(**kwargs, path=path)
        except TypeError as e:
            raise CheckpointError(f"{where}: malformed metadata ({e})") from None


PART = ".__part"


def _split_large(state: dict[str, torch.Tensor], limit: int) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if nbytes <= limit or t.dim() == 0 or t.shape[0] < 2:
            out[name] = t
            continue
        n = min(t.shape[0], -(-nbytes // limit))
        for i, block in enumerate(torch.tensor_split(t, n, dim=0)):
            out[f"{name}{PART}{i}of{n}"] = block.contiguous()
    return out


def _join_parts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    parts: dict[str, dict[int, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, t in state.items():
        if PART in key:
            name, _, spec = key.rpartition(PART)
            i, _, n = spec.partition("of")
            parts.setdefault(name, {})[int(i)] = t
            if len(parts[name]) > int(n):
                raise CheckpointError(f"tensor {name}: more parts than {n}")
        else:
            out[key] = t
    for name, blocks in parts.items():
        if sorted(blocks) != list(range(len(blocks))):
            raise CheckpointError(f"tensor {name}: missing parts")
        out[name] = torch.cat([blocks[i] for i in range(len(blocks))], dim=0)
    return out


def _shard_plan(state: dict[str, torch.Tensor], limit: int) -> list[list[str]]:
    shards: list[list[str]] = [[]]
    size = 0
    for name, t in state.items():
        n = t.numel() * t.element_size()
        if shards[-1] and size + n > limit:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += n
    return shards


def save_checkpoint(
    model: torch.nn.Module,
    directory: str | Path,
    name: str,
    *,
    metadata: RunMetadata,
    dtype: torch.dtype = torch.float16,
    shard_bytes: int = SHARD_BYTES,
) -> Path:
    """Write weights (sharded, hashed) and NAME.json; returns the metadata path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    n_params = sum(p.numel() for p in model.parameters())
    for old in directory.glob(f"{name}-0*-of-0*.safetensors"):
        old.unlink()
    state = _split_large(state, shard_bytes - 2**16)  # headroom for the safetensors header
    plan = _shard_plan(state, shard_bytes - 2**16)
    files: list[str] = []
    if len(plan) == 1:
        files.append(f"{name}.safetensors")
        save_file(state, directory / files[0], metadata={"format": "pt"})
    else:
        weight_map = {}
        for i, keys in enumerate(plan, start=1):
            fname = f"{name}-{i:05d}-of-{len(plan):05d}.safetensors"
            save_file({k: state[k] for k in keys}, directory / fname, metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(keys, fname))
            files.append(fname)
        index = {
            "metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())}
        }
        index["weight_map"] = weight_map
        (directory / f"{name}.safetensors.index.json").write_text(json.dumps(index, indent=1))
        files.append(f"{name}.safetensors.index.json")
    meta = dataclasses.replace(
        metadata,
        format_version=FORMAT_VERSION,
        name=name,
        dtype=str(dtype).removeprefix("torch."),
        n_parameters=n_params,
        torch_version=torch.__version__,
        python_version=platform.python_version(),
        files={f: sha256_file(directory / f) for f in files},
    )
    out = directory / f"{name}.json"
    out.write_text(json.dumps(meta.to_dict(), indent=2, default=_json_default))
    return out


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_metadata(path: str | Path) -> RunMetadata:
    """Metadata of a checkpoint, checked for the fields loading needs (no weights read)."""
    meta_path = resolve_checkpoint(path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON metadata ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: metadata must be a JSON object")
    return RunMetadata.from_dict(meta, path=meta_path)


def _load_state(meta: RunMetadata) -> dict[str, torch.Tensor]:
    meta_path = meta.path or Path(f"{meta.name}.json")
    directory = meta_path.parent
    state: dict[str, torch.Tensor] = {}
    for fname, digest in meta.files.items():
        f = directory / fname
        if Path(fname).name != fname:
            raise CheckpointError(f"{meta_path}: file entry {fname!r} must be a plain file name")
        if not f.is_file():
            raise CheckpointError(f"{f}: missing (listed in {meta_path.name})")
        actual = sha256_file(f)
        if actual != digest:
            raise CheckpointError(
                f"{f}: sha256 {actual[:12]}... does not match the metadata ({digest[:12]}...); "
                "the file is corrupt or was modified"
            )
    for fname in meta.files:
        if fname.endswith(".safetensors"):
            try:
                state.update(load_file(directory / fname, device="cpu"))
            except (SafetensorError, OSError, ValueError) as e:
                raise CheckpointError(
                    f"{directory / fname}: not a safetensors file ({e})"
                ) from None
    if not state:
        raise CheckpointError(f"{meta_path}: lists no .safetensors weights")
    return _join_parts(state)


def load_checkpoint(
    checkpoint: str | Path | RunMetadata,
) -> tuple[dict[str, torch.Tensor], RunMetadata]:
    """Weights (as stored, e.g. fp16) and metadata, after every file's hash was checked.

    Like open_clip's ``load_checkpoint``, this only reads state: the caller builds the model
    (``fairmoe.model.load_model`` does both). ``checkpoint`` may be metadata already read.
    """
    meta = checkpoint if isinstance(checkpoint, RunMetadata) else read_metadata(checkpoint)
    return _load_state(meta), meta


def check_state(
    expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], meta: RunMetadata
) -> None:
    """Refuse weights whose keys or shapes differ from the model the metadata describes."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if keys
        )
        raise CheckpointError(f"{meta.path}: weights do not match the config ({detail})")
