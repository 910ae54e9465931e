"""Headless Chromium: every screen tells the truth.

A failed analysis after a good one clears the result on every tab and says why once, in one
message area (no toast, no "Error" badge on the form); every result names its scan; the next
good action clears the message; an editor slider follows a typed value and the arrow keys.
"""

from __future__ import annotations

import pytest

from fairmoe.schema import ATTRIBUTE_NAMES
from tests.app.test_browser import _tab, page  # noqa: F401  (the module-scoped browser fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

FORM = ["#case-note", *(f"#case-{a}" for a in ATTRIBUTE_NAMES)]
TOASTS = "[data-testid='toast-body']"


def _text(page, selector: str) -> str:  # noqa: F811
    return page.locator(selector).inner_text()


def _wait_text(page, selector: str, needle: str, timeout: int = 90_000) -> None:  # noqa: F811
    page.wait_for_function(
        "([s, n]) => (document.querySelector(s)?.innerText || '').includes(n)",
        arg=[selector, needle],
        timeout=timeout,
    )


def _analyse_example(page, i: int = 0) -> None:  # noqa: F811
    _tab(page, "Case")
    page.locator(f"#example-{i}").click()
    page.wait_for_function(
        "() => /Probability of glaucoma: \\d+%/.test("
        "document.querySelector('#case-result')?.innerText || '')",
        timeout=60_000,
    )


def _assert_no_error_on_the_form(page) -> None:  # noqa: F811
    for sel in FORM:
        assert "Error" not in _text(page, sel), f"{sel} shows an error badge"
    assert page.locator(TOASTS).count() == 0, _text(page, TOASTS)


def test_a_failed_analysis_clears_every_tab_and_says_why_once(page, tmp_path):  # noqa: F811
    _analyse_example(page, 0)
    assert "Scan: case1.png" in _text(page, "#case-result")
    _tab(page, "Experts")  # the maps name their scan
    _wait_text(page, "#experts-summary", "Where the model as a whole looks")
    assert _text(page, "#experts-summary").startswith("Scan: case1.png")
    page.wait_for_selector("#experts-routing .js-plotly-plot", timeout=30_000)

    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is a text file, not a scan\n" * 20)
    _tab(page, "Case")
    page.locator("#case-scan button[aria-label='Clear']").click()  # the example's file goes
    page.locator("#case-scan input[type=file]").set_input_files(str(bad))
    _wait_text(page, "#case-message", "not an image")
    page.wait_for_timeout(500)
    _assert_no_error_on_the_form(page)

    page.locator("#case-analyse").click()
    _wait_text(page, "#case-result", "Not analysed")
    page.wait_for_timeout(1500)  # the rest of the chain has run
    result = _text(page, "#case-result")
    assert "Scan: notes.png" in result and "case1.png" not in result
    assert "Probability of glaucoma" not in result
    message = _text(page, "#case-message")
    assert message.count("notes.png") == 1 and "not an image" in message, message
    for sel in ("#case-meaning", "#case-warnings", "#case-context"):
        assert _text(page, sel).strip() == "", f"{sel} still shows the previous case"
    assert page.locator("#case-prob .bars path").count() == 0  # no probability bar
    _assert_no_error_on_the_form(page)

    _tab(page, "Experts")
    summary = _text(page, "#experts-summary")
    assert "case1.png" not in summary and "image experts" not in summary, summary
    assert "No scan explained" in summary
    for sel in ("#experts-whole", "#experts-attribution", "#experts-routing"):  # blank figures
        page.wait_for_selector(f"{sel} .js-plotly-plot", timeout=30_000)
        assert "No scan explained" in page.locator(sel).text_content(), sel
    assert "Analyse a scan" in _text(page, "#editor-result")

    # the next good action clears the message
    _analyse_example(page, 1)
    page.wait_for_function(
        "() => !(document.querySelector('#case-message')?.innerText || '').trim()",
        timeout=30_000,
    )
    assert "Scan: case2.png" in _text(page, "#case-result")
    assert page.locator(TOASTS).count() == 0


def test_an_editor_slider_follows_a_typed_value_and_the_keyboard(page):  # noqa: F811
    _analyse_example(page, 0)
    _tab(page, "Experts")
    _wait_text(page, "#experts-summary", "Scan: case1.png")
    _wait_text(page, "#editor-result", "Unedited")
    assert "Scan: case1.png" in _text(page, "#editor-result")
    number = page.locator("#editor-contrast input[type=number]")
    number.scroll_into_view_if_needed()
    number.fill("0.5")  # typed, not released: no blur, no pointer
    _wait_text(page, "#editor-result", "contrast x0.50")
    slider = page.locator("#editor-blur input[type=range]")
    slider.focus()
    slider.press("ArrowRight")  # one step of 0.5 px
    _wait_text(page, "#editor-result", "blur 0.5 px")
    assert "contrast x0.50" in _text(page, "#editor-result")
    page.locator("#editor-reset").click()
    _wait_text(page, "#editor-result", "Unedited")
