"""Privacy: uploads and notes leave with the session, notes stay out of logs, the app binds
127.0.0.1 and nothing reaches beyond the loopback interface at import, start or use."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from app.privacy import SessionFiles, use_private_cache
from benchmarks.loadgen import OFFLINE_ENV, start_app
from tests.app.conftest import REPO, free_port

GUARD = REPO / "tests" / "netguard"
MARKER = "ZQXJ7731"  # in every note sent; must never appear in a log or in a file left behind


def _guard(tmp: Path, log: Path) -> dict[str, str | None]:
    """Environment changes that put the network guard into a child Python (None: unset)."""
    (tmp / "tmp").mkdir(exist_ok=True)
    return {
        "GRADIO_TEMP_DIR": None,  # python -m app makes its own private cache folder ...
        "TMPDIR": str(tmp / "tmp"),  # ... here, so the test can find it
        "PYTHONPATH": os.pathsep.join([str(GUARD), str(REPO)]),
        "FAIRMOE_NETGUARD_LOG": str(log),
        "GRADIO_HEARTBEAT_INTERVAL": "1",  # a closed client is noticed within a second or two
    }


def _guarded_env(tmp: Path, log: Path) -> dict[str, str]:
    merged = {**os.environ, **OFFLINE_ENV, **_guard(tmp, log)}
    return {k: v for k, v in merged.items() if v is not None}


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of LISTEN sockets on ``port`` (Linux /proc/net/tcp{,6})."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):  # no IPv6 in this kernel or container
            continue
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:
                    out.add(addr)
    return out


def _files_under(root: Path) -> list[Path]:
    """Files with content: Gradio's upload parser leaves empty temp files until exit.

    The server deletes a session's files while we look, so a folder or file can vanish between
    listing and reading it: os.walk skips vanished folders, and a vanished file does not count.
    """
    out = []
    for folder, _, names in os.walk(root):
        for name in names:
            p = Path(folder) / name
            try:
                if p.is_file() and p.stat().st_size > 0:
                    out.append(p)
            except FileNotFoundError:
                continue
    return out


def _cohort_zip(path: Path, scan_png: bytes) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "label", "race", "gender", "ethnicity", "language", "note"])
    for i in range(3):
        w.writerow([f"s{i}.png", i % 2, "white", "female", "non-hispanic", "english", MARKER])
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("cohort.csv", buf.getvalue())
        for i in range(3):
            z.writestr(f"s{i}.png", scan_png)
    return path


@pytest.mark.slow
def test_app_keeps_data_local_and_for_the_session_only(assets_dir, tmp_path):
    log = tmp_path / "network.log"
    port = free_port()
    # a scan no other test uploads: its cached copy is this session's alone
    pixels = (np.random.default_rng(7731).random((96, 96)) * 255).astype(np.uint8)
    scan = tmp_path / "private-scan.png"
    Image.fromarray(pixels).save(scan)
    cohort = _cohort_zip(tmp_path / "cohort.zip", scan.read_bytes())
    app = start_app(assets_dir, port=port, env=_guard(tmp_path, log))
    try:
        assert _listening_addresses(port) == {"0100007F"}, "must listen on 127.0.0.1 only"
        caches = list((tmp_path / "tmp").glob("fairmoe-studio-*"))
        assert len(caches) == 1, "python -m app makes one private cache folder"
        cache = caches[0]
        assert cache.stat().st_mode & 0o077 == 0, "the cache folder is readable by its user only"

        client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        note = f"IOP 24 mmHg, C/D 0.7, patient id {MARKER}"
        r = client.predict(handle_file(str(scan)), note, api_name="/predict")
        assert 0 <= r["probability"] <= 1
        client.predict(handle_file(str(scan)), note, api_name="/explain")
        client.predict(handle_file(str(cohort)), api_name="/cohort")
        runs = client.predict(api_name="/models")
        client.predict(runs[0]["name"], "race", 0.4, api_name="/fairness")
        for bad in (MARKER * 700, f"{MARKER}\x00\x01\x02 binary"):  # too long; binary
            with pytest.raises(AppError):
                client.predict(handle_file(str(scan)), bad, api_name="/predict")

        held = _files_under(cache)
        assert any(p.read_bytes() == scan.read_bytes() for p in held), "upload is in the cache"
        assert any(p.suffix == ".png" and "overlay" in p.name for p in held)
        client.close()  # the session ends: its uploads and outputs go
        deadline = time.monotonic() + 30
        while _files_under(cache) and time.monotonic() < deadline:
            time.sleep(0.25)
        left = _files_under(cache)
        assert not left, f"files kept after the session ended: {left}"
    finally:
        code = app.stop(keep_log=True)  # SIGTERM, as systemd or docker would
    output = app.log.read_text()
    assert code == 0, output
    assert MARKER not in output, f"a note reached the app's output ({app.log})"
    assert not cache.exists(), "the private cache folder is removed at exit"
    assert not log.exists(), f"something tried to reach the network:\n{log.read_text()}"
    app.log.unlink()  # kept above for a failure's post-mortem


def test_network_guard_catches_a_real_attempt(tmp_path):
    """The guard the test above relies on does fail an outbound connection."""
    log = tmp_path / "network.log"
    code = (
        "import urllib.request\n"
        "try:\n    urllib.request.urlopen('http://example.org/', timeout=5)\n"
        "except OSError as e:\n    print(e)\n"
        "import socket\n"
        "try:\n    socket.create_connection(('192.0.2.1', 80), timeout=5)\n"
        "except OSError as e:\n    print(e)\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=_guarded_env(tmp_path, log),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert "getaddrinfo 'example.org'" in text and "'192.0.2.1'" in text
    assert "127.0.0.1" not in text


def test_library_and_app_import_without_network(tmp_path):
    log = tmp_path / "network.log"
    code = (
        "import fairmoe.training, fairmoe.inference, fairmoe.explain, fairmoe.checkpoint\n"
        "import app.ui, app.callbacks, fairmoe.cohort, app.__main__\n"
        "import open_clip, captum.attr, fairlearn.metrics, geomloss, plotly.graph_objects\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=_guarded_env(tmp_path, log),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert not log.exists(), log.read_text()


def test_default_host_is_loopback():
    from app.__main__ import build_parser
    from app.config import server_config

    args = build_parser().parse_args([])
    assert server_config(host=args.host, port=args.port, environ={}).host == "127.0.0.1"


def test_session_files_are_reference_counted_and_confined(tmp_path):
    cache = tmp_path / "cache"
    out = cache / "out"
    out.mkdir(parents=True)
    shared = cache / "abc123" / "scan.png"  # an upload both sessions sent (same bytes, one file)
    shared.parent.mkdir()
    shared.write_bytes(b"x")
    own = out / "overlay-1.png"
    own.write_bytes(b"y")
    outside = tmp_path / "assets" / "case1.png"  # e.g. an example served from assets/
    outside.parent.mkdir()
    outside.write_bytes(b"z")
    files = SessionFiles([cache, out])
    files.track("a", shared, own, outside, None)
    files.track("b", shared)
    files.track(None, own)  # no session: nothing to remember
    assert files.files("a") == {shared.resolve(), own.resolve()}
    assert files.end("a") == 1  # own goes; shared is still b's
    assert shared.exists() and not own.exists() and outside.exists() and out.is_dir()
    assert files.end("b") == 1
    assert not shared.exists() and not shared.parent.exists()  # the hash folder went too
    assert files.end("b") == 0 and files.end(None) == 0


def test_private_cache_respects_an_explicit_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    assert use_private_cache() == tmp_path.resolve()
    monkeypatch.delenv("GRADIO_TEMP_DIR")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    made = use_private_cache()
    assert made.parent == tmp_path.resolve() and made.name.startswith("fairmoe-studio-")
    assert os.environ["GRADIO_TEMP_DIR"] == str(made)


def test_session_files_skip_public_examples_and_re_uploads(tmp_path):
    cache = tmp_path / "cache"
    example = tmp_path / "assets" / "case1.png"
    example.parent.mkdir()
    example.write_bytes(b"public example")
    copy = cache / "h1" / "case1.png"  # Gradio's cached copy of the example a user picked
    copy.parent.mkdir(parents=True)
    copy.write_bytes(example.read_bytes())
    upload = cache / "h2" / "scan.png"
    upload.parent.mkdir()
    upload.write_bytes(b"patient scan")
    files = SessionFiles([cache], public=[example])
    files.track("a", copy, upload)
    assert files.files("a") == {upload.resolve()}
    # another user uploads the same bytes before their request runs: Gradio replaces the file
    replacement = cache / "h2" / "incoming.tmp"
    replacement.write_bytes(b"patient scan")
    time.sleep(0.01)
    os.replace(replacement, upload)
    assert files.end("a") == 0 and upload.exists() and copy.exists()
