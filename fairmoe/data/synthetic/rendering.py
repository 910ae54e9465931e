"""The SLO-like grayscale scan of one synthetic patient, drawn from its ``SampleParams``.

Anatomy (field of view, retina texture, macula, disc and cup, vessels) is drawn at
``render_scale``, then the acquisition (contrast, vignetting, blur, gain, noise) is applied and the
image is upsampled to full resolution; the spurious marker is stamped last, at full resolution.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from .config import Stream, SyntheticConfig
from .sampling import SampleParams, rng

_TRI_SD = 256 / math.sqrt(6)  # sd of the difference of two uniform bytes

# one vessel centre line: x, y and width per step, render-scale pixels
_Path = tuple[np.ndarray, np.ndarray, np.ndarray]


def _smooth_field(r: np.random.Generator, h: int, w: int, terms: int, freq: float) -> np.ndarray:
    """Low-frequency texture as a sum of separable cosine products (cheap outer products)."""
    y = np.arange(h, dtype=np.float32)[:, None] / h
    x = np.arange(w, dtype=np.float32)[None, :] / w
    out = np.zeros((h, w), np.float32)
    for _ in range(terms):
        fy, fx = r.uniform(0.3, 1.0, 2) * freq
        py, px = r.uniform(0, 2 * np.pi, 2)
        out += np.cos(2 * np.pi * fy * y + py) * np.cos(2 * np.pi * fx * x + px)
    return out / math.sqrt(terms)


def _grow(
    r: np.random.Generator,
    paths: list[_Path],
    x0: float,
    y0: float,
    ang0: float,
    length: float,
    w0: float,
    curv: float,
    tau: float,
    depth: int,
) -> None:
    """Append one vessel (angle = start + decaying curvature + jitter) and its branches."""
    n = max(4, int(length))
    k = np.arange(n, dtype=np.float64)
    ang = ang0 + np.cumsum(curv * np.exp(-k / tau) + r.normal(0, 0.03, n))
    xs, ys = x0 + np.cumsum(np.cos(ang)), y0 + np.cumsum(np.sin(ang))
    ws = w0 * np.linspace(1.0, 0.35, n)
    paths.append((xs, ys, ws))
    for _ in range(int(r.integers(0, 3)) if depth else 0):
        j = int(n * r.uniform(0.2, 0.8))
        sign = 1.0 if r.random() < 0.5 else -1.0
        _grow(
            r,
            paths,
            xs[j],
            ys[j],
            ang[j] + sign * r.uniform(0.4, 0.9),
            (n - j) * r.uniform(0.4, 0.8),
            ws[j] * r.uniform(0.55, 0.75),
            sign * r.uniform(0, 0.01),
            40.0,
            depth - 1,
        )


def _arcade(
    r: np.random.Generator,
    paths: list[_Path],
    fovea: tuple[float, float],
    dist: float,
    phi0: float,
    vert: float,
    w0: float,
    db: float,
) -> None:
    """One temporal arcade vessel (superior ``vert=-1`` or inferior ``+1``) and its branches.

    ``dist`` and ``phi0`` are the length and angle of the fovea->disc axis; ``db`` shifts the
    arcade's ellipse aspect so that the artery does not run on top of the vein.
    """
    fx, fy = fovea
    sweep = r.uniform(2.0, 2.5)
    m = int(dist * sweep * 1.3)
    t = np.linspace(0.0, 1.0, m)
    # polar angle about the fovea; the radius spirals outwards with a slow wobble, so the
    # arcade bows around the macula and heads for the periphery instead of closing a circle
    phi = vert * math.copysign(1, math.cos(phi0)) * sweep * t
    b = r.uniform(0.68, 0.82) + db
    f1, f2, p1, p2 = r.uniform(1.0, 3.0), r.uniform(3.0, 6.0), *r.uniform(0, 6.3, 2)
    wob = 0.03 * np.sin(f1 * 6.3 * t + p1) + 0.012 * np.sin(f2 * 6.3 * t + p2)
    wob -= wob[0]
    rho = dist * (1 + wob + r.uniform(0.8, 1.6) * np.clip(t - 0.45, 0, None) ** 2)
    lx, ly = rho * np.cos(phi), rho * np.sin(phi) * b
    rx, ry = math.cos(phi0), math.sin(phi0)  # rotate onto the fovea->disc axis
    xs, ys = fx + lx * rx - ly * ry, fy + lx * ry + ly * rx
    ws = w0 * np.linspace(1.0, 0.4, m)
    paths.append((xs, ys, ws))
    for _ in range(int(r.integers(3, 6))):  # branches
        j = int(m * r.uniform(0.12, 0.85))
        out_ang = math.atan2(ys[j] - fy, xs[j] - fx)
        if r.random() < 0.6:
            ang, length = out_ang + r.normal(0, 0.35), dist * r.uniform(0.4, 0.9)
        else:  # towards the macula, stopping well before the fovea
            ang = out_ang + math.pi + r.normal(0, 0.3)
            length = max(6.0, math.hypot(xs[j] - fx, ys[j] - fy) - 0.45 * dist)
        w_branch = ws[j] * r.uniform(0.45, 0.7)
        _grow(r, paths, xs[j], ys[j], ang, length, w_branch, r.normal(0, 0.006), 40.0, 1)


def _vessel_paths(r: np.random.Generator, p: SampleParams, s: float) -> list[_Path]:
    """Centre lines (x, y, width) of the vessel tree at render scale ``s``.

    Temporal arcades (a vein and an artery above and below) sweep around the fovea on an ellipse;
    nasal vessels run outwards with a decaying curvature; branches leave the arcades outwards, or
    inwards but stopping short of the avascular fovea.
    """
    dx, dy = p.disc_xy[0] * s, p.disc_xy[1] * s
    fx, fy = p.fovea_xy[0] * s, p.fovea_xy[1] * s
    dist = math.hypot(dx - fx, dy - fy)
    phi0 = math.atan2(dy - fy, dx - fx)
    w_main = 0.17 * p.disc_radius * s  # vein calibre ~ 1/6 of the disc radius
    paths: list[_Path] = []
    for vert in (-1.0, 1.0):  # superior, inferior arcade pair
        # the artery's aspect shift is drawn before the vein is grown: part of the stream order
        for w_rel, db in ((1.0, 0.0), (0.7, r.uniform(-0.12, 0.12))):  # vein, artery
            _arcade(r, paths, (fx, fy), dist, phi0, vert, w_main * w_rel, db)
        # nasal vessels: away from the fovea, gently curved
        nas = math.atan2(vert * r.uniform(0.6, 1.6), math.cos(phi0) * 1.0)
        length = dist * r.uniform(0.7, 1.1)
        _grow(r, paths, dx, dy, nas, length, w_main * 0.75, r.normal(0, 0.004), 60.0, 2)
    for _ in range(int(r.integers(1, 4))):  # small vessels straight towards the macula
        a = phi0 + math.pi + r.normal(0, 0.5)
        length = dist * r.uniform(0.3, 0.5)
        _grow(r, paths, dx, dy, a, length, w_main * 0.35, r.normal(0, 0.006), 50.0, 0)
    return paths


def _vessel_layer(paths: list[_Path], h: int, w: int) -> np.ndarray:
    """Vessel darkness map: distance to the nearest centre-line pixel against its half-width."""
    xs = np.concatenate([q[0] for q in paths])
    ys = np.concatenate([q[1] for q in paths])
    ws = np.concatenate([q[2] for q in paths]).astype(np.float32)
    xi, yi = np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64)
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    wmap = np.zeros((h, w), np.float32)
    np.maximum.at(wmap, (yi[ok], xi[ok]), ws[ok])
    dist, (iy, ix) = ndi.distance_transform_edt(wmap == 0, return_indices=True)
    wn = wmap[iy, ix]
    half = 0.5 * wn + 0.6  # at least ~2 px wide: no stair-stepped 1-px lines
    prof = np.clip(1.0 - (dist / half) ** 2, 0.0, 1.0)  # parabolic cross-section
    return (prof * np.minimum(1.0, 0.35 + wn / 2.2)).astype(np.float32)  # thin vessels paler


def _disc_layer(p: SampleParams, s: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Disc brightness and cup brightness maps, computed in a window around the disc."""
    disc = np.zeros((h, w), np.float32)
    cup = np.zeros((h, w), np.float32)
    cx, cy, R = p.disc_xy[0] * s, p.disc_xy[1] * s, p.disc_radius * s
    half = int(R * 2.2) + 2
    x0, x1 = max(0, int(cx) - half), min(w, int(cx) + half)
    y0, y1 = max(0, int(cy) - half), min(h, int(cy) + half)
    if x0 >= x1 or y0 >= y1:
        return disc, cup
    yy = (np.arange(y0, y1, dtype=np.float32)[:, None] - cy) / R
    # discs are vertical ovals: x is stretched so the unit circle is the disc margin
    xx = (np.arange(x0, x1, dtype=np.float32)[None, :] - cx) / (R * 0.92)
    rr = np.sqrt(xx**2 + yy**2)
    theta = np.arctan2(yy, xx)
    edge = 0.05
    disc_w = 0.5 - 0.5 * np.tanh((rr - 1.0) / edge * 1.25)
    # cup: vertical radius = CDR, horizontal shrunk by the elongation; a notch pushes it out locally
    temporal = -1.0 if p.eye == "OD" else 1.0
    cxo = 0.08 * temporal  # the cup sits slightly temporal in the disc
    cyy = yy / max(p.cdr, 0.05)
    cxx = (xx - cxo) * (1.0 + p.cup_elongation) / max(p.cdr, 0.05)
    rc = np.sqrt(cxx**2 + cyy**2)
    if p.notch > 0:
        dth = np.angle(np.exp(1j * (theta - p.notch_angle)))
        rc = rc / (1.0 + p.notch * np.exp(-(dth**2) / 0.12))
    cup_w = 0.5 - 0.5 * np.tanh((rc - 1.0) / 0.12)
    ring = np.exp(-(((rr - 1.12) / 0.12) ** 2)) * p.ppa  # peripapillary atrophy halo
    disc[y0:y1, x0:x1] = disc_w + 0.35 * ring
    cup[y0:y1, x0:x1] = cup_w * disc_w
    return disc, cup


def render_scan(p: SampleParams, config: SyntheticConfig | None = None) -> np.ndarray:
    """The SLO-like grayscale scan of ``p``: uint8 (height, width)."""
    cfg = config or SyntheticConfig()
    H, W, s = cfg.height, cfg.width, cfg.render_scale
    h, w = round(H * s), round(W * s)
    r = rng(p.seed, p.index, Stream.RENDER)
    acq = p.acquisition

    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    # field of view: a bright ellipse almost filling the frame, soft edge
    fy, fx = h / 2 + r.normal(0, 2), w / 2 + r.normal(0, 2)
    ay, ax = h * r.uniform(0.47, 0.50), w * r.uniform(0.47, 0.50)
    rr = np.sqrt(((yy - fy) / ay) ** 2 + ((xx - fx) / ax) ** 2)
    fov = np.clip((1.0 - rr) / 0.02, 0.0, 1.0)

    base = r.uniform(0.42, 0.55)
    retina = base + 0.06 * _smooth_field(r, h, w, 4, 2.5) + 0.025 * _smooth_field(r, h, w, 5, 9.0)
    choroid = ndi.gaussian_filter(r.standard_normal((h, w), dtype=np.float32), 1.6)
    retina += 0.05 * choroid
    # macula: broad dark zone with a darker foveal pit
    fxm, fym = p.fovea_xy[0] * s, p.fovea_xy[1] * s
    d2 = ((xx - fxm) ** 2 + (yy - fym) ** 2) / (p.disc_radius * s) ** 2
    retina -= r.uniform(0.08, 0.14) * np.exp(-d2 / 2.2) + r.uniform(0.05, 0.09) * np.exp(-d2 / 0.12)

    disc, cup = _disc_layer(p, s, h, w)
    retina += r.uniform(0.09, 0.15) * disc + r.uniform(0.22, 0.32) * cup
    vessels = _vessel_layer(_vessel_paths(r, p, s), h, w)
    retina -= r.uniform(0.22, 0.32) * vessels * (1.0 + 0.4 * disc)  # vessels stand out on the disc

    # acquisition: contrast about the mean, vignetting, blur, gain, noise
    mean = float(retina[fov > 0.5].mean())
    img = mean + acq.contrast * (retina - mean)
    rc = np.minimum(rr, 1.0)
    img *= 1.0 - acq.vignette * (rc * rc * rc)  # darkening grows towards the rim
    img = img * fov + 0.03 * (1 - fov)
    img = ndi.gaussian_filter(img, acq.blur * s)
    # sensor noise at render scale: SLO speckle spans a couple of pixels, and upsampling it keeps
    # the full-resolution work to one 8-bit resize; triangular noise from two uint8 draws is
    # near-Gaussian and ~10x cheaper than standard_normal
    noise = r.integers(0, 256, (h, w), dtype=np.uint8).astype(np.float32)
    noise -= r.integers(0, 256, (h, w), dtype=np.uint8)
    img *= np.float32(acq.gain * 255.0)
    img += noise * np.float32(acq.noise * 255.0 / _TRI_SD)
    img += 0.5
    small = np.clip(img, 0, 255, out=img).astype(np.uint8)
    scan = np.array(Image.fromarray(small).resize((W, H), Image.BILINEAR))
    if p.marker:
        _stamp(scan, r, cfg.marker_size, cfg.marker_margin)
    return scan


def _stamp(
    img: np.ndarray, r: np.random.Generator, size: tuple[int, int], margin: tuple[int, int]
) -> None:
    """A bright device stamp in a corner of the dark surround, inside CLIP's centre crop."""
    H, W = img.shape
    crop = (H - W) // 2  # rows that Resize(shorter side) + CenterCrop drop at top and bottom
    sh, sw = size
    my, mx = margin
    top = crop + my if r.random() < 0.5 else H - crop - my - sh
    left = mx if r.random() < 0.5 else W - mx - sw
    block = np.full((sh, sw), 235, np.uint8)
    block[3:-3, 3::6] = 90  # tick marks: reads as a printed label, not a blob
    img[top : top + sh, left : left + sw] = block
