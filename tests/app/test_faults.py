"""Faults at start and hostile uploads: broken checkpoints, changed assets, unsafe cohort zips.

A bad start must end in one clear line and exit code 2 (never a traceback, never unpickling), so a
supervisor can tell "fix the configuration" from a crash; see README, Reliability.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import struct
import time
import zipfile
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from app import callbacks as cb
from app.__main__ import main, startup_warnings
from app.runtime import StartupError, load_runtime
from tests.app.conftest import REPO

DEFAULT = "fairmoe-race-tiny-s0"


def _start(argv: list[str], tmp_path: Path, monkeypatch) -> tuple[int, list[str]]:
    """``python -m app ARGV`` in this process up to the point it would serve; (code, stderr)."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([*argv, "--threads", "1", "--no-warm-up", "--port", "1"])
    return code, [ln for ln in err.getvalue().splitlines() if ln.strip()]


def _copy_checkpoint(assets: Path, dest: Path, name: str = DEFAULT) -> tuple[Path, dict]:
    meta_path = assets / "model" / f"{name}.json"
    meta = json.loads(meta_path.read_text())
    dest.mkdir(parents=True, exist_ok=True)
    for f in [meta_path.name, *meta["files"]]:
        shutil.copy(assets / "model" / f, dest / f)
    return dest / meta_path.name, meta


def _boom(marker: Path) -> bytes:
    """A pickle that creates ``marker`` if anything ever unpickles it."""

    class Boom:
        def __reduce__(self):
            return (Path.write_text, (marker, "unpickled"))

    return pickle.dumps({"state_dict": Boom()})


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("truncated", "sha256"),
        ("truncated-rehashed", "not a safetensors file"),
        ("wrong-config", "do not match the config"),
        ("unknown-config-field", "unknown fields"),
        ("pickle-as-json", "not valid JSON"),
        ("pickle-as-weights", "not a safetensors file"),
        ("pickle-pt", "no checkpoint metadata"),
        ("directory", "no checkpoint metadata"),
    ],
)
def test_broken_checkpoint_is_one_clear_line_and_exit_2(
    assets_dir, tmp_path, monkeypatch, fault, words
):
    marker = tmp_path / "unpickled"
    ckpt, meta = _copy_checkpoint(assets_dir, tmp_path / "ckpt")
    weights = ckpt.parent / next(iter(meta["files"]))
    if fault.startswith("truncated"):
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        if fault == "truncated-rehashed":  # consistent metadata: the parser must catch it
            meta["files"][weights.name] = hashlib.sha256(weights.read_bytes()).hexdigest()
            ckpt.write_text(json.dumps(meta))
    elif fault == "wrong-config":
        meta["config"]["vision"]["width"] *= 2
        ckpt.write_text(json.dumps(meta))
    elif fault == "unknown-config-field":
        meta["config"]["vision"]["colour_depth"] = 16
        ckpt.write_text(json.dumps(meta))
    elif fault == "pickle-as-json":
        ckpt.write_bytes(_boom(marker))
    elif fault == "pickle-as-weights":
        weights.write_bytes(_boom(marker))
        meta["files"][weights.name] = hashlib.sha256(weights.read_bytes()).hexdigest()
        ckpt.write_text(json.dumps(meta))
    elif fault == "pickle-pt":
        ckpt = tmp_path / "model.pt"
        ckpt.write_bytes(_boom(marker))
    elif fault == "directory":
        ckpt = tmp_path / "ckpt-dir"
        ckpt.mkdir()
    code, lines = _start(
        ["--checkpoint", str(ckpt), "--assets", str(assets_dir)], tmp_path, monkeypatch
    )
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: cannot load checkpoint"), lines
    assert words in lines[0]
    assert not marker.exists(), "a pickle was unpickled"


def test_bad_assets_folder_and_threads_exit_2(tmp_path, monkeypatch):
    code, lines = _start(["--assets", str(tmp_path / "nowhere")], tmp_path, monkeypatch)
    assert code == 2 and "no model to load" in lines[0] and len(lines) == 1
    monkeypatch.setenv("FAIRMOE_EXPLAIN_PROCESSES", "-1")
    code, lines = _start(["--assets", str(tmp_path / "nowhere")], tmp_path, monkeypatch)
    assert code == 2 and lines == [
        "error: FAIRMOE_EXPLAIN_PROCESSES must be a whole number >= 0, got '-1'"
    ]
    # the flag wins over the variable, and is checked the same way
    code, lines = _start(["--explain-processes", "0", "--assets", str(tmp_path / "nowhere")],
                         tmp_path, monkeypatch)  # fmt: skip
    assert code == 2 and "no model to load" in lines[0]
    monkeypatch.delenv("FAIRMOE_EXPLAIN_PROCESSES")
    code, lines = _start(["--explain-processes", "-1"], tmp_path, monkeypatch)
    assert code == 2 and lines == ["error: --explain-processes must be a whole number >= 0, got -1"]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "runs.json").write_text("[1, 2]")
    code, lines = _start(["--assets", str(tmp_path / "a")], tmp_path, monkeypatch)
    assert code == 2 and "expected a JSON object" in lines[0]


# ----------------------------------------------------------------------------- assets manifest


@pytest.fixture()
def shipped_copy(real_assets, tmp_path) -> Path:
    """A private copy of the repo's assets (with MANIFEST.json) to damage."""
    dest = tmp_path / "assets"
    shutil.copytree(real_assets, dest)
    return dest


def _runs(assets: Path) -> dict:
    return json.loads((assets / "runs.json").read_text())


def test_shipped_assets_verify_clean(shipped_copy):
    rt = load_runtime(shipped_copy, warm_up=False)
    assert rt.manifest.ok and not rt.skipped
    files = json.loads((shipped_copy / "MANIFEST.json").read_text())["files"]
    assert rt.manifest.verified == set(files)
    from app.card import model_card

    assert f"{len(files)} files matched `MANIFEST.json`" in model_card(rt)


def test_changed_model_stops_the_start_even_with_consistent_metadata(shipped_copy):
    ckpt = shipped_copy / _runs(shipped_copy)["default"]
    meta = json.loads(ckpt.read_text())
    weights = ckpt.parent / next(iter(meta["files"]))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(StartupError, match=r"MANIFEST.json: model/.*safetensors differs from"):
        load_runtime(shipped_copy, warm_up=False)
    meta["files"][weights.name] = hashlib.sha256(data).hexdigest()  # the checkpoint agrees
    ckpt.write_text(json.dumps(meta))
    with pytest.raises(StartupError, match=r"MANIFEST.json: model/.*json has .* bytes"):
        load_runtime(shipped_copy, warm_up=False)


def test_changed_run_list_stops_the_start(shipped_copy):
    runs = _runs(shipped_copy)
    runs["runs"] = runs["runs"][:1]
    (shipped_copy / "runs.json").write_text(json.dumps(runs))
    with pytest.raises(StartupError, match="runs.json has .* bytes, the manifest"):
        load_runtime(shipped_copy, warm_up=False)


def test_changed_scores_and_examples_are_left_out(shipped_copy, tmp_path, monkeypatch):
    runs = _runs(shipped_copy)["runs"]
    victim = runs[1]
    scores = shipped_copy / victim["scores"]
    data = bytearray(scores.read_bytes())
    at = data.index(b"0.") + 2  # one digit of one score, same size
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    scores.write_bytes(bytes(data))
    examples = json.loads((shipped_copy / "examples" / "examples.json").read_text())
    (shipped_copy / examples[0]["file"]).unlink()
    (shipped_copy / "REPORT.md").write_text("# a report nobody wrote\n")
    rt = load_runtime(shipped_copy, warm_up=False)
    assert victim["name"] not in rt.runs and len(rt.runs) == len(runs) - 1
    assert examples[0]["id"] not in [e.id for e in rt.examples]
    assert rt.report_md is None
    text = "\n".join(rt.skipped)
    assert victim["name"] in text and "differs from the manifest" in text
    assert "case01.png missing" in text and "the report" in text
    from app.card import model_card

    assert "Mismatches:" in model_card(rt) and "### Left out at start-up" in model_card(rt)
    # python -m app starts anyway and says, one line each, what it could not trust
    lines = startup_warnings(rt)
    assert sum(ln.startswith("warning: MANIFEST.json") for ln in lines) == 3, lines
    assert sum(ln.startswith("warning: left out") for ln in lines) == 3, lines


def test_unreadable_manifest_stops_the_start(shipped_copy):
    (shipped_copy / "MANIFEST.json").write_text('{"files": {"x": {"size": "big"}}}')
    with pytest.raises(StartupError, match="cannot read the manifest"):
        load_runtime(shipped_copy, warm_up=False)


def test_manifest_entries_cannot_point_outside(shipped_copy):
    m = json.loads((shipped_copy / "MANIFEST.json").read_text())
    m["files"]["../secret.txt"] = {"size": 1, "sha256": "0" * 64}
    (shipped_copy / "MANIFEST.json").write_text(json.dumps(m))
    rt = load_runtime(shipped_copy, warm_up=False)
    assert "not a path inside" in rt.manifest.problems["../secret.txt"]


# ----------------------------------------------------------------------------- hostile cohorts


def _snapshot(*roots: Path) -> set[Path]:
    return {p for r in roots for p in r.rglob("*")}


def _lying_zip(path: Path) -> Path:
    """A member whose headers claim 100 bytes but which inflates to 50 MB (ratio check passes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("cohort/a.npz", b"\0" * (50 * 2**20))
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed-size fields
        at = data.find(sig)
        struct.pack_into("<I", data, at + offset, 100)
    path.write_bytes(bytes(data))
    return path


def _hostile_zips(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    out: dict[str, tuple[Path, str]] = {}

    def make(name: str, members: dict[str, bytes], words: str) -> None:
        p = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(p, "w") as z:
            for k, v in members.items():
                z.writestr(k, v)
        out[name] = (p, words)

    make("dotdot", {"ok.txt": b"x", "../../escaped.txt": b"x"}, "outside the folder")
    make("backslash", {"..\\..\\escaped.txt": b"x"}, "outside the folder")
    make("absolute", {"/tmp/escaped.txt": b"x"}, "absolute path")
    make("drive", {"C:/escaped.txt": b"x"}, "")
    link = tmp_path / "symlink.zip"
    with zipfile.ZipFile(link, "w") as z:
        info = zipfile.ZipInfo("cohort/scan.png")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    out["symlink"] = (link, "symbolic link")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.npz", b"\0" * (64 * 2**20))
    out["bomb"] = (bomb, "zip bomb")
    out["lying"] = (_lying_zip(tmp_path / "lying.zip"), "")
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(100_000):
            z.writestr(f"f{i}.png", b"")
    out["100k-entries"] = (many, "100,000 entries")
    return out


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return _hostile_zips(tmp_path_factory.mktemp("hostile"))


@pytest.mark.slow
def test_hostile_cohorts_are_refused_and_write_nothing_outside_temp(
    runtime, hostile, tmp_path, monkeypatch
):
    import tempfile

    temp = tmp_path / "tmp"
    work = tmp_path / "cwd"
    temp.mkdir()
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(work)
    watched = [tmp_path, Path(hostile["dotdot"][0]).parent]
    before = _snapshot(*watched)
    for name, (upload, words) in hostile.items():
        with pytest.raises(gr.Error) as exc:
            cb.cohort(runtime, str(upload))
        message = str(exc.value.message if hasattr(exc.value, "message") else exc.value)
        assert words in message, (name, message)
        new = _snapshot(*watched) - before
        assert not new, f"{name}: files left behind: {sorted(new)[:5]}"
    assert not Path("/tmp/escaped.txt").exists() and not (work / "escaped.txt").exists()


@pytest.mark.slow
def test_hostile_cohort_through_the_server(client, hostile):
    upload, _ = hostile["100k-entries"]
    with pytest.raises(AppError, match="100,000 entries"):
        client.predict(handle_file(str(upload)), api_name="/cohort")
    upload, _ = hostile["dotdot"]
    with pytest.raises(AppError, match="outside the folder"):
        client.predict(handle_file(str(upload)), api_name="/cohort")
    assert client.predict(api_name="/models"), "the server keeps serving"


def test_a_dead_explanation_process_is_one_clear_error(client, runtime, assets_dir):
    from app.callbacks.serving import serving

    explainer = serving(runtime).explainer
    scan = handle_file(str(assets_dir / "examples" / "case1.png"))
    assert client.predict(scan, "first", api_name="/explain")[0]["attributions"]["experts"]
    restarts = explainer.restarts
    for pid in explainer.pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    with pytest.raises(AppError, match="explanation process .* restarting: try again"):
        client.predict(scan, "second", api_name="/explain")
    assert explainer.restarts == restarts + 1
    assert client.predict(scan, "third", api_name="/predict")["probability"] >= 0
    again = client.predict(scan, "third", api_name="/explain")[0]  # the new process answers
    assert again["attributions"]["experts"]


def test_repo_root_has_no_escaped_files():
    assert not (REPO / "escaped.txt").exists() and not os.path.exists("/escaped.txt")


def test_assets_without_manifest_start_with_a_warning(runtime):
    assert not runtime.manifest.present
    assert any("has no MANIFEST.json; files not verified" in w for w in startup_warnings(runtime))
