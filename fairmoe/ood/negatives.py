"""A negative set for validating the assessability check: images the model must not assess.

Built offline from what installed packages ship (photographs and graphics of matplotlib,
scikit-learn and gradio, an MRI slice and elevation maps of matplotlib) and from renders:
synthetic scans that were damaged (blurred, under- or over-exposed, noisy), rotated by 90 or 180
degrees, flipped upside down (never left-right: both eyes are in the data), cropped, stripped of
their field of view, or re-coloured as a colour fundus photograph; blank frames; text,
gradient and checkerboard renders. Package images go through ``fairmoe.inputs.load_scan`` as an
upload would (colour converted to grayscale, the colour flag kept); the photographs are also
included as grayscale uploads (``photograph_grey``), which only the image checks can catch.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

from fairmoe.inputs import InputError, load_scan
from fairmoe.ood.reasons import is_colour

__all__ = ["CATEGORIES", "NegativeSet", "build_negatives", "package_images"]

_PHOTOS = {  # package -> files under it; whichever are installed are used
    "matplotlib": ("mpl-data/sample_data/grace_hopper.jpg",),
    "sklearn": ("datasets/images/china.jpg", "datasets/images/flower.jpg"),
    "gradio": tuple(
        f"media_assets/images/{n}"
        for n in ("bus.png", "cheetah.jpg", "cheetah1.jpg", "groot.jpeg", "lion.jpg", "tower.jpg")
    )
    + ("test_data/cheetah2.jpg",),
}
_GRAPHICS = {
    "matplotlib": (
        "mpl-data/sample_data/logo2.png",
        "mpl-data/sample_data/Minduka_Present_Blue_Pack.png",
    ),
    "gradio": (
        "media_assets/images/logo.png",
        "media_assets/images/hf-logo_transpng.png",
        "media_assets/images/avatar.png",
        "test_data/test_image.png",
    ),
}
_SCAN_ASPECT = 664 / 512  # height / width of an SLO scan


@dataclass
class NegativeSet:
    """Images (uint8 H x W grayscale) with their category, a name saying what each is, and
    whether it was decoded from colour (``AssessabilityDetector.assess(colour=...)``)."""

    images: list[np.ndarray] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    colour: list[bool] = field(default_factory=list)

    def add(self, category: str, name: str, image: np.ndarray, colour: bool = False) -> None:
        self.images.append(np.ascontiguousarray(image, dtype=np.uint8))
        self.categories.append(category)
        self.names.append(name)
        self.colour.append(colour)

    def __len__(self) -> int:
        return len(self.images)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def package_images(table: dict[str, tuple[str, ...]] = _PHOTOS) -> list[Path]:
    """Installed image files of ``table`` (package -> relative paths)."""
    out = []
    for package, files in table.items():
        root = _package_dir(package)
        out += [root / f for f in files if root is not None and (root / f).is_file()]
    return out


def _decode(data: bytes) -> tuple[np.ndarray, bool] | None:
    """What an upload of these bytes gives the model: the grayscale scan, and whether it was
    converted from colour."""
    try:
        scan = load_scan(data)
    except InputError:
        return None
    return scan.image, is_colour(scan.warnings)


def _portrait_crops(image: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """The image and ``n`` random crops with a scan's portrait aspect (at least 128 px wide)."""
    h, w = image.shape
    out = [image]
    for _ in range(n):
        cw = int(min(w, h / _SCAN_ASPECT) * rng.uniform(0.5, 1.0))
        ch = int(cw * _SCAN_ASPECT)
        if cw < 128 or ch > h:
            break
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out.append(image[y : y + ch, x : x + cw])
    return out


def _to_uint8(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    lo, hi = np.nanpercentile(a, [1, 99])
    return (np.clip((a - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)


def _other_images() -> list[tuple[str, np.ndarray]]:
    """Non-fundus data shipped with matplotlib: an MRI slice and two elevation maps."""
    root = _package_dir("matplotlib")
    if root is None:
        return []
    data = root / "mpl-data" / "sample_data"
    out = []
    mri = data / "s1045.ima.gz"
    if mri.is_file():
        raw = np.frombuffer(gzip.decompress(mri.read_bytes()), np.uint16).reshape(256, 256)
        out.append(("mri_s1045", _to_uint8(raw)))
    for name, key in (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo")):
        if (data / name).is_file():
            with np.load(data / name) as z:
                grid = z[key]
            img = Image.fromarray(_to_uint8(grid)).resize((512, 664), Image.Resampling.BICUBIC)
            out.append((name.split(".")[0], np.asarray(img)))
    return out


def _colour_fundus(scan: np.ndarray) -> np.ndarray:
    """A colour fundus photograph made from a scan: orange retina, circular field, 4:3 frame,
    decoded as an upload (converted to grayscale)."""
    g = np.asarray(Image.fromarray(scan).resize((480, 480), Image.Resampling.BILINEAR), np.float32)
    g /= 255.0
    rgb = np.stack([0.25 + 0.75 * g, 0.05 + 0.5 * g, 0.02 + 0.15 * g], -1)
    yy, xx = np.mgrid[:480, :480]
    rgb *= (((yy - 239.5) ** 2 + (xx - 239.5) ** 2) <= 232**2)[..., None]
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 80:560] = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    out = _decode(buf.getvalue())
    assert out is not None and out[1], "a colour render must decode as colour"
    return out[0]


def _interior_crop(scan: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """A crop of the scan's central region, inside the field of view, with the scan's aspect."""
    h, w = scan.shape
    ch, cw = int(h * scale), int(w * scale)
    y = int(rng.integers(int(0.22 * h), int(0.78 * h) - ch + 1))
    x = int(rng.integers(int(0.2 * w), int(0.8 * w) - cw + 1))
    return scan[y : y + ch, x : x + cw]


def _damaged(rng: np.random.Generator) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Per category, a function from a scan to its damaged version."""

    def noisy(s: np.ndarray) -> np.ndarray:
        return np.clip(s + rng.normal(0, rng.uniform(35, 60), s.shape), 0, 255)

    def saturated(s: np.ndarray) -> np.ndarray:
        return np.clip(s.astype(np.float32) * rng.uniform(2.8, 4.0) + rng.uniform(0, 40), 0, 255)

    def no_fov(s: np.ndarray) -> np.ndarray:
        crop = _interior_crop(s, rng, rng.uniform(0.45, 0.55))
        return np.asarray(Image.fromarray(crop).resize(s.shape[::-1], Image.Resampling.BICUBIC))

    return {
        "blur": lambda s: ndi.gaussian_filter(s.astype(np.float32), rng.uniform(6, 12)),
        "dark": lambda s: s.astype(np.float32) * rng.uniform(0.08, 0.2),
        "saturated": saturated,
        "noise": noisy,
        "rotate_90": lambda s: np.rot90(s, 1 if rng.random() < 0.5 else 3),
        "rotate_180": lambda s: np.rot90(s, 2),
        "vertical_flip": lambda s: s[::-1],
        "scan_crop": lambda s: _interior_crop(s, rng, rng.uniform(0.3, 0.45)),
        "fov_removed": no_fov,
        "colour_fundus": _colour_fundus,
    }


def _patterns(rng: np.random.Generator, n: int) -> list[tuple[str, np.ndarray]]:
    """Text, gradients (linear and a bright radial blob) and checkerboards at scan size."""
    h, w = 664, 512
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    out = []
    for i in range(n):
        kind = ("text", "linear", "radial", "checker")[i % 4]
        if kind == "text":
            img = Image.new("L", (w, h), int(rng.integers(0, 60)))
            draw, font = ImageDraw.Draw(img), ImageFont.load_default(size=int(rng.integers(18, 40)))
            for row in range(0, h, 48):
                draw.text((10, row), "Fundus report: OD C/D 0.6, IOP 21", fill=230, font=font)
            a = np.asarray(img)
        elif kind == "linear":
            t = rng.uniform(0, np.pi)
            a = (np.cos(t) * xx / w + np.sin(t) * yy / h) * 127 + 64
        elif kind == "radial":
            r = np.hypot((yy - h / 2) / (0.48 * h), (xx - w / 2) / (0.48 * w))
            a = np.clip(1 - r, 0, 1) ** rng.uniform(0.3, 1.0) * rng.uniform(120, 200) + 8
        else:
            k = int(rng.integers(8, 64))
            a = ((yy // k + xx // k) % 2) * rng.uniform(120, 255)
        out.append((f"{kind}_{i}", np.clip(a, 0, 255)))
    return out


def build_negatives(
    scans: Sequence[np.ndarray], *, per_category: int = 40, photo_crops: int = 3, seed: int = 0
) -> NegativeSet:
    """The negative set: package images, renders, and damaged versions of ``scans``.

    ``scans``: raw in-distribution scans (uint8 H x W) to damage, used in turn; each
    damaged category gets ``per_category`` images, each package photograph itself and
    ``photo_crops`` portrait crops.
    """
    rng = np.random.default_rng(seed)
    out = NegativeSet()
    for kind, table in (("photograph", _PHOTOS), ("graphics", _GRAPHICS)):
        for path in package_images(table):
            decoded = _decode(path.read_bytes())
            if decoded is None:
                continue
            image, colour = decoded
            for j, crop in enumerate(_portrait_crops(image, rng, photo_crops)):
                out.add(kind, f"{path.name}#{j}", crop, colour)
                if kind == "photograph":
                    out.add("photograph_grey", f"{path.name}#{j}", crop)
    for name, image in _other_images():
        for j, crop in enumerate(_portrait_crops(image, rng, photo_crops)):
            out.add("other_modality", f"{name}#{j}", crop)
    for level in (0, 1, 40, 128, 200, 255):
        out.add("blank", f"blank_{level}", np.full((664, 512), level, np.uint8))
    for name, image in _patterns(rng, max(per_category // 2, 4)):
        out.add("pattern", name, image)
    if scans:
        for category, damage in _damaged(rng).items():
            for i in range(per_category):
                k = (i * 7 + len(category)) % len(scans)  # spread categories over the scans
                image = np.clip(damage(scans[k]), 0, 255)
                out.add(category, f"{category}_{k}", image, category == "colour_fundus")
    return out


CATEGORIES = (
    "photograph",
    "photograph_grey",
    "graphics",
    "other_modality",
    "blank",
    "pattern",
    *_damaged(np.random.default_rng(0)).keys(),
)
