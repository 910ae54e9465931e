"""Small things a new user sees in Chromium at 1440 x 1000 (issue 22, item 7): no empty frames on
the first screens, slider labels that name the groups from the start, a legend clear of the panel
titles, dropdowns that close when tabbed away from, and figure summaries without plotly's editor
placeholders. The first test builds the sliders without a browser.
"""

from __future__ import annotations

import gradio as gr
import pytest

from app import callbacks as cb
from app.tabs.panel import build_threshold_sliders
from fairmoe.schema import attribute
from tests.app.test_browser import app_page

PROBABILITY = (
    "() => /Probability of glaucoma: \\d+%/.test("
    "document.querySelector('#case-result')?.innerText || '')"
)
# figures built outside app/plots/{fairness,panel,calibration,experts}.py that have no title yet
# (app/plots/case.py, app/plots/editor.py): their summaries start "Figure." and name no figure
NO_TITLE_YET = {"case-prob", "editor-compare"}
# a visible element's box, or null
BOX = "(e) => { const r = e.getBoundingClientRect(); return r.width && r.height ? r : null; }"


@pytest.mark.parametrize("attr", ["race", "gender", "race*gender"])
def test_group_sliders_start_named_after_the_groups(attr):
    """The per-group sliders read what an attribute change would set (cb.group_slider_updates),
    from the start: not "group 0" until the user changes the attribute."""
    with gr.Blocks():
        sliders = build_threshold_sliders("x", attr=attr)
    shown = [s for s in sliders.groups if s.visible]
    expected = [u for u in cb.group_slider_updates(attr) if u["visible"]]
    assert [s.label for s in shown] == [u["label"] for u in expected]
    assert [s.label for s in shown] == [f"Threshold: {g}" for g in attribute(attr).groups]


@pytest.fixture(scope="module")
def page(server_url):
    with app_page(server_url, width=1440) as pg:
        yield pg


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(600)


def _visible(page, selector: str) -> bool:
    return page.evaluate(
        f"(s) => {{ const e = document.querySelector(s); return !!e && !!({BOX})(e); }}", selector
    )


@pytest.mark.slow
@pytest.mark.browser
def test_first_screens_show_no_empty_frames_and_name_the_groups(page):
    """Before anything is analysed or exported: no empty Warnings box, no empty file boxes; the
    Cohort tab's per-group sliders already name the groups of its first attribute (race)."""
    page.wait_for_timeout(800)
    assert page.locator("#case-warnings").count() == 1
    assert not _visible(page, "#case-warnings")
    assert not page.get_by_text("Warnings", exact=True).is_visible()
    _tab(page, "Fairness")
    page.wait_for_selector("#fair-roc .js-plotly-plot", timeout=30_000)
    assert page.locator("#fair-audit").is_visible() and not _visible(page, "#fair-audit-file")
    _tab(page, "Cohort")
    assert not _visible(page, "#cohort-audit-file") and not _visible(page, "#cohort-csv")
    for j, group in enumerate(attribute("race").groups):
        assert f"Threshold: {group}" in page.locator(f"#cohort-g{j}").inner_text()
    # once there is something to show, it shows
    _tab(page, "Fairness")
    page.locator("#fair-audit").click()
    page.wait_for_function(
        f"() => {{ const e = document.querySelector('#fair-audit-file'); return !!e && !!({BOX})(e)"
        " && !e.querySelector(':scope > .empty'); }",
        timeout=60_000,
    )


@pytest.mark.slow
@pytest.mark.browser
def test_tab_closes_an_open_dropdown(page):
    """Tab (and Shift+Tab) away from an open dropdown closes its list and moves the focus on
    (to the next or previous control: a dropdown opens its own list when it gets the focus)."""
    _tab(page, "Fairness")
    box = page.locator("#fair-attr input[role=combobox]")
    options = (
        "() => { const box = document.querySelector('#fair-attr input');"
        " const list = document.getElementById(box.getAttribute('aria-controls'));"
        " return list ? list.querySelectorAll('[role=option]').length : 0; }"
    )
    for key in ("Tab", "Shift+Tab", "Tab"):
        box.focus()
        page.keyboard.press("ArrowDown")
        page.wait_for_function(f"() => ({options})() > 0", timeout=5_000)
        assert box.get_attribute("aria-expanded") == "true"
        page.keyboard.press(key)
        page.wait_for_timeout(400)  # Gradio reopens the list a tick after the blur
        assert box.get_attribute("aria-expanded") == "false", key
        assert page.evaluate(options) == 0, key
        assert page.evaluate("() => !document.activeElement.closest('#fair-attr')"), key


@pytest.mark.slow
@pytest.mark.browser
def test_comparison_legend_and_labels_do_not_collide(page):
    """In the drawn models-side-by-side figure the legend overlaps no panel title and no model
    name is rotated."""
    _tab(page, "Fairness")
    page.wait_for_selector("#fair-compare .js-plotly-plot .legend", timeout=30_000)
    boxes = page.evaluate(
        f"() => {{ const box = {BOX}; const gd = document.querySelector('#fair-compare');"
        " return {legend: box(gd.querySelector('.legend')),"
        " notes: [...gd.querySelectorAll('.annotation')].map(box).filter(Boolean),"
        " rotated: [...gd.querySelectorAll('.xtick text, .ytick text, .xtick2 text,"
        " .ytick2 text')].filter(t => /rotate\\((?!0[,)])/.test(t.getAttribute('transform')"
        " || '')).length}; }"
    )
    legend = boxes["legend"]
    assert legend and len(boxes["notes"]) == 2
    for n in boxes["notes"]:
        apart = (
            n["right"] <= legend["left"]
            or legend["right"] <= n["left"]
            or n["bottom"] <= legend["top"]
            or legend["bottom"] <= n["top"]
        )
        assert apart, (n, legend)
    assert boxes["rotated"] == 0


@pytest.mark.slow
@pytest.mark.browser
def test_figure_summaries_have_no_editor_placeholders(page):
    """Every figure's screen-reader summary, on every tab after an example is analysed, names
    the figure without plotly's "Click to enter ... title" placeholders."""
    _tab(page, "Case")
    page.locator("#example-1").click()
    page.wait_for_function(PROBABILITY, timeout=60_000)
    page.wait_for_selector("#case-prob .js-plotly-plot", timeout=30_000)
    summaries = {}
    for name, ready in (
        ("Case", "#case-prob .js-plotly-plot"),
        ("Experts", "#experts-attribution .js-plotly-plot"),
        ("Fairness", "#fair-compare .js-plotly-plot"),
    ):
        _tab(page, name)
        page.wait_for_selector(ready, timeout=60_000)
        page.wait_for_timeout(800)  # the summaries are written 250 ms after the last redraw
        summaries.update(
            page.evaluate(
                "() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]"
                ".filter(g => g.offsetParent !== null).map((g, i) => [g.closest('[id]')?.id"
                " || i, document.getElementById(g.getAttribute('aria-describedby'))"
                "?.textContent || '']))"
            )
        )
    assert len(summaries) >= 8, summaries
    for block, text in summaries.items():
        assert text.startswith("Figure") and "Click to enter" not in text, (block, text)
    untitled = {k for k, v in summaries.items() if not v.startswith("Figure: ")}
    assert untitled <= NO_TITLE_YET, {k: summaries[k][:80] for k in untitled - NO_TITLE_YET}
