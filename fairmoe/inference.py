"""Predictor: scan + note -> calibrated glaucoma probability, expert routing, warnings (CPU-friendly).

The decision uses the scan only, by CLIP zero-shot classification against the two prompts (as Fair-MoE
and FairCLIP evaluate); the note is encoded to show how well it agrees with the scan and which of its
tokens the text experts kept. Patient attributes are never model inputs.
"""

from __future__ import annotations

import html
import io
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from fairmoe.checkpoint import load_checkpoint
from fairmoe.data.fairvlmed import (
    DataError,
    normalize_scan,
    parse_npz,
    preprocess_scan,
    scan_to_uint8,
    truncate_note,
)
from fairmoe.model import glaucoma_probability
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NOTE_CHARS",
    "InputError",
    "Predictor",
    "ScanInput",
    "check_note",
    "load_scan",
]

MAX_FILE_BYTES = 50 * 2**20  # larger uploads are refused before decoding
MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb guard: a real SLO scan has 0.34 M pixels
MAX_NPZ_BYTES = MAX_IMAGE_PIXELS  # unpacked .npz: a uint8 scan at the pixel limit (real: 0.4 MB)
MIN_SIDE = 64  # below this a scan holds no usable optic-disc detail
MAX_NOTE_CHARS = 5_000  # real notes are a few hundred characters; the model reads 180
NOTE_CHARS = 180  # what the text encoder saw in training (truncate_note)
_SPECIAL_TOKENS = re.compile(r"<\s*(start|end)_of_text\s*>", re.IGNORECASE)


class InputError(ValueError):
    """Bad user input; the message says what was wrong and what to do."""


@dataclass
class ScanInput:
    """A decoded scan and, for a FairVLMed .npz, the note, attributes and label it carried."""

    image: np.ndarray  # uint8 (H, W) grayscale
    note: str | None = None
    attrs: dict[str, int] | None = None
    label: int | None = None
    source_kind: str = "image"  # "image" or "npz"
    warnings: list[str] = field(default_factory=list)


def _read_bytes(source: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(source, bytes):
        return source, "upload"
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path.name}: file not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(
            f"{path.name}: {size / 2**20:.0f} MB is over the {MAX_FILE_BYTES // 2**20} MB limit"
        )
    return path.read_bytes(), path.name


def _load_npz(data: bytes, name: str) -> ScanInput:
    try:
        rec = parse_npz(io.BytesIO(data), with_image=True, name=name, max_bytes=MAX_NPZ_BYTES)
    except DataError as e:
        raise InputError(f"not a usable FairVLMed .npz: {e}") from None
    attrs = {a: int(c) for a, c in zip(ATTRIBUTE_NAMES, rec["attrs"], strict=True)}
    return ScanInput(rec["image"], str(rec["note"]) or None, attrs, int(rec["label"]), "npz")


def _load_image(data: bytes, name: str) -> ScanInput:
    notes: list[str] = []
    try:
        # open() reads only the header, so the size is checked before any pixel is decoded; no
        # process-wide PIL setting is changed (requests are served from several threads).
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise Image.DecompressionBombError("too many pixels")
        img.load()
    except Image.DecompressionBombError:
        raise InputError(
            f"{name}: the image is too large to decode safely (over {MAX_IMAGE_PIXELS:,} pixels); "
            "upload the scan at its native resolution"
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"{name}: not an image (expected PNG, JPEG, TIFF or a FairVLMed .npz)"
        ) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise InputError(f"{name}: the image file is corrupt or truncated ({e})") from None
    try:
        img = ImageOps.exif_transpose(img)
    except Exception as e:  # PIL parses and rewrites the EXIF block: damage fails in many ways
        raise InputError(
            f"{name}: the image's EXIF metadata is corrupt ({type(e).__name__}: {e}); "
            "re-export the scan without metadata"
        ) from None
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
        notes.append("The image had transparency; it was flattened onto black.")
    if img.mode in ("RGB", "RGBA", "CMYK", "YCbCr", "P"):
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
        spread = np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).mean()
        if spread > 4:
            notes.append(
                "This looks like a colour fundus photograph; it was converted to grayscale. The "
                "model was trained on SLO scans, so treat the result with extra caution."
            )
        array = np.asarray(img.convert("L"))
    else:
        # L, I;16, I, F: scan_to_uint8 rescales wide ranges; 1-bit would read as bool
        array = np.asarray(img.convert("L") if img.mode == "1" else img)
    try:
        image = scan_to_uint8(array, name)
    except DataError as e:
        raise InputError(str(e)) from None
    return ScanInput(image, source_kind="image", warnings=notes)


def load_scan(source: str | Path | bytes | Image.Image | np.ndarray) -> ScanInput:
    """Decode an upload: PNG, JPEG, TIFF (8/16-bit, RGBA, colour) or a FairVLMed .npz."""
    if isinstance(source, ScanInput):
        return source
    if isinstance(source, Image.Image):
        buf = io.BytesIO()
        source.save(buf, format="PNG")
        scan = _load_image(buf.getvalue(), "image")
    elif isinstance(source, np.ndarray):
        try:
            scan = ScanInput(scan_to_uint8(source, "image"))
        except DataError as e:
            raise InputError(str(e)) from None
    else:
        data, name = _read_bytes(source)
        if not data:
            raise InputError(f"{name}: the file is empty")
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"{name}: over the {MAX_FILE_BYTES // 2**20} MB limit")
        is_zip = data[:4] == b"PK\x03\x04" and zipfile.is_zipfile(io.BytesIO(data))
        scan = _load_npz(data, name) if is_zip else _load_image(data, name)
    h, w = scan.image.shape
    if min(h, w) < MIN_SIDE:
        raise InputError(f"the scan is {w}x{h} pixels; at least {MIN_SIDE} per side is needed")
    return scan


def check_note(note: str | None) -> tuple[str, list[str]]:
    """Clean a clinical note; refuses binary or huge text with a clear message."""
    if note is None:
        return "", []
    if not isinstance(note, str):
        raise InputError("the note must be text")
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(
            f"the note has {len(note):,} characters; at most {MAX_NOTE_CHARS:,} are accepted "
            f"(the model reads the first {NOTE_CHARS})"
        )
    bad = sum(1 for ch in note if ord(ch) < 32 and ch not in "\n\r\t")
    if "\x00" in note or bad > max(2, len(note) // 50):
        raise InputError("the note contains binary data; paste the clinical note as plain text")
    clean = " ".join(note.split())
    notes = []
    # The tokenizer unescapes HTML twice and then treats these strings as its own markers: an
    # <end_of_text> inside a note would end the text feature there.
    unescaped = html.unescape(html.unescape(clean))
    if _SPECIAL_TOKENS.search(unescaped):
        clean = " ".join(_SPECIAL_TOKENS.sub(" ", unescaped).split())
        notes.append(
            "Removed tokenizer control markers (<start_of_text>, <end_of_text>) from the note."
        )
    if len(clean) > NOTE_CHARS:
        notes.append(
            f"The model reads the first {NOTE_CHARS} characters of the note, as in training."
        )
    return clean, notes


def _quality_warnings(image: np.ndarray) -> list[str]:
    out = []
    mean, std = float(image.mean()), float(image.std())
    if mean < 12:
        out.append("The scan is very dark; the optic disc may not be visible.")
    elif mean > 235:
        out.append("The scan is nearly saturated (very bright).")
    if std < 6:
        out.append("The scan has almost no contrast; it may be blank or not a fundus scan.")
    h, w = image.shape
    if max(h, w) / min(h, w) > 2.0:
        out.append("Unusual aspect ratio: the model only sees the centre square of the image.")
    return out


def _uncertainty(p: float, threshold: float) -> str:
    margin = abs(p - threshold)
    if margin < 0.1:
        return (
            f"Inconclusive: {p:.0%} is close to the {threshold:.0%} operating point; the model "
            "cannot tell these cases apart reliably. Treat it as 'not sure'."
        )
    if margin < 0.25:
        return "Moderate confidence: the probability is on one side of the operating point but not far."
    return "High model confidence. This is still a research model, not a diagnosis."


class Predictor:
    """A loaded checkpoint ready to score scans on CPU."""

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model, self.meta = load_checkpoint(checkpoint, device=self.device)
        for p in self.model.parameters():
            p.requires_grad_(False)  # attributions differentiate inputs only (and run faster)
        self.method: str = self.meta["method"]
        self.attribute: str = self.meta.get("attribute", "race")
        cfg = self.model.config
        self.image_size: int = cfg.vision.image_size
        self.grid: int = cfg.vision.image_size // cfg.vision.patch_size
        moe = self.model.token_moe_img
        self.n_experts: int = moe.cfg.n_experts if moe is not None else 0
        attr = ATTRIBUTES.get(self.attribute)
        n_feat = len(self.model.feat_moe_img.experts) if self.model.feat_moe_img is not None else 0
        self.group_names = [
            attr.groups[j] if attr is not None and j < attr.n_groups else f"expert {j}"
            for j in range(n_feat)
        ]
        self.temperature = float(self.meta.get("calibration", {}).get("temperature", 1.0))
        self.threshold = 0.5  # the temperature keeps the references' 0.5 boundary
        self.tokenizer = self.model.tokenizer()
        with torch.no_grad():  # not inference_mode: attributions differentiate through these
            self.prompts = self.model.encode_prompts().to(self.device)  # (2, E)
        self.ood = self.meta.get("ood")

    # -- inputs ---------------------------------------------------------------------------------
    def scan_pixels(self, scan: ScanInput | Any) -> np.ndarray:
        """The (S, S) uint8 centre-cropped model input, for overlays."""
        return preprocess_scan(load_scan(scan).image, self.image_size).numpy()

    def _image_input(self, scan: ScanInput) -> torch.Tensor:
        pixels = preprocess_scan(scan.image, self.image_size)
        return normalize_scan(pixels.unsqueeze(0)).to(self.device)  # (1, 3, S, S)

    def _tokens(self, note: str) -> torch.Tensor:
        return self.tokenizer([truncate_note(note, NOTE_CHARS)]).to(self.device)  # (1, 77)

    def token_strings(self, tokens: torch.Tensor) -> list[str]:
        """Readable BPE pieces of one tokenised note, without SOT/EOT/padding."""
        ids = [int(t) for t in tokens.reshape(-1) if int(t) not in (0, 49406, 49407)]
        dec = self.tokenizer.decoder
        return [dec.get(i, "?").replace("</w>", " ") for i in ids]

    # -- prediction -----------------------------------------------------------------------------
    def _ood_warning(self, feature: torch.Tensor) -> str | None:
        if not self.ood:
            return None
        mean = torch.tensor(self.ood["mean"])
        std = torch.tensor(self.ood["std"]).clamp_min(1e-6)
        dist = float(((feature.cpu() - mean) / std).pow(2).mean().sqrt())
        if dist > float(self.ood["threshold"]):
            return (
                "This scan is unlike the scans the model was trained on (its embedding lies outside "
                f"{self.ood.get('quantile', 0.99):.0%} of validation scans). The probability may be "
                "meaningless: check that this is an SLO fundus scan of usable quality."
            )
        return None

    def _grid(self, values: torch.Tensor) -> list[list[float]]:
        g = self.grid
        return values[1:].reshape(g, g).tolist()  # token 0 is CLS

    def _routing_summary(self, routing: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"experts": [], "dropped_patches": None, "n_dropped": 0}
        tr = routing.get("token_img")
        if tr is not None:
            w, kept = tr.weights[0].float(), tr.kept[0]  # (T, E)
            k1 = self.model.token_moe_img.cfg.top_k
            top = tr.probs[0].topk(k1, dim=-1).indices  # (T, k1): the token's chosen experts
            chosen = torch.zeros_like(kept).scatter_(-1, top, True)
            for e in range(w.shape[1]):
                k = kept[:, e]
                out["experts"].append(
                    {
                        "id": e,
                        "kept_patches": int(k[1:].sum()),
                        "keeps_cls": bool(k[0]),
                        "gate_mean": float(w[k, e].mean()) if bool(k.any()) else 0.0,
                        "kept": self._grid(k.int()),
                        # chosen by top-k but over this expert's capacity: filtered here
                        "capacity_dropped": self._grid((chosen[:, e] & ~k).int()),
                        "weights": self._grid(w[:, e]),
                    }
                )
            dropped = tr.dropped[0]
            out["dropped_patches"] = self._grid(dropped.int())
            out["n_dropped"] = int(dropped[1:].sum())
        return out

    @torch.inference_mode()
    def predict(self, scan: ScanInput | Any, note: str | None = None) -> dict[str, Any]:
        scan = load_scan(scan)
        note = note if note is not None else scan.note
        note, note_warnings = check_note(note)
        x = self._image_input(scan)
        h = self.model.image_trunk(x)
        feature, routing = self.model.image_head(h)  # (1, E) normalised
        cos = (feature @ self.prompts.T)[0]  # (2,)
        p = float(glaucoma_probability(cos[None].double(), temperature=self.temperature)[0])
        warns = list(scan.warnings) + _quality_warnings(scan.image)
        ood = self._ood_warning(feature[0])
        if ood:
            warns.append(ood)
        result: dict[str, Any] = {
            "probability": p,
            "decision": "glaucoma" if p >= self.threshold else "no glaucoma",
            "threshold": self.threshold,
            "uncertainty": _uncertainty(p, self.threshold),
            "raw_cosines": [float(cos[0]), float(cos[1])],
            "temperature": self.temperature,
            "method": self.method,
            "attribute": self.attribute,
            "grid": self.grid,
        }
        result.update(self._routing_summary(routing))
        feat = routing.get("feat_img")
        result["feature_gates"] = {
            "image": feat.weights[0].tolist() if feat is not None else None,
            "text": None,
            "names": self.group_names,
        }
        result["note"] = {
            "text": note,
            "similarity_to_scan": None,
            "tokens": [],
            "dropped_tokens": [],
        }
        if note:
            tokens = self._tokens(note)
            text_feature, troute = self.model.encode_text_with_routing(tokens)
            result["note"]["similarity_to_scan"] = float(feature[0] @ text_feature[0])
            result["note"]["tokens"] = self.token_strings(tokens)
            if "feat_txt" in troute:
                result["feature_gates"]["text"] = troute["feat_txt"].weights[0].tolist()
            if "token_txt" in troute:
                n = len(result["note"]["tokens"])
                dropped = troute["token_txt"].dropped[0, 1 : 1 + n].tolist()  # skip SOT
                result["note"]["dropped_tokens"] = [bool(d) for d in dropped]
        else:
            warns.append("No clinical note given: only the scan was used (the decision always is).")
        result["warnings"] = warns + note_warnings
        if scan.attrs is not None:
            result["npz"] = {"attrs": scan.attrs, "label": scan.label}
        if not math.isfinite(p):
            raise RuntimeError("the model produced a non-finite probability")
        return result

    def explain(
        self, scan: ScanInput | Any, note: str | None = None, *, n_steps: int = 16
    ) -> dict[str, Any]:
        """``predict`` plus Captum attributions per image expert and over the note's tokens."""
        from fairmoe.explain import attribute_experts, attribute_note

        scan = load_scan(scan)
        result = self.predict(scan, note)
        x = self._image_input(scan)
        result["attributions"] = attribute_experts(self, x, n_steps=n_steps)
        text = result["note"]["text"]
        result["note_attributions"] = (
            attribute_note(self, x, self._tokens(text), n_steps=n_steps) if text else []
        )
        return result
