"""Headless Chromium: the Fairness tab's audit button gives a self-contained HTML download."""

from __future__ import annotations

import re

import pytest

from tests.app.test_browser import page, shots_dir  # noqa: F401  (module-scoped fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*(src|href)\s*=\s*[\"']?(https?:)?//", re.I)


def test_fairness_audit_download(page):  # noqa: F811
    page.get_by_role("tab", name="Fairness").click()
    page.wait_for_function(
        "() => (document.querySelector('#fair-summary')?.innerText || '').includes('DPD')",
        timeout=60_000,
    )
    page.locator("#fair-audit").click()
    link = page.locator("#fair-audit-file a[href]").first
    link.wait_for(timeout=60_000)
    href = link.get_attribute("href")
    assert ".html" in href
    resp = page.request.get(href if href.startswith("http") else page.url.rstrip("/") + href)
    assert resp.ok
    html = resp.text()
    assert html.startswith("<!DOCTYPE html>") and 'id="group-table"' in html
    assert 'id="warnings"' in html and not REMOTE.search(html)
    assert page.outside == [], f"the page reached outside localhost: {page.outside[:5]}"
