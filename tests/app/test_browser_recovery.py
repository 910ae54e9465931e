"""Headless Chromium: a bad upload leaves the Case tab usable (no stuck "Analysing ...")."""

from __future__ import annotations

import pytest

from tests.app.test_browser import page  # noqa: F401  (the shared browser fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RESULT = "document.querySelector('#case-result')?.innerText || ''"


def test_bad_upload_then_an_example_works(page, tmp_path):  # noqa: F811
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is a text file, not a scan\n" * 20)
    page.get_by_role("tab", name="Case").click()
    page.locator("#case-scan input[type=file]").set_input_files(str(bad))
    page.wait_for_timeout(1500)
    page.locator("#case-analyse").click()
    page.wait_for_function(f"() => ({RESULT}).includes('Not analysed')", timeout=60_000)
    assert "Analysing" not in page.locator("#case-result").inner_text()
    assert "not an image" in page.locator("#case-message").inner_text()  # says what was wrong
    # the page still works: an example is analysed as usual
    page.locator("#example-0").click()
    page.wait_for_function(
        f"() => /Probability of glaucoma: \\d+%/.test({RESULT})",
        timeout=60_000,
    )
