"""app.callbacks.cohort_tab: /cohort on zipped cohorts (both layouts, bad rows, unsafe zips)."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from app import callbacks
from app.callbacks import cohort_tab as cb
from app.theme import icon
from fairmoe.schema import ATTRIBUTES
from tests.app.checked import accepted_scans, camera_photo, checked_assets, cohort_zip
from tests.app.oracle import DEFAULT, message


def _zip(path: Path, files: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content.read_bytes() if isinstance(content, Path) else content)
    return path


def test_cohort_fairvlmed_layout_lists_bad_rows(runtime, data_dir, tmp_path):
    test_files = sorted((data_dir / "Test").glob("*.npz"))[:6]
    files: dict[str, bytes | Path] = {f"Test/{p.name}": p for p in test_files}
    files["data_summary.csv"] = data_dir / "data_summary.csv"
    files["Test/data_99999.npz"] = b"PK\x03\x04 not really a zip"
    upload = _zip(tmp_path / "cohort.zip", files)
    calls = []
    summary, csv_path, ss = cb.cohort(runtime, str(upload), lambda x, d: calls.append((x, d)))
    assert summary["layout"] == "fairvlmed"
    assert summary["n_scored"] == 6 and summary["n_bad"] == 1
    bad = summary["bad_rows"][0]
    assert bad["file"] == "Test/data_99999.npz" and "npz" in bad["reason"]
    assert str(tmp_path) not in bad["reason"] and "fairmoe-cohort-" not in bad["reason"]
    assert calls[0][0] == 0.0 and calls[-1] == (1.0, "done")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and rows[-1]["error"]
    scored = [r for r in rows if not r["error"]]
    assert {"score", "label", "race", "load_e0"} <= set(rows[0])
    names = [ATTRIBUTES["race"].groups[c] for c in ss.attrs["race"]]
    assert [r["race"] for r in scored] == names  # readable group names, not codes
    assert ss.n == 6
    y = np.array([int(r["label"]) for r in scored])
    s = np.array([float(r["score"]) for r in scored])
    if 0 < y.sum() < len(y):
        assert summary["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-5)
    direct = runtime.predictor.predict(test_files[0])
    assert float(scored[0]["score"]) == pytest.approx(direct["probability"], abs=1e-6)
    verdict = direct["assessable"]  # the assessability verdict is a column of its own
    want = "not checked" if not verdict["checked"] else ("yes" if verdict["assessable"] else "no")
    assert scored[0]["assessable"] == want
    assert {r["assessable"] for r in scored} <= {"yes", "no", "not checked"}
    assert summary["n_not_assessable"] == 0 and summary["warnings"] == []
    assert cb.assessability_note(summary) == ""
    view = cb.cohort_view(ss, "race", 0.5)
    assert len(view) == 7 and view[2].layout.height


def test_cohort_csv_layout(runtime, assets_dir, tmp_path):
    ex = assets_dir / "examples"
    manifest = (
        "file,label,race,gender,ethnicity,language,note\n"
        "img/a.png,1,black,female,non-hispanic,english,IOP 25\n"
        "img/b.png,no,White,Male,unknown,,normal disc\n"
        "img/missing.png,1,asian,male,hispanic,spanish,\n"
        "img/a.png,maybe,asian,male,hispanic,spanish,\n"
        "img/a.png,0,martian,male,hispanic,spanish,\n"
        "notes.txt,0,asian,male,hispanic,spanish,\n"
    )
    upload = _zip(
        tmp_path / "c.zip",
        {
            "cohort/manifest.csv": manifest,
            "cohort/img/a.png": ex / "case1.png",
            "cohort/img/b.png": ex / "case2.png",
            "cohort/notes.txt": b"hello",
        },
    )
    summary, csv_path, ss = cb.cohort(runtime, str(upload))
    assert summary["layout"] == "csv" and summary["n_scored"] == 2
    reasons = {b["row"]: b["reason"] for b in summary["bad_rows"]}
    assert "not in the zip" in reasons[3]
    assert "label" in reasons[4]
    assert "martian" in reasons[5]
    assert "unsupported file type" in reasons[6]
    assert ss.attrs["race"].tolist() == [1, 2] and ss.attrs["ethnicity"].tolist() == [0, -1]
    assert ss.y.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"readme.txt": b"hello"}, "neither a CSV manifest"),
        ({"../evil.txt": b"x"}, "outside the folder"),
        ({"/etc/evil.txt": b"x"}, "absolute path"),
    ],
)
def test_cohort_rejects_unusable_zips(runtime, tmp_path, files, words):
    upload = _zip(tmp_path / "bad.zip", files)
    with pytest.raises(gr.Error) as exc:
        cb.cohort(runtime, str(upload))
    assert words in message(exc)


def test_cohort_rejects_non_zip_empty_and_bombs(runtime, tmp_path, monkeypatch):
    not_zip = tmp_path / "x.zip"
    not_zip.write_text("plain text")
    with pytest.raises(gr.Error, match="not a readable zip"):
        cb.cohort(runtime, str(not_zip))
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    with pytest.raises(gr.Error, match="empty"):
        cb.cohort(runtime, str(empty))
    with pytest.raises(gr.Error, match="Upload a .zip"):
        cb.cohort(runtime, None)
    bomb = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (20 * 2**20)})  # ~1000x
    with pytest.raises(gr.Error, match="zip bomb"):
        cb.cohort(runtime, str(bomb))
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("scan.png")
        info.external_attr = 0o120777 << 16  # a symbolic link entry
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(gr.Error, match="symbolic link"):
        cb.cohort(runtime, str(link))
    import fairmoe.cohort as cohort_mod

    many = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(6)})
    monkeypatch.setattr(cohort_mod, "MAX_ENTRIES", 5)
    with pytest.raises(gr.Error, match="entries"):
        cb.cohort(runtime, str(many))
    monkeypatch.setattr(cohort_mod, "MAX_TOTAL_BYTES", 3)
    with pytest.raises(gr.Error, match="GB"):
        cb.cohort(runtime, str(_zip(tmp_path / "big.zip", {"a.txt": b"abcdef"})))


def test_cohort_cleans_up_its_temp_folder(runtime, data_dir, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    upload = _zip(tmp_path / "c.zip", {"a.npz": sorted((data_dir / "Test").glob("*.npz"))[0]})
    cb.cohort(runtime, str(upload))
    with pytest.raises(gr.Error):
        cb.cohort(runtime, str(_zip(tmp_path / "d.zip", {"x.txt": b"x"})))
    assert not list((tmp_path / "tmp").glob("fairmoe-cohort-*"))


def test_bad_rows_table():
    summary = {"bad_rows": [{"row": 3, "file": "a.png", "reason": "not in the zip"}]}
    assert cb.bad_rows_table(summary) == [[3, "a.png", "not in the zip"]]
    assert cb.bad_rows_table(None) == []


def test_cohort_panel_on_any_run_with_strategies_and_audit(runtime):
    from app.callbacks.fairness_tab import fairness_update

    ss = runtime.run(DEFAULT).scores
    view = cb.cohort_panel(runtime, DEFAULT, None, "race", "per group", 0.5, 0.4, 0.5, 0.6)
    assert view[:2] == fairness_update(ss, "race", "per group", 0.5, 0.4, 0.5, 0.6)[:2]
    chosen = callbacks.StrategyChoice("group", 4.0, (0.4, 0.5, 0.6))
    src = callbacks.require_source(runtime, DEFAULT, None, "cohort")
    assert src.label == f"test scores of {DEFAULT}"
    path = callbacks.panel_audit(runtime, src, "race", "per group", 0.5, [0.4, 0.5, 0.6], chosen)
    text = Path(path).read_text(encoding="utf-8")
    assert "strategy <b>group</b>" in text and 'data-code="needs_attribute"' in text
    with pytest.raises(gr.Error, match="Score a cohort first"):
        callbacks.require_source(runtime, callbacks.USER_SCORES, None, "cohort")
    assert callbacks.resolve_source(runtime, callbacks.USER_SCORES, None, "cohort") is None


@pytest.fixture(scope="module")
def checked_rt(assets_dir, data_dir):
    """The test assets' runtime with an assessability check fitted for its model."""
    from app.callbacks.serving import shutdown
    from app.runtime import load_runtime

    rt = load_runtime(checked_assets(assets_dir, data_dir), warm_up=False)
    yield rt
    shutdown(rt)


def test_refused_scans_stay_out_of_the_metrics_until_included(checked_rt, data_dir, tmp_path):
    scans = accepted_scans(checked_rt.predictor, data_dir, 6)
    photo = camera_photo()
    assert checked_rt.predictor.predict(photo)["assessable"]["assessable"] is False
    upload = cohort_zip(tmp_path / "c.zip", scans, photo)
    summary, csv_path, ss, result = cb.cohort_scored(checked_rt, str(upload))
    n = len(scans)
    assert summary["n_scored"] == n + 1 and summary["n_not_assessable"] == 1
    assert ss.n == summary["n_in_metrics"] == n and "operator.png" not in ss.ids
    assert result.all_scores.n == n + 1  # the CSV's rows
    assert cb.assessability_note(summary).startswith(
        icon("warn") + "1 scan that is not assessable by this model is left out of the metrics"
    )
    with open(csv_path, newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    assert rows["operator.png"]["decision"] == "not assessable"
    assert "Not assessable by this model" in rows["operator.png"]["warnings"]
    # the box ticked after scoring: the same scores, the refused one back in, nothing rescored
    summary2, ss2, result2 = cb.cohort_including(checked_rt, result, True)
    assert ss2.n == summary2["n_in_metrics"] == n + 1 and summary2["include_not_assessable"]
    assert "included in these metrics" in cb.assessability_note(summary2)
    assert ss2.scores[ss2.ids.index("operator.png")] == pytest.approx(
        float(rows["operator.png"]["score"]), abs=1e-6
    )
    summary3, ss3, _ = cb.cohort_including(checked_rt, result2, False)
    assert ss3.ids == ss.ids and np.array_equal(ss3.scores, ss.scores)
    assert summary3 == summary
    with_it = cb.cohort(checked_rt, str(upload), include_not_assessable=True)
    assert with_it[2].n == n + 1 and with_it[0]["auc"] == summary2["auc"]


def test_a_cohort_of_refused_scans_only_has_no_metrics(checked_rt, tmp_path):
    upload = cohort_zip(tmp_path / "c.zip", [], camera_photo())
    summary, csv_path, ss = cb.cohort(checked_rt, str(upload))
    assert ss is None and summary["auc"] is None and summary["attributes"] == {}
    assert summary["n_scored"] == summary["n_not_assessable"] == 1
    assert summary["n_in_metrics"] == 0 and summary["warnings"]
    assert Path(csv_path).is_file()
