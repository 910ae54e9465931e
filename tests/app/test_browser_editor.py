"""Headless Chromium: the Experts tab after an example, and the scan editor (mask two patches by
clicking the grid, change brightness, see the edited probability beside the original).

Screenshots go to $FAIRMOE_SCREENSHOTS (or a temp folder) as 2b-experts.png and 2c-editor.png.
"""

from __future__ import annotations

import re

import pytest

from tests.app.test_browser import _tab, page, shots_dir  # noqa: F401  (module-scoped fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PROB_ROW = re.compile(r"Probability of glaucoma\s+(\d+)%\s+(\d+)%")


def _wait_text(page, selector: str, needle: str, timeout: int = 90_000) -> None:  # noqa: F811
    page.wait_for_function(
        "([s, n]) => (document.querySelector(s)?.innerText || '').includes(n)",
        arg=[selector, needle],
        timeout=timeout,
    )


def test_experts_tab_and_scan_editor(page, shots_dir):  # noqa: F811
    page.locator("#example-0").click()
    _wait_text(page, "#case-result", "Probability of glaucoma")
    _tab(page, "Experts")
    _wait_text(page, "#experts-summary", "Where the model as a whole looks")
    assert "router" in page.locator("#experts-health").inner_text().lower()
    page.wait_for_selector("#experts-routing .js-plotly-plot", timeout=30_000)
    # (full-page screenshots come last: after one, Gradio maps clicks on the image to x = 0)
    _wait_text(page, "#editor-result", "Unedited")
    img = page.locator("#editor-image img")
    img.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('#editor-image img')?.naturalWidth > 0")
    box = img.bounding_box()
    img.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.4})  # one patch
    _wait_text(page, "#editor-result", "1 patch masked")
    page.wait_for_timeout(500)  # the edited image replaces the clickable one
    img.click(position={"x": box["width"] * 0.8, "y": box["height"] * 0.4})  # another patch
    _wait_text(page, "#editor-result", "2 patches masked")
    # the clicks show in the keyboard picker, and the keyboard masks a third patch
    chips = re.findall(r"row \d+, column \d+", page.locator("#editor-patches").inner_text())
    assert chips == ["row 2, column 2", "row 2, column 4"], chips
    picker = page.locator("#editor-patches input").first
    picker.focus()
    picker.press_sequentially("row 1, column 1")
    picker.press("Enter")
    _wait_text(page, "#editor-result", "3 patches masked")
    number = page.locator("#editor-brightness input[type=number]")
    number.fill("1.5")
    number.press("Tab")  # typing alone updates (test_browser_truth); leaving the box too
    _wait_text(page, "#editor-result", "brightness x1.50")
    text = page.locator("#editor-result").inner_text()
    assert "Original" in text and "Edited" in text
    assert PROB_ROW.search(text), text  # the edited probability beside the original
    page.wait_for_selector("#editor-compare .js-plotly-plot", timeout=30_000)
    page.wait_for_timeout(800)
    page.locator("#editor-result").scroll_into_view_if_needed()
    page.screenshot(path=str(shots_dir / "2c-editor.png"))
    page.screenshot(path=str(shots_dir / "2b-experts.png"), full_page=True)
    page.locator("#editor-reset").click()
    _wait_text(page, "#editor-result", "Unedited")
