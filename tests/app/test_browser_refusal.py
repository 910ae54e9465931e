"""Headless Chromium on a model with a fitted assessability check: a photo that is not a scan is
refused on the Case tab, the Experts tab shows the same refusal and draws no map, and the scan
editor names the refusal instead of a probability."""

from __future__ import annotations

import pytest

from tests.app.checked import camera_photo, checked_assets
from tests.app.conftest import free_port
from tests.app.test_browser import ARGS, CHROMIUM, _tab

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def checked_page(assets_dir, data_dir):
    if not CHROMIUM.is_file():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium); browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from app.callbacks.serving import shutdown
    from app.readiness import start_serving
    from app.runtime import load_runtime
    from app.ui import build_demo, launch_kwargs

    rt = load_runtime(checked_assets(assets_dir, data_dir))
    start_serving(rt)
    demo = build_demo(rt)
    demo.launch(**launch_kwargs(rt), server_name="127.0.0.1", server_port=free_port(),
                prevent_thread_lock=True, quiet=True)  # fmt: skip
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.goto(demo.local_url, wait_until="load")
            pg.wait_for_selector("#case-analyse", timeout=60_000)
            yield pg
            browser.close()
    finally:
        demo.close()
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
