"""app.callbacks.case_tab: /predict, uploads, examples and the case view, on the test assets."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from app.callbacks import case_tab as cb
from app.callbacks import experts_tab as cb_experts
from app.callbacks.common import CaseState, numpy_free
from app.callbacks.editor import DEFAULTS, editor_view
from app.callbacks.experts_tab import experts_view, explain
from app.text import not_assessable_markdown, scan_line
from app.theme import icon
from fairmoe.schema import ATTRIBUTE_NAMES, ATTRIBUTES
from tests.app.oracle import DEFAULT, message


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
    json.dumps(numpy_free(r), allow_nan=False)


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
    assert words in message(exc)
    assert bad_files[kind].name in message(exc) or kind == "tiny"


def test_missing_scan_and_bad_notes(runtime, assets_dir):
    with pytest.raises(gr.Error, match="Upload a scan first"):
        cb.predict(runtime, None, "note")
    with pytest.raises(gr.Error, match="no longer on the server.*upload it again"):
        explain(runtime, str(assets_dir / "gone" / "scan.png"), "note")
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
    assert f"race: Black (too small: unreliable) | {int(black.sum())} |" in context
    tpr = ((s >= 0.5) & (y == 1) & black).sum() / ((y == 1) & black).sum()
    assert f"{tpr:.3f}" in context
    assert "never" in cb.context_view(runtime, -1, -1, -1, -1)


def test_examples_load_with_attributes(runtime):
    file, note, *attrs = cb.load_example(runtime, 1)
    ex = runtime.examples[1]
    assert Path(file) == ex.file and note == ex.note
    assert attrs == [ex.attrs[a] for a in ATTRIBUTE_NAMES]
    assert all(
        -1 <= v < ATTRIBUTES[a].n_groups for a, v in zip(ATTRIBUTE_NAMES, attrs, strict=True)
    )


def test_a_scan_that_is_not_assessable_shows_no_confident_probability(runtime, assets_dir):
    r = cb.predict(runtime, str(assets_dir / "examples" / "case1.png"), "")
    # the test assets ship no <run>.ood.json: the answer says the check did not run
    assert r["assessable"]["checked"] is False and r["assessable"]["assessable"] is True
    head, fig, *_ = cb.case_view(runtime, r, -1, -1, -1, -1)
    assert "Probability of glaucoma" in head and len(fig.data) > 0
    reason = "The image is blank (a uniform grey frame): there is nothing to assess."
    r["assessable"] = {**r["assessable"], "assessable": False, "checked": True}
    r["assessable"].update(reasons=[reason], failed_checks=["blank"])
    r["warnings"].insert(0, f"Not assessable by this model: {reason}")
    head, fig, meaning, warnings_md, _ = cb.case_view(runtime, r, -1, -1, -1, -1)
    assert (
        head.startswith(f"### {icon('refuse')} Not assessable by this model\n") and reason in head
    )
    p = f"{r['probability']:.0%}"
    assert f"~~Probability (unreliable: not assessable): {p}~~" in head  # struck through
    assert "Probability of glaucoma" not in head and "Decision:" not in head
    assert "Do not use this result" in head
    assert len(fig.data) == 0 and "not assessable" in fig.layout.annotations[0].text
    assert warnings_md.startswith(
        f"- {icon('warn')} Not assessable by this model: The image is blank"
    )


NONE = (cb.NOT_GIVEN,) * len(ATTRIBUTE_NAMES)


def test_a_failed_analysis_clears_the_result_and_says_why_once(runtime, bad_files, assets_dir):
    """The browser's Analyse never raises: the error goes to the message area, every part of the
    result is cleared, and the headline names the scan that failed."""
    png = assets_dir / "examples" / "case1.png"
    result, head, fig, meaning, warnings_md, context, msg = cb.analyse(runtime, str(png), "", *NONE)
    assert result["probability"] == pytest.approx(cb.predict(runtime, str(png))["probability"])
    assert head.startswith("### Probability of glaucoma") and scan_line("case1.png") in head
    assert len(fig.data) > 0 and meaning and warnings_md and context and msg == ""
    bad = bad_files["text"]
    result, head, fig, meaning, warnings_md, context, msg = cb.analyse(runtime, str(bad), "", *NONE)
    assert result is None
    assert head.startswith("### Not analysed") and scan_line(bad.name) in head
    assert len(fig.data) == 0 and (meaning, warnings_md, context) == ("", "", "")
    assert msg.startswith(icon("warn")) and "not an image" in msg and bad.name in msg
    assert msg.count("not an image") == 1
    # a note the model refuses is a user error too
    *_, msg = cb.analyse(runtime, str(png), "x" * 6000, *NONE)
    assert "characters" in msg


def test_a_bad_upload_leaves_the_form_alone(runtime, bad_files, assets_dir):
    """No error on the note and attribute fields: they are left unchanged, the message says why."""
    note, *attrs, info, msg = cb.upload_view(runtime, str(bad_files["text"]))
    assert [note, *attrs] == [gr.update()] * (1 + len(ATTRIBUTE_NAMES))
    assert info == "" and "not an image" in msg
    note, *attrs, info, msg = cb.upload_view(runtime, str(assets_dir / "examples" / "case2.npz"))
    assert note == runtime.examples[1].note and "filled in" in info and msg == ""


def test_analysing_clears_the_previous_result():
    head, fig, meaning, warnings_md, msg = cb.analysing_view("/tmp/gradio/abc/my_scan.png")
    assert head.startswith("### Analysing") and scan_line("my_scan.png") in head
    assert len(fig.data) == 0 and (meaning, warnings_md, msg) == ("", "", "")


def test_every_tab_names_the_scan_and_refuses_an_unassessable_one(runtime, assets_dir):
    """Experts tab and scan editor: "Scan: <file>" above the maps, the Case tab's refusal banner
    for a scan the model cannot assess, and no confident "probability of glaucoma"."""
    _, _, state = explain(runtime, str(assets_dir / "examples" / "case1.png"))
    named = CaseState({**state, "scan": "case1.png"})
    summary = experts_view(named, [])[-1]
    assert summary.startswith(scan_line("case1.png")) and "image experts" in summary
    assert "Not assessable" not in summary
    assert (
        "Unedited scan: probability of glaucoma" in editor_view(runtime, named, None, *DEFAULTS)[1]
    )
    reason = "The image is blank (a uniform grey frame): there is nothing to assess."
    refused = {"assessable": False, "checked": True, "reasons": [reason], "summary": reason}
    result = {**state["result"], "assessable": refused, "decision": None}
    st = CaseState({**named, "result": result})
    banner = not_assessable_markdown(result["probability"], refused)
    summary = experts_view(st, [])[-1]
    assert summary.startswith(scan_line("case1.png") + "\n\n" + banner)
    _, text, _ = editor_view(runtime, st, None, *DEFAULTS)
    assert banner in text and "Unedited scan: not assessable by this model" in text
    assert "probability of glaucoma" not in text.lower().replace("~~", "")
    mask = [[1] + [0] * (result["grid"] - 1)] + [[0] * result["grid"]] * (result["grid"] - 1)
    _, text, _ = editor_view(runtime, st, mask, *DEFAULTS)
    row = next(line for line in text.splitlines() if line.startswith("| Probability"))
    assert f"~~{result['probability']:.0%}~~ (not assessable)" in row
    assert "| Decision | none (not assessable) |" in text and "None" not in text


def test_a_refused_scan_without_maps_shows_its_refusal_on_the_experts_tab(runtime, assets_dir):
    """The library's refusal: no attributions at all. No map is drawn, the banner says why."""
    _, _, state = explain(runtime, str(assets_dir / "examples" / "case1.png"))
    reason = "The image is blank (a uniform grey frame): there is nothing to assess."
    refused = {"assessable": False, "checked": True, "reasons": [reason], "summary": reason}
    result = {**state["result"], "assessable": refused, "decision": None}
    result.update(attributions=None, note_attributions=None)
    st = CaseState({**state, "result": result, "scan": "blank.png"})
    *figs, note, summary = experts_view(st, [])
    banner = not_assessable_markdown(result["probability"], refused)
    assert summary.startswith(scan_line("blank.png") + "\n\n" + banner) and note == []
    assert all(len(f.data) == 0 for f in figs)
    assert cb_experts.default_shown(st) == []
    image, text, fig = editor_view(runtime, st, None, *DEFAULTS)
    assert banner in text and "Unedited scan: not assessable" in text and len(fig.data) == 0
    _, text, fig = editor_view(runtime, st, None, 1.5, 1.0, 0.0)
    assert "brightness x1.50" in text and "~~" in text.split("| Probability")[1]
    assert "original scan is not assessable" in fig.layout.annotations[0].text
