"""python -m fairmoe.score on the shipped model: FairVLMed folders and CSV manifests, resuming by
id, and a 2-process gloo run under torch.distributed.run equal to the 1-process run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fairmoe.data.fairvlmed import read_npz
from fairmoe.inference import Predictor
from fairmoe.score import main
from fairmoe.scores import read_scores
from fairmoe.wording import assessable_cell, decision_cell

REPO = Path(__file__).resolve().parents[2]
N = 30  # synthetic cases: 21 training, 3 validation, 6 test


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    runs = REPO / "assets" / "runs.json"
    if not runs.is_file():
        pytest.skip("the repo's assets/runs.json does not exist")
    return REPO / "assets" / json.loads(runs.read_text())["default"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fairmoe.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("synthetic") / "data", n=N, seed=0, workers=1)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _args(data: Path, ckpt: Path, out: Path, *more: str) -> list[str]:
    return ["--data", str(data), "--checkpoint", str(ckpt), "--out", str(out), "--quiet", *more]


def test_scores_a_fairvlmed_folder_like_predict(data, checkpoint, tmp_path):
    out = tmp_path / "scores.csv"
    assert main(_args(data, checkpoint, out, "--batch-size", "8", "--workers", "1")) == 0
    rows = _rows(out)
    assert len(rows) == N and {r["split"] for r in rows} == {"training", "validation", "test"}
    assert not list(tmp_path.glob("*.partial-*"))  # the partial file goes once OUT is written
    ss = read_scores(out)
    assert ss.loads is not None and ss.gate_loads is not None and ss.cosines is not None
    pred = Predictor(checkpoint)
    for r in rows[:: N // 5]:
        path = next(data.glob(f"*/{r['id']}.npz"))
        res, rec = pred.predict(path), read_npz(path)
        assert float(r["score"]) == pytest.approx(res["probability"], abs=1e-6)
        assert int(r["label"]) == rec["label"]
        assert [int(r[a]) for a in ("race", "gender", "ethnicity", "language")] == list(
            rec["attrs"]
        )
        assert [float(r[f"load_e{e['id']}"]) for e in res["experts"]] == pytest.approx(
            [e["load"] for e in res["experts"]], abs=1e-4
        )
    test_only = tmp_path / "test.csv"
    assert main(_args(data, checkpoint, test_only, "--split", "test", "--workers", "0")) == 0
    assert {r["split"] for r in _rows(test_only)} == {"test"}


def test_csv_manifest_and_bad_rows(data, checkpoint, tmp_path):
    files = sorted((data / "Test").glob("*.npz"))[:2]
    shutil.copy(files[0], tmp_path / "a.npz")
    Image.fromarray(read_npz(files[1])["image"]).save(tmp_path / "b.png")
    (tmp_path / "broken.png").write_text("not an image")
    (tmp_path / "manifest.csv").write_text(
        "file,label,race,gender,ethnicity,language,note\n"
        "a.npz,1,black,female,non-hispanic,english,IOP 25\n"
        "b.png,0,asian,male,unknown,,\n"
        "broken.png,0,white,male,hispanic,spanish,\n"
        "missing.png,1,white,male,hispanic,spanish,\n"
    )
    out = tmp_path / "out.csv"
    assert main(_args(tmp_path / "manifest.csv", checkpoint, out, "--workers", "0")) == 0
    rows = {r["id"]: r for r in _rows(out)}
    assert rows["a.npz"]["label"] == "1" and rows["a.npz"]["race"] == "1"  # from the CSV
    assert rows["b.png"]["ethnicity"] == "-1"
    assert rows["broken.png"]["error"] and not rows["broken.png"]["score"]
    assert rows["missing.png"]["error"]
    assert read_scores(out).n == 2  # the reader skips rows without a score


def test_scans_that_are_not_assessable_get_no_decision(data, checkpoint, tmp_path, capsys):
    from fairmoe.audit import AuditError, read_user_scores
    from fairmoe.audit.scores_csv import load_user_scores

    pred = Predictor(checkpoint)
    assert pred.detector is not None, "the shipped model has its assessability check"
    for i, f in enumerate(sorted((data / "Test").glob("*.npz"))[:3]):
        shutil.copy(f, tmp_path / f"s{i}.npz")
    Image.fromarray(np.full((664, 512), 90, np.uint8)).save(tmp_path / "blank.png")
    photo = np.zeros((480, 640, 3), np.uint8)
    photo[..., 0], photo[..., 1], photo[60:300, 200:420] = 200, 140, (30, 90, 160)
    Image.fromarray(photo).save(tmp_path / "photo.png")  # a colour photo, not an SLO scan
    files = ["s0.npz", "s1.npz", "s2.npz", "blank.png", "photo.png"]
    (tmp_path / "manifest.csv").write_text(
        "file,label,race,gender,ethnicity,language\n"
        + "".join(f"{f},1,black,female,unknown,english\n" for f in files)
    )
    out = tmp_path / "out.csv"
    assert main(_args(tmp_path / "manifest.csv", checkpoint, out, "--workers", "1")) == 0
    rows = {r["id"]: r for r in _rows(out)}
    assert list(rows) == files
    for f, r in rows.items():  # the rule of every prediction: Predictor.predict is the oracle
        res = pred.predict(tmp_path / f)
        assert r["assessable"] == assessable_cell(res["assessable"])
        assert r["decision"] == decision_cell(res["decision"])
        assert float(r["score"]) == pytest.approx(res["probability"], abs=1e-6)
    for f in ("blank.png", "photo.png"):
        assert rows[f]["assessable"] == "no" and rows[f]["decision"] == "not assessable"
    assert "colour" in pred.predict(tmp_path / "photo.png")["assessable"]["failed_checks"]
    refused = sum(r["assessable"] == "no" for r in rows.values())
    assert f"5 scored ({refused} not assessable" in capsys.readouterr().out
    # an audit of these scores leaves the refused scans out, and says how many
    every = load_user_scores(out, include_not_assessable=True)
    assert every.n_not_assessable == refused and every.scores.n == 5
    assert "included" in every.message
    kept = [f for f, r in rows.items() if r["assessable"] != "no"]
    if not kept:  # the shipped check may refuse the synthetic scans too
        with pytest.raises(AuditError, match="every row with a score is marked not assessable"):
            read_user_scores(out)
        return
    with pytest.warns(UserWarning, match=f"{refused} rows marked not assessable"):
        assert read_user_scores(out).ids == kept


def test_an_interrupted_run_continues_where_it_stopped(data, checkpoint, tmp_path):
    full = tmp_path / "full.csv"
    assert main(_args(data, checkpoint, full, "--split", "test", "--workers", "0")) == 0
    out = tmp_path / "resumed.csv"
    assert main(_args(data, checkpoint, out, "--split", "test", "--workers", "0")) == 0
    rows = _rows(out)
    # What a run killed after its first batch leaves: the header, a finished row (its score
    # changed, to see that it is kept, not recomputed) and a line torn mid-write.
    partial = tmp_path / "resumed.csv.partial-0.csv"
    from fairmoe.scoring import partial_header

    n_exp = Predictor(checkpoint).n_experts
    header = partial_header(n_exp)
    with partial.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        first = rows[0]
        attrs = [first[a] for a in ("race", "gender", "ethnicity", "language")]
        w.writerow([first["id"], "test", first["label"], "0.123456", "-0.5", "-0.6", *attrs]
                   + ["0.1"] * (2 * n_exp) + ["", "yes", "no glaucoma"])  # fmt: skip
        f.write(rows[1]["id"] + ",test,1,0.9")  # torn: no newline, too few columns
    out.unlink()
    assert main(_args(data, checkpoint, out, "--split", "test", "--workers", "0")) == 0
    again = {r["id"]: r for r in _rows(out)}
    assert again[rows[0]["id"]]["score"] == "0.123456"  # kept from the partial file
    assert again[rows[0]["id"]]["decision"] == "no glaucoma"
    assert again[rows[1]["id"]]["score"] == rows[1]["score"]  # the torn row was scored again
    assert [r["id"] for r in _rows(out)] == [r["id"] for r in _rows(full)]
    assert not partial.exists()


@pytest.mark.slow
def test_two_gloo_processes_equal_one(data, checkpoint, tmp_path):
    one = tmp_path / "one.csv"
    assert main(_args(data, checkpoint, one, "--batch-size", "8", "--workers", "0")) == 0
    two = tmp_path / "two.csv"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [
        "-m",
        "fairmoe.score",
        *_args(data, checkpoint, two, "--batch-size", "8", "--workers", "0"),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = _rows(one), _rows(two)
    assert [r["id"] for r in a] == [r["id"] for r in b]  # same cases, same order
    for ra, rb in zip(a, b, strict=True):
        # the CSV keeps 6 decimals: one unit in the last place is the most rounding can differ
        assert abs(float(ra["score"]) - float(rb["score"])) <= 1e-6 + 1e-12
        assert {k: v for k, v in ra.items() if not k.startswith(("score", "cos", "gate"))} == {
            k: v for k, v in rb.items() if not k.startswith(("score", "cos", "gate"))
        }
    assert not list(tmp_path.glob("*.partial-*"))
