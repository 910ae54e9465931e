"""Fixtures for the app tests: a small assets folder trained here, a launched server, a client.

The assets are built once from a synthetic data set with tiny models trained by the repo's
``train.py`` (about a minute on 2 cores) and cached in the temp folder under a hash of the code
that makes them, so later sessions reuse them until that code changes.
"""

from __future__ import annotations

import os

# Before gradio (and open_clip) are imported anywhere: no analytics, no hub look-ups.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import contextlib  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.loadgen import free_port, launched  # noqa: E402, F401  (re-exported for the app tests)

# As `python -m app` does on 2 cores: one torch thread, one core left for the server and client.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]
N_CASES = 150
# The public API (app/API.md), sorted: every other event is private.
PUBLIC_ENDPOINTS = ["audit", "cohort", "explain", "fairness", "model_maps", "models", "predict"]
STALE_CACHE_S = 6 * 3600  # other versions' cached assets older than this are deleted
FIXTURE_VERSION = "3"  # bump to force a rebuild when the layout written here changes


def _code_hash() -> str:
    h = hashlib.sha256(FIXTURE_VERSION.encode())
    files = sorted((REPO / "fairmoe").rglob("*.py")) + [REPO / "train.py", Path(__file__)]
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _train(argv: list[str]) -> None:
    spec = importlib.util.spec_from_file_location("fairmoe_train_cli", REPO / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with contextlib.redirect_stdout(io.StringIO()):
        rc = mod.main(argv)
    assert rc == 0, f"train.py {' '.join(argv)} failed with {rc}"


def _add_loads(scores_csv: Path, checkpoint: Path, data: Path) -> None:
    """load_e* columns (share of patch tokens each image expert kept), if training did not write them."""
    from fairmoe.inference import Predictor

    with scores_csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "load_e0" in rows[0]:
        return
    pred = Predictor(checkpoint)
    n_patches = pred.grid**2
    for r in rows:
        res = pred.predict(data / "Test" / f"{r['id']}.npz")
        for e in res["experts"]:
            r[f"load_e{e['id']}"] = f"{e['kept_patches'] / n_patches:.6f}"
    with scores_csv.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _write_examples(assets: Path, data: Path, default_ckpt: Path) -> None:
    from fairmoe.data.fairvlmed import read_npz
    from fairmoe.inference import Predictor
    from fairmoe.schema import ATTRIBUTES

    pred = Predictor(default_ckpt)
    ex_dir = assets / "examples"
    ex_dir.mkdir(parents=True)
    files = sorted((data / "Test").glob("*.npz"))
    chosen, labels = [], set()
    for f in files:  # one of each label first, then a third case
        rec = read_npz(f)
        if rec["label"] not in labels or len(chosen) == 2:
            chosen.append((f, rec))
            labels.add(rec["label"])
        if len(chosen) == 3:
            break
    entries = []
    for i, (f, rec) in enumerate(chosen, start=1):
        name = f"case{i}"
        Image.fromarray(rec["image"]).save(ex_dir / f"{name}.png")
        shutil.copy(f, ex_dir / f"{name}.npz")
        attrs = dict(zip(ATTRIBUTES, rec["attrs"], strict=True))
        race = ATTRIBUTES["race"].groups[attrs["race"]] if attrs["race"] >= 0 else "unknown"
        entries.append(
            {
                "id": name,
                "file": f"examples/{name}.png",
                "npz": f"examples/{name}.npz",
                "note": rec["note"],
                "attrs": attrs,
                "label": rec["label"],
                "score": pred.predict(f)["probability"],
                "title": f"Case {i}: {'glaucoma' if rec['label'] else 'no glaucoma'}, {race}",
            }
        )
    (ex_dir / "examples.json").write_text(json.dumps(entries, indent=1))


def build_assets(root: Path) -> Path:
    """Synthetic data -> tiny CLIP / Fair-MoE runs -> an assets folder in the shipped layout."""
    from fairmoe.data.synthetic import generate

    data = generate(root / "data", n=N_CASES, seed=0, workers=1)
    runs_dir = root / "runs"
    common = ["--data", str(data), "--config", "tiny", "--epochs", "1", "--batch-size", "32"]
    common += ["--lr", "1e-3", "--out", str(runs_dir), "--quiet", "--group-batches", "inbatch"]
    _train([*common, "--method", "fairmoe", "--attribute", "race"])
    _train([*common, "--method", "clip", "--seed", "0", "1"])
    _train([*common, "--method", "fairmoe", "--attribute", "race", "--fairness-scale", "10"])
    assets = root / "assets"
    (assets / "model").mkdir(parents=True)
    (assets / "scores").mkdir()
    runs = []
    for meta_path in sorted(runs_dir.glob("*.json")):
        if meta_path.name.endswith((".config.json", ".metrics.json")):
            continue
        meta = json.loads(meta_path.read_text())
        name = meta["name"]
        for fname in [meta_path.name, *meta["files"]]:
            shutil.copy(runs_dir / fname, assets / "model" / fname)
        scores = assets / "scores" / f"{name}.scores.csv"
        shutil.copy(runs_dir / meta["scores_file"], scores)
        if meta["method"] == "fairmoe":
            _add_loads(scores, assets / "model" / meta_path.name, data)
        test = meta["metrics"]["test"]
        runs.append(
            {
                "name": name,
                "method": meta["method"],
                "attribute": meta["attribute"],
                "seed": meta["seed"],
                "fairness_scale": meta["train_config"]["fairness_scale"],
                "config": meta["config"]["name"],
                "device": meta["device"],
                "scores": f"scores/{name}.scores.csv",
                "test": {"auc": test["auc"], "es_auc": test["attributes"]["race"]["es_auc"]},
            }
        )
    default = "model/fairmoe-race-tiny-s0.json"
    (assets / "runs.json").write_text(json.dumps({"default": default, "runs": runs}, indent=1))
    _write_examples(assets, data, assets / default)
    Image.new("RGB", (120, 80), (40, 120, 160)).save(assets / "tradeoff.png")
    (assets / "REPORT.md").write_text(
        "# Test report\n\nTiny models trained for the app tests.\n\n![trade-off](tradeoff.png)\n"
    )
    return assets


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """The cached test assets (built on first use); FAIRMOE_TEST_ASSETS overrides the folder."""
    if os.environ.get("FAIRMOE_TEST_ASSETS"):
        return Path(os.environ["FAIRMOE_TEST_ASSETS"])
    cache = Path(tempfile.gettempdir()) / f"fairmoe-app-assets-{_code_hash()}"
    for old in Path(tempfile.gettempdir()).glob("fairmoe-app-assets-*"):
        if old != cache and time.time() - old.stat().st_mtime > STALE_CACHE_S:
            shutil.rmtree(old, ignore_errors=True)  # built for an older version of the code
    done = cache / "assets" / "runs.json"
    if not done.is_file():
        shutil.rmtree(cache, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix="fairmoe-app-assets-build-"))
        try:
            build_assets(work)
            work.rename(cache)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return cache / "assets"


@pytest.fixture(scope="session")
def data_dir(assets_dir: Path) -> Path:
    """The synthetic FairVLMed folder the test assets were trained on."""
    return assets_dir.parent / "data"


@pytest.fixture(scope="session")
def runtime(assets_dir: Path):
    from app.runtime import load_runtime

    return load_runtime(assets_dir)


@pytest.fixture(scope="session")
def real_assets() -> Path:
    """The repo's shipped assets, for read-only checks; skipped until they exist."""
    assets = REPO / "assets"
    if not (assets / "runs.json").is_file():
        pytest.skip("the repo's assets/runs.json does not exist yet")
    return assets


@pytest.fixture(scope="session")
def server_url(runtime):
    """The app launched in this process on a free 127.0.0.1 port."""
    with launched(runtime) as url:
        yield url


@pytest.fixture(scope="session")
def client(server_url):
    from gradio_client import Client

    return Client(server_url, verbose=False, analytics_enabled=False)


@pytest.fixture()
def bad_files(tmp_path: Path) -> dict[str, Path]:
    """Files a user might upload by mistake, keyed by what is wrong with them."""
    out = {}
    out["text"] = tmp_path / "notes.png"
    out["text"].write_text("this is not an image")
    out["empty"] = tmp_path / "empty.png"
    out["empty"].write_bytes(b"")
    good = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8)).save(
        good, format="PNG"
    )
    out["truncated"] = tmp_path / "truncated.png"
    out["truncated"].write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    # A decompression bomb: a 1-bit PNG of 10,000 x 10,000 pixels is a few kB on disk.
    out["bomb"] = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(out["bomb"], format="PNG")
    out["tiny"] = tmp_path / "tiny.png"
    Image.new("L", (20, 20), 128).save(out["tiny"])
    return out


@pytest.fixture()
def odd_images(tmp_path: Path) -> dict[str, Path]:
    """Valid but unusual scans: 16-bit grayscale, RGBA, colour fundus photo, JPEG, TIFF."""
    rng = np.random.default_rng(1)
    base = (rng.random((200, 240)) * 255).astype(np.uint8)
    out = {}
    out["16bit"] = tmp_path / "scan16.png"
    Image.fromarray(base.astype(np.uint16) * 257).save(out["16bit"])
    rgba = np.dstack([base, base, base, np.full_like(base, 200)])
    out["rgba"] = tmp_path / "scan_rgba.png"
    Image.fromarray(rgba).save(out["rgba"])
    colour = np.dstack([base, (base * 0.5).astype(np.uint8), (base * 0.2).astype(np.uint8)])
    out["colour"] = tmp_path / "fundus.jpg"
    Image.fromarray(colour).save(out["colour"], quality=90)
    out["tiff"] = tmp_path / "scan.tif"
    Image.fromarray(base).save(out["tiff"])
    return out
