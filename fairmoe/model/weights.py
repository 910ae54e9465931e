"""Plain CLIP weights from local files, loaded before any MoE is installed: ours, safetensors,
a ``torch.save``d state dict (read with ``weights_only=True``) or OpenAI's TorchScript archive."""

from __future__ import annotations

import zipfile
from pathlib import Path

import open_clip
import torch
from open_clip.model import resize_pos_embed
from torch import Tensor

from fairmoe.checkpoint import load_checkpoint
from fairmoe.methods import method_spec

__all__ = ["load_pretrained_weights"]


def _read_ours(path: Path) -> dict[str, Tensor]:
    """Weights of one of our checkpoints (hash-checked), as open_clip CLIP keys."""
    state, meta = load_checkpoint(path)
    if method_spec(meta.method).has_moe or any(not k.startswith("clip.") for k in state):
        raise ValueError(
            f"{path}: a {meta.method!r} checkpoint; start from a plain CLIP checkpoint (its "
            "MoE blocks' MLPs are copied into the experts)"
        )
    return {k.removeprefix("clip."): v for k, v in state.items()}


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".json":
        return _read_ours(path)
    if path.suffix == ".safetensors":
        stem = path.name.removesuffix(".safetensors").split("-0000")[0]
        if (path.parent / f"{stem}.json").is_file():  # one of ours: read it through its metadata
            return _read_ours(path)
        from safetensors.torch import load_file

        return load_file(str(path))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            is_torchscript = any(n.endswith("constants.pkl") for n in z.namelist())
        if is_torchscript:  # OpenAI's released ViT-B-16.pt is a TorchScript archive
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses arbitrary pickles; say so instead of unpickling
        raise ValueError(
            f"{path}: cannot read weights safely ({type(e).__name__}: {e}); provide a "
            ".safetensors file, a plain state_dict .pt, or OpenAI's TorchScript .pt"
        ) from e
    for key in ("state_dict", "model_state_dict"):  # open_clip / FairCLIP training checkpoints
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a state_dict, found {type(obj).__name__}")
    return obj


def load_pretrained_weights(clip: open_clip.CLIP, path: str | Path, *, config_name: str) -> None:
    """Load CLIP weights from a local file into ``clip`` (before any MoE is installed).

    Accepts one of our plain-CLIP checkpoints (NAME.json, or its .safetensors beside it),
    safetensors, a ``torch.save``d state_dict (read with weights_only=True; ``module.`` and
    ``clip.`` prefixes removed), or OpenAI's TorchScript archive. Never downloads anything.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"initial weights {str(path)!r} not found; pass a local CLIP checkpoint "
            "(ours, open_clip or OpenAI)"
        )
    sd = _read_state_dict(path)
    sd = {k.removeprefix("module.").removeprefix("clip."): v for k, v in sd.items()}
    # OpenAI archive extras, and the causal mask that TorchScript archives store as a buffer
    for key in ("input_resolution", "context_length", "vocab_size", "attn_mask"):
        sd.pop(key, None)
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}  # OpenAI is fp16
    resize_pos_embed(sd, clip)
    try:
        clip.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"{path}: weights do not fit model config {config_name!r} (use the config the "
            f"weights were trained with, e.g. 'vit-b-16' for OpenAI ViT-B/16):\n{e}"
        ) from e
