"""Checkpoints: round trip, sharding, and refusal of tampered, mismatched or pickled files."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from fairmoe.checkpoint import (
    CheckpointError,
    RunMetadata,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from fairmoe.model import create_model, get_config, load_model


def _save(tmp_path: Path, method: str = "fairmoe", **kw) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = create_model("tiny", method=method, n_groups=3)
    meta = RunMetadata(method=method, config=get_config("tiny").to_dict(), n_groups=3)
    return model, save_checkpoint(model, tmp_path, "m", metadata=meta, **kw)


def _outputs(model: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(1)
    x, t = torch.randn(2, 3, 64, 64), torch.randint(1, 49000, (2, 77))
    with torch.no_grad():
        out = model.eval()(x, t)
    return torch.cat([out.image_features, out.text_features])


@pytest.mark.parametrize("method", ["clip", "fairmoe"])
def test_round_trip_fp32(tmp_path: Path, method: str) -> None:
    model, path = _save(tmp_path, method, dtype=torch.float32)
    loaded, meta = load_model(path)
    assert meta.method == method and meta.n_parameters > 1e6
    assert torch.allclose(_outputs(model), _outputs(loaded), atol=1e-6)


def test_fp16_sharded_with_index(tmp_path: Path) -> None:
    model, path = _save(tmp_path, shard_bytes=2**20)
    shards = sorted(tmp_path.glob("m-0*-of-0*.safetensors"))
    # the 49,408 x 64 token embedding (6 MB) is split into row blocks: no file over the limit
    assert len(shards) >= 6 and all(s.stat().st_size <= 2**20 for s in shards)
    index = json.loads((tmp_path / "m.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {s.name for s in shards}
    loaded, _ = load_model(tmp_path / "m.safetensors.index.json")
    assert torch.allclose(_outputs(model), _outputs(loaded), atol=2e-2)  # fp16 rounding


def test_tampered_weights_refused(tmp_path: Path) -> None:
    _, path = _save(tmp_path)
    f = tmp_path / "m.safetensors"
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the metadata"):
        load_checkpoint(path)


def test_truncated_and_missing_files_refused(tmp_path: Path) -> None:
    _, path = _save(tmp_path)
    meta = json.loads(path.read_text())
    f = tmp_path / "m.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(path)
    f.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(path)
    meta["files"] = {"../m.safetensors": "0" * 64}
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="plain file name"):
        load_checkpoint(path)


def test_config_mismatch_refused(tmp_path: Path) -> None:
    _, path = _save(tmp_path)
    meta = json.loads(path.read_text())
    meta["config"]["vision"]["width"] = 96
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_model(path)
    meta["config"]["vision"]["colour"] = 1
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown fields"):
        load_model(path)


def test_pickle_offered_as_checkpoint_is_never_unpickled(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self):  # would run on unpickling
            return (Path.write_text, (tmp_path / "pwned", "x"))

    payload = pickle.dumps({"state": Boom()})
    (tmp_path / "evil.safetensors").write_bytes(payload)
    (tmp_path / "evil.pt").write_bytes(payload)
    with pytest.raises(CheckpointError, match="no checkpoint metadata"):
        load_checkpoint(tmp_path / "evil.pt")
    _, path = _save(tmp_path)
    meta = json.loads(path.read_text())
    meta["files"] = {"evil.safetensors": __import__("hashlib").sha256(payload).hexdigest()}
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_bad_metadata(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_metadata(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"config": {}}')
    with pytest.raises(CheckpointError, match="lacks"):
        read_metadata(tmp_path / "y.json")
