"""The app's callbacks called as plain functions on the test assets (no server).

Numbers are checked against independent oracles: sklearn's roc_auc_score, fairlearn's disparity
functions and fairmoe.metrics.evaluate on the scores file read here with the csv module.
"""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from PIL import Image
from sklearn.metrics import roc_auc_score

from app import callbacks as cb
from app import card, plots, views
from app.overlay import overlay_rgb
from fairmoe.scores import ScoreSet
from fairmoe.metrics import choose_thresholds, evaluate
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES

DEFAULT = "fairmoe-race-tiny-s0"


def read_scores(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], list[dict]]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    y = np.array([int(r["label"]) for r in rows])
    s = np.array([float(r["score"]) for r in rows])
    attrs = {a: np.array([int(r[a]) for r in rows]) for a in ATTRIBUTE_NAMES}
    return y, s, attrs, rows


@pytest.fixture(scope="module")
def oracle(assets_dir: Path):
    return read_scores(assets_dir / "scores" / f"{DEFAULT}.scores.csv")


def _message(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value.message if hasattr(excinfo.value, "message") else excinfo.value)


# ----------------------------------------------------------------------------- case


def test_runtime_loads_every_run(runtime, assets_dir):
    manifest = json.loads((assets_dir / "runs.json").read_text())
    assert set(runtime.runs) == {r["name"] for r in manifest["runs"]}
    assert runtime.default_run == DEFAULT
    assert runtime.skipped == []
    assert len(runtime.examples) == 3


def test_predict_contract(runtime, assets_dir):
    r = cb.predict(runtime, str(assets_dir / "examples" / "case1.png"), "IOP 24 mmHg, C/D 0.8")
    assert 0 <= r["probability"] <= 1
    assert r["decision"] == ("glaucoma" if r["probability"] >= r["threshold"] else "no glaucoma")
    assert r["threshold"] == 0.5
    assert len(r["experts"]) == runtime.predictor.n_experts == 10
    for e in r["experts"]:
        assert {"id", "kept_patches", "gate_mean"} <= set(e)
    assert len(r["feature_gates"]["image"]) == 3  # race: one feature expert per group
    assert isinstance(r["warnings"], list)
    assert r["model"] == DEFAULT
    json.dumps(cb.numpy_free(r), allow_nan=False)


def test_npz_upload_fills_note_and_attributes(runtime, assets_dir):
    preview, note, *attrs, info = cb.inspect_upload(
        runtime, str(assets_dir / "examples" / "case2.npz")
    )
    example = json.loads((assets_dir / "examples" / "examples.json").read_text())[1]
    assert note == example["note"]
    assert attrs == [example["attrs"][a] for a in ATTRIBUTE_NAMES]
    assert "glaucoma" in info
    assert preview.shape == (cb.PREVIEW_PX, cb.PREVIEW_PX)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("text", "not an image"),
        ("empty", "empty"),
        ("truncated", "corrupt or truncated"),
        ("bomb", "too large"),
        ("tiny", "at least"),
    ],
)
def test_bad_scans_give_clear_errors(runtime, bad_files, kind, words):
    with pytest.raises(gr.Error) as exc:
        cb.predict(runtime, str(bad_files[kind]), "")
    assert words in _message(exc)
    assert bad_files[kind].name in _message(exc) or kind == "tiny"


def test_missing_scan_and_bad_notes(runtime, assets_dir):
    with pytest.raises(gr.Error, match="Upload a scan first"):
        cb.predict(runtime, None, "note")
    with pytest.raises(gr.Error, match="no longer on the server.*upload it again"):
        cb.explain(runtime, str(assets_dir / "gone" / "scan.png"), "note")
    png = str(assets_dir / "examples" / "case1.png")
    with pytest.raises(gr.Error, match="characters"):
        cb.predict(runtime, png, "x" * 6000)
    with pytest.raises(gr.Error, match="binary"):
        cb.predict(runtime, png, "\x00\x01\x02 binary \x03\x04")
    assert any("No clinical note" in w for w in cb.predict(runtime, png, "   ")["warnings"])


@pytest.mark.parametrize("kind", ["16bit", "rgba", "colour", "tiff"])
def test_unusual_but_valid_images(runtime, odd_images, kind):
    r = cb.predict(runtime, str(odd_images[kind]), None)
    assert 0 <= r["probability"] <= 1
    if kind == "rgba":
        assert any("transparency" in w for w in r["warnings"])
    if kind == "colour":
        assert any("colour fundus" in w for w in r["warnings"])


def test_case_view_and_subgroup_context(runtime, assets_dir, oracle):
    y, s, attrs, _ = oracle
    r = cb.predict(runtime, str(assets_dir / "examples" / "case2.png"), "")
    head, fig, meaning, warnings_md, context = cb.case_view(runtime, r, 1, -1, -1, -1)
    assert f"{r['probability']:.0%}" in head and r["decision"] in head
    assert fig.layout.height
    assert "operating point" in meaning
    black = attrs["race"] == 1
    assert f"race: Black (few cases: unreliable) | {int(black.sum())} |" in context
    tpr = ((s >= 0.5) & (y == 1) & black).sum() / ((y == 1) & black).sum()
    assert f"{tpr:.3f}" in context
    assert "never" in cb.context_view(runtime, -1, -1, -1, -1)


def test_explain_overlays_and_experts_view(runtime, assets_dir):
    result, gallery, state = cb.explain(
        runtime, str(assets_dir / "examples" / "case1.png"), "IOP 21"
    )
    att = result["attributions"]
    assert len(gallery) == runtime.predictor.n_experts + 1
    for path, _caption in gallery:
        assert Image.open(path).size == (448, 448)
    choices = cb.expert_choices(runtime)
    overlays, routing, gates, highlights, summary = cb.experts_view(state, choices[:3])
    heat = [t for t in overlays.data if t.type == "heatmap"]
    assert len(heat) == 3  # one per shown map
    assert all(t.coloraxis == "coloraxis" for t in heat)  # ONE shared colour scale
    assert (
        overlays.layout.coloraxis.cmax
        == -overlays.layout.coloraxis.cmin
        == pytest.approx(att["scale"])
    )
    assert len([t for t in routing.data if t.type == "heatmap"]) == 11  # 10 experts + dropped
    assert gates.layout.height and routing.layout.height and overlays.layout.height
    assert [tok for tok, _ in highlights] == [tok for tok, _ in result["note_attributions"]]
    assert all(-1 <= v <= 1 for _, v in highlights)
    assert "10 image experts" in summary
    shown, *first = cb.experts_first_view(state)
    assert shown[0] == "All experts (sum)" and len(shown) == 4
    assert len([t for t in first[0].data if t.type == "heatmap"]) == 4


def test_experts_view_for_plain_clip(runtime, assets_dir):
    from fairmoe.inference import Predictor

    clip = Predictor(assets_dir / "model" / "clip-race-tiny-s0.json")
    res = clip.explain(str(assets_dir / "examples" / "case1.png"), "note")
    state = {"result": res, "pixels": clip.scan_pixels(str(assets_dir / "examples" / "case1.png"))}
    overlays, routing, gates, _, summary = cb.experts_view(state, [])
    assert "no experts" in summary
    assert "no experts" in routing.layout.annotations[0].text
    assert len([t for t in overlays.data if t.type == "heatmap"]) == 1


def test_overlay_uses_the_given_scale():
    pixels = np.full((64, 64), 128, np.uint8)
    grid = np.zeros((4, 4))
    grid[0, 0], grid[3, 3] = 2.0, -1.0
    rgb = overlay_rgb(pixels, grid, scale=2.0)
    assert rgb.shape == (448, 448, 3)
    assert rgb[5, 5, 0] > rgb[5, 5, 2]  # strongest positive: red
    assert rgb[-5, -5, 2] > rgb[-5, -5, 0]  # negative: blue
    assert tuple(rgb[200, 5]) == (128, 128, 128)  # zero: the scan untouched
    weaker = overlay_rgb(pixels, grid, scale=4.0)
    assert weaker[5, 5, 0] < rgb[5, 5, 0]  # same value, larger shared scale: fainter


# ----------------------------------------------------------------------------- fairness


@pytest.mark.parametrize("attr", ["race", "gender"])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_fairness_matches_oracles(runtime, oracle, attr, threshold):
    y, s, attrs, _ = oracle
    out = cb.fairness(runtime, DEFAULT, attr, threshold)
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    known = attrs[attr] >= 0
    pred = (s >= threshold).astype(int)
    assert out["dpd"] == pytest.approx(
        demographic_parity_difference(y[known], pred[known], sensitive_features=attrs[attr][known])
    )
    assert out["deodds"] == pytest.approx(
        equalized_odds_difference(y[known], pred[known], sensitive_features=attrs[attr][known])
    )
    rep = evaluate(y, s, attrs, threshold=threshold)["attributes"][attr]
    assert out["es_auc"] == pytest.approx(rep["es_auc"])
    for g, ref in zip(out["groups"], rep["groups"], strict=True):
        assert (g["name"], g["n"], g["tpr"], g["fpr"]) == (
            ref["name"],
            ref["n"],
            ref["tpr"],
            ref["fpr"],
        )
        m = attrs[attr] == ref["code"]
        assert g["n"] == int(m.sum())
        if g["auc"] is not None:
            assert g["auc"] == pytest.approx(roc_auc_score(y[m], s[m]))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("nope", "race", 0.5), "unknown model"),
        ((DEFAULT, "age", 0.5), "unknown attribute"),
        ((DEFAULT, "race", 1.5), "between 0 and 1"),
        ((DEFAULT, "race", "abc"), "must be a number"),
    ],
)
def test_fairness_bad_arguments(runtime, args, words):
    with pytest.raises(gr.Error) as exc:
        cb.fairness(runtime, *args)
    assert words in _message(exc)


def test_fairness_update_per_group_thresholds(runtime, oracle):
    y, s, attrs, _ = oracle
    ss = runtime.run(DEFAULT).scores
    t = [0.45, 0.55, 0.6]
    summary, groups_md, roc, confusion, rates = cb.fairness_update(ss, "race", "per group", 0.5, *t)
    ref = evaluate(y, s, attrs, threshold={"race": t})["attributes"]["race"]
    view = views.fairness_view(ss, "race", {"race": t})
    assert view.metrics["dpd"] == pytest.approx(ref["dpd"])
    assert f"{ref['dpd']:.3f}" in summary
    for g in ref["groups"]:
        assert f"| {g['name']} | {g['n']} |" in groups_md
    points = [tr for tr in roc.data if tr.mode == "markers"]
    present = [g for g in ref["groups"] if g["n"]]
    assert [(p.x[0], p.y[0]) for p in points] == [(g["fpr"], g["tpr"]) for g in present]
    assert all(f.layout.height for f in (roc, confusion, rates))


def test_confidence_intervals_on_demand(runtime):
    ss = ScoreSet.from_csv(runtime.assets / "scores" / f"{DEFAULT}.scores.csv")
    before = cb.fairness_update(ss, "race", "single", 0.42)[0]
    assert "computed on demand" in before
    after = cb.fairness_update(ss, "race", "single", 0.42, compute_ci=True)[0]
    assert "computed on demand" not in after
    assert after.count("[") >= 4  # AUC, ES-AUC, DPD, DEOdds intervals
    assert ss.cached_threshold_ci("race", 0.42) is not None
    assert ss.cached_threshold_ci("race", 0.43) is None  # a slider move does not bootstrap


@pytest.mark.parametrize("strategy", ["single", "group", "demographic_parity", "equal_opportunity"])
def test_strategy_buttons_call_choose_thresholds(runtime, oracle, strategy):
    y, s, attrs, _ = oracle
    ss = runtime.run(DEFAULT).scores
    mode, single, *groups, message = cb.fairness_strategy(ss, "race", strategy, 4)
    ref = choose_thresholds(y, s, attrs["race"], strategy=strategy, cost_ratio=4, n_groups=3)
    assert groups[:3] == pytest.approx(ref.tolist())
    assert mode == ("single" if strategy == "single" else "per group")
    assert single == pytest.approx(ref[0])
    assert "cost ratio 4" in message
    with pytest.raises(gr.Error, match="positive"):
        cb.fairness_strategy(ss, "race", strategy, -1)


def test_comparison_mean_and_std_over_seeds(runtime, assets_dir):
    rows, table = views.comparison(list(runtime.runs.values()), "race")
    clip = next(r for r in rows if r["family"] == "CLIP [tiny]")
    aucs = []
    for seed in (0, 1):
        y, s, _, _ = read_scores(assets_dir / "scores" / f"clip-race-tiny-s{seed}.scores.csv")
        aucs.append(roc_auc_score(y, s))
    assert clip["seeds"] == 2
    assert clip["AUC"]["mean"] == pytest.approx(np.mean(aucs))
    assert clip["AUC"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    assert f"{np.mean(aucs):.3f} ± {np.std(aucs, ddof=1):.3f}" in table
    assert not any("x10" in r["family"] for r in rows)  # the sweep is shown separately
    gender_rows, _ = views.comparison(list(runtime.runs.values()), "gender")
    # nothing was trained for gender: only CLIP, which ignores the attribute, stands in
    assert [r["family"] for r in gender_rows] == ["CLIP [tiny]"]


def test_tradeoff_and_expert_load(runtime, oracle):
    points = views.tradeoff_points(list(runtime.runs.values()), "race", "DPD")
    assert sorted(p["scale"] for p in points) == [1.0, 10.0]
    default = next(p for p in points if p["scale"] == 1.0)
    assert default["x"] == pytest.approx(cb.fairness(runtime, DEFAULT, "race", 0.5)["dpd"])
    assert default["y"] == pytest.approx(cb.fairness(runtime, DEFAULT, "race", 0.5)["auc"])
    _, _, attrs, rows = oracle
    fig = views.load_view(runtime.run(DEFAULT).scores, "race")
    loads = np.array([[float(r[f"load_e{e}"]) for e in range(10)] for r in rows])
    white = attrs["race"] == 2
    bars = {t.name: t for t in fig.data}
    x = [i for i, label in enumerate(bars["expert 0"].x) if label.startswith("White")][0]
    assert [bars[f"expert {e}"].y[x] for e in range(10)] == pytest.approx(loads[white].mean(axis=0))
    clip_fig = views.load_view(runtime.run("clip-race-tiny-s0").scores, "race")
    assert "no load_e" in clip_fig.layout.annotations[0].text


def test_fairness_select_updates_sliders(runtime):
    out = cb.fairness_select(runtime, DEFAULT, "gender", "DEOdds")
    sliders = out[: cb.MAX_GROUPS]
    assert [u.get("visible") for u in sliders] == [True, True, False]
    assert sliders[0]["label"].endswith("Female")
    assert all(f.layout.height for f in out[cb.MAX_GROUPS :] if hasattr(f, "layout"))


def test_every_figure_has_an_explicit_height():
    figs = [
        plots.empty_figure("x"),
        plots.probability_bar(0.7, 0.5),
        plots.feature_gates([0.2, 0.8], None, ["a", "b"]),
        plots.roc_curves([], None),
        plots.confusion_matrices([]),
        plots.group_rates([]),
        plots.model_comparison([], ["AUC"], "race"),
        plots.tradeoff([], "DPD", "race"),
        plots.expert_load({}, {}),
        plots.attribution_overlays(np.zeros((32, 32), np.uint8), {}, 1.0),
    ]
    for n in range(1, 12):  # every small-multiple layout the expert views can take
        maps = {f"Expert {i}": np.ones((4, 4)) for i in range(n)}
        figs.append(plots.attribution_overlays(np.zeros((32, 32), np.uint8), maps, 1.0))
        experts = [
            {"id": i, "kept_patches": 1, "gate_mean": 0.1, "kept": np.eye(4), "weights": np.eye(4)}
            for i in range(n)
        ]
        figs.append(plots.routing_maps(experts, np.zeros((4, 4)), 4))
        groups = [
            {"name": f"g{i}", "n": 4, "threshold": 0.5, "tn": 1, "fp": 1, "fn": 1, "tp": 1}
            for i in range(min(n, 6))
        ]
        figs.append(plots.confusion_matrices(groups))
    assert all(isinstance(f.layout.height, int) and f.layout.height > 0 for f in figs)


# ----------------------------------------------------------------------------- cohort


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
    assert ss.n == 6
    y = np.array([int(r["label"]) for r in scored])
    s = np.array([float(r["score"]) for r in scored])
    if 0 < y.sum() < len(y):
        assert summary["auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-5)
    direct = runtime.predictor.predict(test_files[0])["probability"]
    assert float(scored[0]["score"]) == pytest.approx(direct, abs=1e-6)
    view = cb.cohort_view(ss, "race", 0.5)
    assert len(view) == 6 and view[2].layout.height


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
    assert words in _message(exc)


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


# ----------------------------------------------------------------------------- header and card


def test_header_and_model_card(runtime):
    header = card.header_markdown(runtime)
    assert "Research tool, not for clinical use" in header and "trained on a CPU" in header
    text = card.model_card(runtime)
    meta = runtime.meta
    assert f"{meta.temperature:.4g}" in text
    assert f"{meta.n_parameters:,}" in text
    assert "This model was trained on a CPU" in text
    assert "| Attribute | ES-AUC | ES-ACC | DPD | DEOdds | Unknown |" in text
    report = card.report_markdown(runtime)
    assert f"(/gradio_api/file={(runtime.assets / 'tradeoff.png').resolve()})" in report


def test_examples_load_with_attributes(runtime):
    file, note, *attrs = cb.load_example(runtime, 1)
    ex = runtime.examples[1]
    assert Path(file) == ex.file and note == ex.note
    assert attrs == [ex.attrs[a] for a in ATTRIBUTE_NAMES]
    assert all(
        -1 <= v < ATTRIBUTES[a].n_groups for a, v in zip(ATTRIBUTE_NAMES, attrs, strict=True)
    )
