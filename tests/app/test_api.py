"""The launched app through gradio_client: every public endpoint, bad inputs, and `python -m app`."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from app.config import EXPLAIN_PROCESSES_ENV, ConfigError, ServerConfig, server_config
from app.events import COHORT_QUEUE, EXPLAIN_QUEUE, PREDICT_CONCURRENCY, PREDICT_QUEUE
from app.ui import QUEUE_CONCURRENCY, QUEUE_MAX_SIZE
from benchmarks.loadgen import start_app
from fairmoe.data.fairvlmed import read_npz
from fairmoe.wording import NOT_ASSESSABLE
from tests.app.checked import accepted_scans, camera_photo, checked_assets, cohort_zip
from tests.app.conftest import PUBLIC_ENDPOINTS, REPO, free_port, launched

pytestmark = pytest.mark.slow
DEFAULT = "fairmoe-race-tiny-s0"


def test_api_lists_the_documented_endpoints(client):
    info = client.view_api(return_format="dict", print_info=False)
    named = info["named_endpoints"]
    endpoints = {f"/{name}" for name in PUBLIC_ENDPOINTS}
    assert endpoints <= set(named)
    params = {k: [p["parameter_name"] for p in v["parameters"]] for k, v in named.items()}
    assert params["/predict"] == ["image", "note"]
    assert params["/explain"] == ["image", "note"]
    assert params["/model_maps"] == ["image"]  # the per-user state is not an API parameter
    assert len(named["/model_maps"]["returns"]) == 1
    assert params["/fairness"] == ["model", "attribute", "threshold"]
    assert params["/cohort"] == ["upload", "include_not_assessable"]
    assert params["/audit"] == [
        "model",
        "attribute",
        "threshold",
        "strategy",
        "cost_ratio",
        "scores",
    ]
    assert len(named["/explain"]["returns"]) == 2  # JSON + overlay images
    assert len(named["/cohort"]["returns"]) == 2  # JSON + CSV
    assert not info["unnamed_endpoints"]
    # the internal UI events stay out of the documented API
    assert set(named) == endpoints


def test_api_doc_matches_the_app():
    doc = (REPO / "app" / "API.md").read_text()
    for name in ("/predict", "/explain", "/fairness", "/audit", "/cohort", "/models"):
        assert f'api_name="{name}"' in doc


def test_predict_and_explain(client, assets_dir, runtime):
    png = assets_dir / "examples" / "case2.png"
    r = client.predict(handle_file(str(png)), "IOP 25 mmHg", api_name="/predict")
    direct = runtime.predictor.predict(png, "IOP 25 mmHg")
    assert r["probability"] == pytest.approx(direct["probability"])
    assert r["decision"] in ("glaucoma", "no glaucoma") and r["threshold"] == 0.5
    assert [e["kept_patches"] for e in r["experts"]] == [
        e["kept_patches"] for e in direct["experts"]
    ]
    assert set(r["feature_gates"]) >= {"image", "text", "names"}
    r_kw = client.predict(
        image=handle_file(str(assets_dir / "examples" / "case2.npz")), note="", api_name="/predict"
    )
    assert r_kw["npz"]["label"] == 1
    note_left_out = client.predict(handle_file(str(png)), api_name="/predict")  # note optional
    assert note_left_out["probability"] == pytest.approx(
        runtime.predictor.predict(png)["probability"]
    )
    result, gallery = client.predict(handle_file(str(png)), "IOP 25", api_name="/explain")
    assert result["probability"] == pytest.approx(r["probability"])
    assert len(result["attributions"]["experts"]) == 10
    assert len(gallery) == 1 and Path(gallery[0]["image"]).is_file()  # one sheet of overlays
    assert gallery[0]["caption"].startswith("Attribution overlays, one colour scale (All experts")
    assert "whole_model" not in result["attributions"]  # /model_maps has those
    maps = client.predict(handle_file(str(png)), api_name="/model_maps")
    direct = runtime.predictor.model_maps(png)
    for key in ("whole_model", "occlusion"):
        assert np.array(maps[key]["map"]) == pytest.approx(np.array(direct[key]["map"]), abs=1e-5)


def test_fairness_and_models(client, runtime):
    runs = client.predict(api_name="/models")
    assert {r["name"] for r in runs} == set(runtime.runs)
    assert [r["name"] for r in runs if r["loaded"]] == [DEFAULT]
    out = client.predict(DEFAULT, "race", 0.6, api_name="/fairness")
    from app import callbacks as cb

    assert out == json.loads(json.dumps(cb.fairness(runtime, DEFAULT, "race", 0.6)))
    assert {"auc", "es_auc", "dpd", "deodds", "groups"} <= set(out)
    assert {"n", "auc", "tpr", "fpr"} <= set(out["groups"][0])
    default_args = client.predict(model=DEFAULT, api_name="/fairness")
    assert default_args["attribute"] == "race" and default_args["threshold"] == 0.5


def test_cohort_endpoint(client, data_dir, tmp_path):
    upload = tmp_path / "cohort.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        for p in sorted((data_dir / "Test").glob("*.npz"))[:5]:
            zf.write(p, f"Test/{p.name}")
        zf.writestr("Test/broken.npz", b"garbage")
    summary, csv_path = client.predict(handle_file(str(upload)), api_name="/cohort")
    assert summary["n_scored"] == 5 and summary["n_bad"] == 1
    # the test model has no assessability check: nothing is refused, everything is measured
    assert summary["n_not_assessable"] == 0 and summary["n_in_metrics"] == 5
    assert summary["bad_rows"][0]["file"] == "Test/broken.npz"
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6


@pytest.mark.parametrize(
    ("kind", "words"),
    [("text", "not an image"), ("empty", "empty"), ("truncated", "corrupt"), ("bomb", "too large")],
)
def test_bad_scans_through_the_client(client, bad_files, assets_dir, kind, words):
    with pytest.raises(AppError, match=words):
        client.predict(handle_file(str(bad_files[kind])), "", api_name="/predict")
    # the server keeps serving
    ok = client.predict(
        handle_file(str(assets_dir / "examples" / "case1.png")), "", api_name="/predict"
    )
    assert 0 <= ok["probability"] <= 1


def test_bad_notes_and_bad_cohorts_through_the_client(client, assets_dir, tmp_path):
    png = handle_file(str(assets_dir / "examples" / "case1.png"))
    with pytest.raises(AppError, match="characters"):
        client.predict(png, "a" * 20_000, api_name="/predict")
    with pytest.raises(AppError, match="binary"):
        client.predict(png, "\x00\x01\x02\x03 \x04\x05", api_name="/explain")
    with pytest.raises(AppError, match="Upload a scan first"):
        client.predict(None, "note", api_name="/predict")
    txt = tmp_path / "notes.txt"
    txt.write_text("not a scan")
    with pytest.raises(AppError, match="Invalid file type"):  # refused by gr.File's file_types
        client.predict(handle_file(str(txt)), "", api_name="/predict")
    layout = tmp_path / "layout.zip"
    with zipfile.ZipFile(layout, "w") as zf:
        zf.writestr("hello.txt", "not a cohort")
    with pytest.raises(AppError, match="neither"):
        client.predict(handle_file(str(layout)), api_name="/cohort")
    not_zip = tmp_path / "scan.zip"
    not_zip.write_bytes(b"\x89PNG not a zip")
    with pytest.raises(AppError, match="not a readable zip"):
        client.predict(handle_file(str(not_zip)), api_name="/cohort")
    with pytest.raises(AppError, match="unknown model"):
        client.predict("nope", "race", 0.5, api_name="/fairness")


def _model_slots(demo) -> dict[str, tuple[str, int]]:
    """api name -> (concurrency id, limit) of the public model events."""
    return {
        f.api_name: (f.concurrency_id, f.concurrency_limit)
        for f in demo.fns.values()
        if f.api_visibility == "public"
        and f.api_name in ("predict", "explain", "model_maps", "cohort")
    }


def test_queue_is_configured_deliberately(runtime):
    from app.callbacks.serving import shutdown
    from app.ui import build_demo

    assert runtime.config.explain_processes == 1
    demo = build_demo(runtime)
    # predictions never queue behind explanations or cohorts: one slot each
    assert _model_slots(demo) == {
        "predict": (PREDICT_QUEUE, PREDICT_CONCURRENCY),
        # one explanation per process plus one whose Gradio work overlaps theirs
        "explain": (EXPLAIN_QUEUE, 2),
        "model_maps": (EXPLAIN_QUEUE, 2),  # the explanation processes: the same slot
        "cohort": (COHORT_QUEUE, 1),
    }
    assert PREDICT_CONCURRENCY >= 8  # room for a batch to form
    # the examples' private chains use the same slots as the public endpoints
    private = {(f.concurrency_id, f.concurrency_limit) for f in demo.fns.values() if f.name in
               ("predict", "explain", "model_maps") and f.api_visibility == "private"}  # fmt: skip
    assert private == {(PREDICT_QUEUE, PREDICT_CONCURRENCY), (EXPLAIN_QUEUE, 2)}
    # every public event has an explicit name; the rest are private
    public = [f for f in demo.fns.values() if f.api_visibility == "public"]
    assert sorted(f.api_name for f in public) == PUBLIC_ENDPOINTS
    assert demo._queue.max_size == QUEUE_MAX_SIZE
    assert demo._queue.default_concurrency_limit == QUEUE_CONCURRENCY > 1
    sliders = [f for f in demo.fns.values() if f.name == "update"]  # fairness slider events
    assert sliders and all(
        f.trigger_mode == "always_last" and f.show_progress == "hidden" for f in sliders
    )
    # the explanation model in the server's process: its Captum hooks allow one at a time
    in_server = dataclasses.replace(runtime, config=ServerConfig(explain_processes=0))
    try:
        assert _model_slots(build_demo(in_server))["explain"] == (EXPLAIN_QUEUE, 1)
    finally:
        shutdown(in_server)


def test_server_config_flags_win_over_the_environment():
    env = {EXPLAIN_PROCESSES_ENV: "3"}
    assert server_config(environ=env).explain_processes == 3
    assert server_config(explain_processes=0, environ=env).explain_processes == 0
    assert server_config(environ={}) == ServerConfig()
    assert ServerConfig(explain_processes=2).explain_concurrency == 3
    with pytest.raises(ConfigError, match=f"{EXPLAIN_PROCESSES_ENV} must be a whole number"):
        server_config(environ={EXPLAIN_PROCESSES_ENV: "two"})
    with pytest.raises(ConfigError, match="--explain-processes must be a whole number"):
        server_config(explain_processes=-1, environ={})
    with pytest.raises(ConfigError, match="--threads must be at least 1, got 0"):
        server_config(threads=0, environ={})


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    return env


@pytest.mark.parametrize("bad", ["missing", "garbage", "tampered"])
def test_bad_checkpoint_exits_2_with_one_line(tmp_path, assets_dir, bad):
    if bad == "missing":
        ckpt = tmp_path / "nope.json"
    elif bad == "garbage":
        ckpt = tmp_path / "garbage.json"
        ckpt.write_text("{ not json")
    else:  # a copy whose weights no longer match the recorded sha256
        meta = json.loads((assets_dir / "model" / f"{DEFAULT}.json").read_text())
        for fname in meta["files"]:
            data = bytearray((assets_dir / "model" / fname).read_bytes())
            data[-1] ^= 0xFF
            (tmp_path / fname).write_bytes(bytes(data))
        ckpt = tmp_path / f"{DEFAULT}.json"
        ckpt.write_text(json.dumps(meta))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "--checkpoint",
            str(ckpt),
            "--assets",
            str(assets_dir),
            "--port",
            str(free_port()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot load checkpoint")
    assert "Traceback" not in proc.stderr


def test_python_m_app_serves(assets_dir):
    app = start_app(assets_dir, args=["--no-warm-up"], timeout=120)
    try:
        with urllib.request.urlopen(app.url + "config", timeout=10) as r:
            config = json.loads(r.read())
        assert config["title"] == "Fair-MoE Studio"
    finally:
        app.stop(timeout=30)


# An external script or stylesheet: the audit must open offline, so none may be referenced.
REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*(src|href)\s*=\s*[\"']?(https?:)?//", re.I)


def test_audit_endpoint_is_offline_and_has_the_table_and_warnings(client, runtime):
    path = client.predict(DEFAULT, "race", 1.0, "", 4.0, None, api_name="/audit")
    text = Path(path).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in text
    assert not REMOTE.search(text)
    assert 'id="group-table"' in text and 'data-code="degenerate"' in text  # nobody flagged
    for g in runtime.run(DEFAULT).scores.fairness("race", 1.0, ci="none").groups:
        assert f"<td>{g.name}</td><td>{g.n}</td>" in text
    strat = client.predict(DEFAULT, "race", 0.5, "group", 4.0, None, api_name="/audit")
    assert 'data-code="needs_attribute"' in Path(strat).read_text(encoding="utf-8")


def test_audit_of_your_own_scores_csv(client, tmp_path):
    mine = tmp_path / "other-model.csv"
    mine.write_text(
        "id,label,score,race,gender,ethnicity,language\n"
        + "".join(
            f"c{i},{i % 2},{(i % 10) / 10 + 0.05:.2f},{('Asian', 'Black', 'White')[i % 3]},"
            f"{'female' if i % 4 else 'male'},unknown,English\n"
            for i in range(40)
        )
    )
    path = client.predict("", "race", 0.5, "", 4.0, handle_file(str(mine)), api_name="/audit")
    text = Path(path).read_text(encoding="utf-8")
    assert "your scores CSV" in text and "<td>Black</td><td>13</td>" in text
    bad = tmp_path / "bad.csv"
    bad.write_text("id,label,score,race\n1,1,1.7,Asian\n")
    with pytest.raises(AppError, match="between 0 and 1"):
        client.predict("", "race", 0.5, "", 4.0, handle_file(str(bad)), api_name="/audit")
    with pytest.raises(AppError, match="cost ratio"):
        client.predict(DEFAULT, "race", 0.5, "group", 0.0, None, api_name="/audit")


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_fairness_warnings_through_the_client(client, threshold):
    out = client.predict(DEFAULT, "race", threshold, api_name="/fairness")
    codes = [w["code"] for w in out["warnings"]]
    assert "degenerate" in codes
    small = {w["group"] for w in out["warnings"] if w["code"] == "small_group"}
    assert small == {g["name"] for g in out["groups"] if 0 < g["n"] < 30}


def test_own_scores_leave_out_the_rows_marked_not_assessable(client, tmp_path):
    rows = [
        f"c{i},{i % 2},{(i % 10) / 10 + 0.05:.2f},{('Asian', 'Black', 'White')[i % 3]},"
        f"{'female' if i % 4 else 'male'},unknown,English,yes\n"
        for i in range(40)
    ]
    rows += [f"x{i},1,0.99,Black,female,unknown,English,no\n" for i in range(5)]
    mine = tmp_path / "cohort-scores.csv"
    mine.write_text("id,label,score,race,gender,ethnicity,language,assessable\n" + "".join(rows))
    path = client.predict("", "race", 0.5, "", 4.0, handle_file(str(mine)), api_name="/audit")
    text = Path(path).read_text(encoding="utf-8")
    assert "<td>Black</td><td>13</td>" in text  # the 5 refused Black rows are not counted


# -- a model with an assessability check: refusals through every endpoint --------------------


@pytest.fixture(scope="module")
def checked(assets_dir, data_dir):
    """(runtime, client) of the app serving the test model with a fitted assessability check."""
    from gradio_client import Client

    from app.callbacks.serving import shutdown
    from app.runtime import load_runtime

    rt = load_runtime(checked_assets(assets_dir, data_dir))
    try:
        with launched(rt) as url:
            yield rt, Client(url, verbose=False, analytics_enabled=False)
    finally:
        shutdown(rt)


def test_a_photo_that_is_not_a_scan_is_refused_by_predict_explain_and_model_maps(checked, tmp_path):
    rt, client = checked
    photo = tmp_path / "camera-operator.png"
    camera_photo(photo)
    direct = rt.predictor.predict(photo)
    assert direct["assessable"]["assessable"] is False  # the check refuses it
    r = client.predict(handle_file(str(photo)), "", api_name="/predict")
    assert r["decision"] is None and r["assessable"]["assessable"] is False
    assert r["assessable"]["reasons"] == direct["assessable"]["reasons"] != []
    assert r["probability"] == pytest.approx(direct["probability"])  # kept, marked unusable
    assert r["uncertainty"] == NOT_ASSESSABLE
    result, gallery = client.predict(handle_file(str(photo)), "IOP 25", api_name="/explain")
    assert result["decision"] is None and result["assessable"]["assessable"] is False
    assert result["assessable"]["reasons"] == direct["assessable"]["reasons"]
    assert result["attributions"] is None and result["note_attributions"] is None
    assert not gallery  # no overlay of a scan the model cannot read
    maps = client.predict(handle_file(str(photo)), api_name="/model_maps")
    assert maps["assessable"]["assessable"] is False and maps["assessable"]["reasons"]
    assert maps["whole_model"] is None and maps["occlusion"] is None


def test_an_assessable_scan_is_still_explained_with_its_decision(checked, data_dir):
    rt, client = checked
    (scan,) = accepted_scans(rt.predictor, data_dir, 1)
    r = client.predict(handle_file(str(scan)), "", api_name="/predict")
    assert r["assessable"]["checked"] and r["assessable"]["assessable"]
    assert r["decision"] == ("glaucoma" if r["probability"] >= 0.5 else "no glaucoma")
    result, gallery = client.predict(handle_file(str(scan)), "", api_name="/explain")
    assert result["attributions"]["experts"] and len(gallery) == 1
    maps = client.predict(handle_file(str(scan)), api_name="/model_maps")
    assert maps["assessable"]["assessable"] and maps["whole_model"]["map"]


def _auc(rows: list[dict[str, str]]) -> float:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score([int(r["label"]) for r in rows], [float(r["score"]) for r in rows])


def test_cohort_metrics_leave_out_the_scan_that_is_not_assessable(checked, data_dir, tmp_path):
    rt, client = checked
    accepted = accepted_scans(rt.predictor, data_dir, 10)
    labels = [read_npz(p)["label"] for p in accepted]
    assert 0 < sum(labels) < len(labels), "the AUC needs both classes"
    photo = camera_photo()
    assert rt.predictor.predict(photo)["assessable"]["assessable"] is False
    upload = cohort_zip(tmp_path / "cohort.zip", accepted, photo)
    summary, csv_path = client.predict(handle_file(str(upload)), api_name="/cohort")
    n = len(accepted)
    assert summary["n_scored"] == n + 1 and summary["n_bad"] == 0
    assert summary["n_not_assessable"] == 1 and summary["n_in_metrics"] == n
    assert summary["include_not_assessable"] is False
    (refused,) = summary["not_assessable_rows"]
    assert refused["file"] == "operator.png" and refused["reasons"]
    assert "left out of the metrics" in summary["warnings"][0]
    with open(csv_path, newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    assert len(rows) == n + 1  # the CSV lists every scan
    assert rows["operator.png"]["assessable"] == "no"
    assert rows["operator.png"]["decision"] == "not assessable"
    kept = [r for f, r in rows.items() if f != "operator.png"]
    assert {r["assessable"] for r in kept} == {"yes"}
    for r in kept:
        assert r["decision"] == ("glaucoma" if float(r["score"]) >= 0.5 else "no glaucoma")
    assert summary["auc"] == pytest.approx(_auc(kept), abs=1e-5)  # without the photo
    assert summary["attributes"]["race"]["groups"][1]["n"] == n  # Black: only the kept scans
    with_it, _ = client.predict(handle_file(str(upload)), True, api_name="/cohort")
    assert with_it["n_not_assessable"] == 1 and with_it["n_in_metrics"] == n + 1
    assert with_it["include_not_assessable"] is True
    assert "included in these metrics" in with_it["warnings"][0]
    assert with_it["auc"] == pytest.approx(_auc(list(rows.values())), abs=1e-5)
