"""Headless Chromium on a model with a fitted assessability check: a photo that is not a scan is
refused on the Case tab, the Experts tab shows the same refusal and draws no map, and the scan
editor names the refusal instead of a probability."""

from __future__ import annotations

import pytest

from tests.app.checked import camera_photo, checked_assets
from tests.app.conftest import launched
from tests.app.test_browser import _tab, app_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def checked_page(assets_dir, data_dir):
    from app.callbacks.serving import shutdown
    from app.runtime import load_runtime

    rt = load_runtime(checked_assets(assets_dir, data_dir))
    try:
        with launched(rt) as url, app_page(url) as pg:
            yield pg
    finally:
        shutdown(rt)


def _wait_text(page, selector: str, needle: str, timeout: int = 90_000) -> None:
    page.wait_for_function(
        "([s, n]) => (document.querySelector(s)?.innerText || '').includes(n)",
        arg=[selector, needle],
        timeout=timeout,
    )


def test_a_refused_photo_is_refused_on_every_tab(checked_page, tmp_path):
    page = checked_page
    photo = tmp_path / "camera-operator.png"
    camera_photo(photo)
    _tab(page, "Case")
    page.locator("#case-scan input[type=file]").set_input_files(str(photo))
    page.locator("#case-analyse").click()
    _wait_text(page, "#case-result", "Not assessable by this model")
    assert page.locator("#case-result .fm-icon-refuse").count() == 1  # a CSS icon, not an emoji

    _tab(page, "Experts")
    _wait_text(page, "#experts-summary", "No maps are drawn for a scan the model cannot assess")
    summary = page.locator("#experts-summary").inner_text()
    assert "Scan: camera-operator.png" in summary and "Not assessable by this model" in summary
    assert "image experts" not in summary  # no attribution text for a refused scan
    for sel in ("#experts-attribution", "#experts-routing"):
        page.wait_for_selector(f"{sel} .js-plotly-plot", timeout=30_000)
        assert "Not assessable by this model: no maps" in page.locator(sel).text_content()
    _wait_text(page, "#editor-result", "not assessable")
    assert "Probability of glaucoma" not in page.locator("#editor-result").inner_text()
