"""GET /healthz, and a server that opens its port only when it is ready for every request."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

from tests.app.conftest import REPO, free_port


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_healthz_says_ready_with_what_the_server_holds(server_url, runtime) -> None:
    status, doc = _get(server_url.rstrip("/") + "/healthz")
    assert status == 200 and doc["ready"] is True
    assert doc["model"] == runtime.model_name and doc["runs"] == len(runtime.runs)
    procs = doc["explain_processes"]
    assert procs["ready"] == procs["total"] == runtime.config.explain_processes


def test_the_port_opens_only_when_the_explanation_processes_are_loaded(assets_dir) -> None:
    """``python -m app`` on the test assets with two explanation processes: the first moment a
    connection is accepted, /healthz already says ready, with both processes loaded."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, "-m", "app", "--assets", str(assets_dir), "--port", str(port),
           "--explain-processes", "2", "--no-warm-up"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError("the app did not open its port within 120 s")
        status, doc = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and doc["ready"] is True
        assert doc["explain_processes"] == {"ready": 2, "total": 2}
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_explanation_processes_start_before_torch_is_imported() -> None:
    """app.startup (what python -m app runs first) must stay light: with torch, gradio or the
    model among its imports the children would start seconds later, and so would the port."""
    heavy = "{'torch', 'gradio', 'open_clip'}"
    code = f"import sys, app.startup; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)  # fmt: skip
    assert out.stdout.strip() == "[]"
