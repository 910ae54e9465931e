"""Headless Chromium (Debian's /usr/bin/chromium, Python Playwright) against the launched app.

Loads an example, reads the probability, moves the threshold slider and sees a metric change,
scores a cohort, and saves a screenshot of every tab to $FAIRMOE_SCREENSHOTS (or a temp folder).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fairmoe.schema import ATTRIBUTE_NAMES, OPERATING_POINT

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TABS = ("Case", "Experts", "Fairness", "Cohort", "Model card")


@pytest.fixture(scope="module")
def shots_dir() -> Path:
    d = Path(os.environ.get("FAIRMOE_SCREENSHOTS") or tempfile.mkdtemp(prefix="fairmoe-shots-"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def app_page(url: str, width: int = 1400) -> Iterator[Any]:
    """A headless Chromium page on the app at ``url``, its form loaded (skips the test when
    Chromium or Playwright is missing)."""
    if not CHROMIUM.is_file():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium); browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        pg = browser.new_page(viewport={"width": width, "height": 1000})
        pg.outside = []  # requests that left localhost: must stay empty (offline app)
        pg.on(
            "request",
            lambda r: (
                None
                if r.url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:"))
                else pg.outside.append(r.url)
            ),
        )
        pg.goto(url, wait_until="load")
        pg.wait_for_selector("#case-analyse", timeout=60_000)
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def page(server_url):
    with app_page(server_url) as pg:
        yield pg


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(600)


def _text(page, selector: str) -> str:
    return page.locator(selector).inner_text()


def test_case_example_shows_probability(page, shots_dir):
    page.locator("#example-1").click()
    page.wait_for_function(
        "() => /Probability of glaucoma: \\d+%/.test("
        "document.querySelector('#case-result')?.innerText || '')",
        timeout=60_000,
    )
    assert "Decision:" in _text(page, "#case-result")
    page.wait_for_selector("#case-prob .js-plotly-plot", timeout=30_000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots_dir / "1-case.png"), full_page=True)
    _tab(page, "Experts")  # hidden tabs mount when opened
    page.wait_for_function(
        "() => (document.querySelector('#experts-summary')?.innerText || '')"
        ".includes('image experts')",
        timeout=60_000,
    )
    page.wait_for_selector("#experts-attribution .js-plotly-plot", timeout=30_000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots_dir / "2-experts.png"), full_page=True)


def _threshold_that_moves_the_summary(rt) -> float:
    """A threshold at which the Fairness tab's default view differs from the operating point's.

    0.95 unless no test score of the tiny test model lies between (then all cases are flagged at
    both or at neither, and every metric stays the same): then a quantile of its scores.
    """
    from app.callbacks import fairness_update

    run = rt.run(rt.default_run or next(iter(rt.runs)))
    attr = rt.predictor.attribute if rt.predictor.attribute in ATTRIBUTE_NAMES else "race"
    start = fairness_update(run.scores, attr, "single", OPERATING_POINT)[0]
    for t in [0.95, *np.quantile(run.scores.scores, [0.5, 0.25, 0.75, 0.1, 0.9])]:
        t = round(float(t), 3)
        if fairness_update(run.scores, attr, "single", t)[0] != start:
            return t
    raise AssertionError("no threshold changes the fairness summary of the test assets")


def test_threshold_slider_changes_metrics(page, shots_dir, runtime):
    _tab(page, "Fairness")
    page.wait_for_function(
        "() => (document.querySelector('#fair-summary')?.innerText || '').includes('DPD')",
        timeout=30_000,
    )
    page.wait_for_selector("#fair-roc .js-plotly-plot", timeout=30_000)
    before = _text(page, "#fair-summary")
    box = page.locator("#fair-threshold input[type=number]")
    box.fill(str(_threshold_that_moves_the_summary(runtime)))
    box.press("Enter")
    page.wait_for_function(
        "(old) => { const t = document.querySelector('#fair-summary')?.innerText || '';"
        " return t.includes('DPD') && t !== old; }",
        arg=before,
        timeout=30_000,
    )
    assert _text(page, "#fair-summary") != before
    page.locator("#strategy-demographic_parity").click()
    page.wait_for_function(
        "() => (document.querySelector('#fair-strategy')?.innerText || '')"
        ".includes('Thresholds set by')",
        timeout=30_000,
    )
    page.locator("#fair-ci").click()
    page.wait_for_function(
        "() => !(document.querySelector('#fair-summary')?.innerText || '').includes('on demand')",
        timeout=30_000,
    )
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots_dir / "3-fairness.png"), full_page=True)


def test_fairness_tables_reliability_and_crossed_groups(page, shots_dir):
    _tab(page, "Fairness")
    page.wait_for_function(
        "() => { const t = document.querySelector('#fair-groups')?.innerText || '';"
        " return t.includes('Clinical rates') && t.includes('Calibration by group'); }",
        timeout=30_000,
    )
    groups = _text(page, "#fair-groups")
    for column in ("Sensitivity (TPR)", "Under-diagnosis (FNR)", "PPV", "NPV", "ECE"):
        assert column in groups
    page.wait_for_selector("#fair-reliability .js-plotly-plot", timeout=30_000)
    assert "Calibration by group" in _text(page, "#fair-reliability")
    page.locator("#fair-attr input").click()
    page.get_by_role("option", name="race × gender").click()
    page.wait_for_function(
        "() => (document.querySelector('#fair-groups')?.innerText || '').includes('Black & Female')",
        timeout=30_000,
    )
    page.locator("#fair-sensitivity").click()
    page.wait_for_function(
        "() => (document.querySelector('#fair-strategy')?.innerText || '')"
        ".includes('overall sensitivity 0.85')",
        timeout=30_000,
    )
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots_dir / "3b-fairness-crossed.png"), full_page=True)


def test_cohort_and_model_card(page, shots_dir, data_dir, tmp_path_factory):
    upload = tmp_path_factory.mktemp("cohort") / "cohort.zip"
    with zipfile.ZipFile(upload, "w") as zf:
        zf.write(data_dir / "data_summary.csv", "data_summary.csv")
        for p in sorted((data_dir / "Test").glob("*.npz")):
            zf.write(p, f"Test/{p.name}")
        zf.writestr("Test/broken.npz", b"not an npz")
    _tab(page, "Cohort")
    page.locator("#cohort-file input[type=file]").set_input_files(str(upload))
    page.wait_for_timeout(800)
    page.locator("#cohort-run").click()
    page.wait_for_function(
        "() => (document.querySelector('#cohort-summary')?.innerText || '').includes('DPD')",
        timeout=90_000,
    )
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots_dir / "4-cohort.png"), full_page=True)
    _tab(page, "Model card")
    assert "Model card" in _text(page, "#model-card")
    page.screenshot(path=str(shots_dir / "5-model-card.png"), full_page=True)
    assert len(list(shots_dir.glob("*.png"))) >= len(TABS)
    assert page.outside == [], f"the page reached outside localhost: {page.outside[:5]}"
