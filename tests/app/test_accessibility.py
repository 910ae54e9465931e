"""Accessibility in headless Chromium: axe-core (WCAG 2.1 A/AA) on every tab, keyboard-only use, 200% zoom.

axe-core is pinned in .ci/axe/package.json and installed from the npm registry by ``make test``; the
test injects its local axe.min.js (no CDN). Every tab is checked in its initial state and again after
an example is analysed (which fills the Experts tab) and a threshold strategy is applied.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fairmoe.schema import ATTRIBUTE_NAMES, OPERATING_POINT
from tests.app.test_browser import ARGS, CHROMIUM, TABS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
AXE_JS = REPO / ".ci" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")
# axe only checks what is rendered: hidden tabs (display: none) drop out of each run.
AXE_RUN = """async (tags) => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));
}"""


def _browser(p):
    if not CHROMIUM.is_file():
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium); browser test skipped")
    return p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = _browser(p)
        yield browser
        browser.close()


def _open(browser, url: str, **context):
    pg = browser.new_page(**({"viewport": {"width": 1400, "height": 1000}} | context))
    pg.goto(url, wait_until="load")
    pg.wait_for_selector("#case-analyse", timeout=60_000)
    return pg


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(500)


def _axe(page) -> list[dict]:
    """Serious and critical WCAG 2.1 A/AA violations of what the page shows now."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_JS))
    found = page.evaluate(AXE_RUN, WCAG_TAGS)
    return [v for v in found if v["impact"] in BLOCKING]


def _figure_summaries(page) -> dict[str, str]:
    """The text a screen reader gets for each figure on show, by the id of its block."""
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')]"
        ".filter(g => g.offsetParent !== null).map((g, i) => [g.closest('[id]')?.id || i,"
        " document.getElementById(g.getAttribute('aria-describedby'))?.textContent || '']))"
    )


def _report(results: dict[str, list[dict]]) -> str:
    lines = []
    for where, violations in results.items():
        counts = {v["id"]: len(v["nodes"]) for v in violations}
        lines.append(f"{where}: {sum(counts.values())} {counts}")
        for v in violations:
            for n in v["nodes"][:8]:
                lines.append(f"  {v['impact']} {v['id']}: {n['target']}")
                lines.append(f"    {n['summary'].splitlines()[-1].strip()[:200]}")
    return "\n".join(lines)


def _analyse_and_apply(page) -> None:
    _tab(page, "Case")
    page.locator("#example-1").click()
    page.wait_for_function(
        "() => /Probability of glaucoma: \\d+%/.test("
        "document.querySelector('#case-result')?.innerText || '')",
        timeout=60_000,
    )
    page.wait_for_selector("#case-prob .js-plotly-plot", timeout=30_000)
    _tab(page, "Experts")
    page.wait_for_function(
        "() => (document.querySelector('#experts-summary')?.innerText || '')"
        ".includes('image experts')",
        timeout=60_000,
    )
    page.wait_for_selector("#experts-attribution .js-plotly-plot", timeout=30_000)
    _tab(page, "Fairness")
    page.wait_for_selector("#fair-roc .js-plotly-plot", timeout=30_000)
    page.locator("#strategy-demographic_parity").click()
    page.wait_for_function(
        "() => (document.querySelector('#fair-strategy')?.innerText || '')"
        ".includes('Thresholds set by')",
        timeout=30_000,
    )


def test_axe_every_tab_before_and_after_use(chromium, server_url):
    """No serious or critical axe-core violation on any tab, before and after an analysis."""
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: run `make test` (it installs .ci/axe with npm)")
    page = _open(chromium, server_url)
    results: dict[str, list[dict]] = {}
    for stage in ("initial", "after use"):
        if stage == "after use":
            _analyse_and_apply(page)
        for name in TABS:
            _tab(page, name)
            page.wait_for_timeout(300)
            results[f"{stage} / {name}"] = _axe(page)
            if stage == "after use":
                for block, text in _figure_summaries(page).items():
                    assert text.startswith("Figure") and "Data:" in text, (name, block, text)
            print(_report({f"{stage} / {name}": results[f"{stage} / {name}"]}), flush=True)
    page.close()
    report = _report(results)
    print("axe-core WCAG 2.1 A/AA, serious+critical nodes per tab:\n" + report)
    assert not any(results.values()), report


# --- keyboard only ------------------------------------------------------------------------------

FOCUS_STATE = """() => { const e = document.activeElement; if (!e || e === document.body) return null;
  const s = getComputedStyle(e);
  const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2)
    || (s.boxShadow && s.boxShadow !== 'none');
  return {id: e.id, tag: e.tagName, type: e.type || '', role: e.getAttribute('role') || '',
          text: (e.innerText || e.value || e.getAttribute('aria-label') || '').slice(0, 40),
          ring: ring, key: e.tagName + '#' + e.id + ':' + (e.innerText || '').slice(0, 20)
            + ':' + (e.closest('[id]')?.id || '')}; }"""


class Walker:
    """Moves focus with Tab / Shift+Tab only, and records every element it lands on."""

    def __init__(self, page):
        self.page, self.seen, self.no_ring = page, [], []

    def to(self, matches: str, *, back: bool = False, limit: int = 120) -> dict:
        """Press (Shift+)Tab until the focused element matches the JS predicate ``matches``."""
        stuck = 0
        last = None
        for _ in range(limit):
            self.page.keyboard.press("Shift+Tab" if back else "Tab")
            state = self.page.evaluate(FOCUS_STATE)
            if state is None:
                continue  # focus left the page for the browser's own UI: it comes back
            self.seen.append(state)
            if not state["ring"]:
                self.no_ring.append(state)
            stuck = stuck + 1 if state["key"] == last else 0
            assert stuck < 3, f"keyboard trap: Tab stays on {state}"
            last = state["key"]
            if self.page.evaluate(f"() => ({matches})(document.activeElement)"):
                return state
        raise AssertionError(
            f"{matches} not reached in {limit} Tab presses; visited "
            f"{[s['text'] or s['id'] for s in self.seen[-limit:]]}"
        )


def _tab_named(name: str) -> str:
    return f"(e) => e.getAttribute('role') === 'tab' && e.innerText.trim() === {json.dumps(name)}"


def _threshold_steps(rt) -> tuple[float, int]:
    """The nearest threshold (0.001 steps from the operating point) at which a test case changes
    side, so a few arrow presses change the Fairness summary; (threshold, signed presses)."""
    import numpy as np

    from app.callbacks import fairness_update

    run = rt.run(rt.default_run or next(iter(rt.runs)))
    attr = rt.predictor.attribute if rt.predictor.attribute in ATTRIBUTE_NAMES else "race"
    s = np.asarray(run.scores.scores, dtype=float)
    above, below = s[s >= OPERATING_POINT], s[s < OPERATING_POINT]
    # moving up past the lowest flagged score unflags it; moving down to the highest other flags it
    ks = [int(np.floor((above.min() - OPERATING_POINT) * 1000)) + 1] if above.size else []
    ks += [-int(np.ceil((OPERATING_POINT - below.max()) * 1000 - 1e-9))] if below.size else []
    start = fairness_update(run.scores, attr, "single", OPERATING_POINT)[0]
    for k in sorted(ks, key=abs):
        t = round(OPERATING_POINT + k / 1000, 3)
        if abs(k) <= 400 and fairness_update(run.scores, attr, "single", t)[0] != start:
            return t, k
    raise AssertionError("no threshold within 400 arrow presses changes the fairness summary")


def test_keyboard_only_walk_through(chromium, server_url, runtime):
    """Analyse an example, switch tabs and move the threshold with Tab, Enter and arrow keys."""
    page = _open(chromium, server_url)
    walk = Walker(page)
    # 1. Tab from the top of the page to the first example and press Enter: it is analysed
    walk.to("(e) => e.id === 'example-1'")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => /Probability of glaucoma: \\d+%/.test("
        "document.querySelector('#case-result')?.innerText || '')",
        timeout=60_000,
    )
    # 2. back up to the tab list, open Fairness with Enter
    walk.to(_tab_named("Fairness"), back=True)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => (document.querySelector('#fair-summary')?.innerText || '').includes('DPD')",
        timeout=30_000,
    )
    before = page.locator("#fair-summary").inner_text()
    # 3. Tab to the threshold slider and move it with the arrow keys
    target, presses = _threshold_steps(runtime)
    walk.to("(e) => e.type === 'range' && !!e.closest('#fair-threshold')")
    for _ in range(abs(presses)):
        page.keyboard.press("ArrowRight" if presses > 0 else "ArrowLeft")
    page.wait_for_function(
        "(old) => { const t = document.querySelector('#fair-summary')?.innerText || '';"
        " return t.includes('DPD') && t !== old; }",
        arg=before,
        timeout=30_000,
    )
    value = float(page.locator("#fair-threshold input[type=range]").input_value())
    assert value == pytest.approx(target, abs=1e-9)
    # 4. back to the tab list, open Experts: the analysis from step 1 is there
    walk.to(_tab_named("Experts"), back=True)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => (document.querySelector('#experts-summary')?.innerText || '')"
        ".includes('image experts')",
        timeout=60_000,
    )
    page.close()
    stops = " > ".join((f["text"] or f["id"] or f["tag"]).strip()[:24] for f in walk.seen)
    print(f"keyboard walk, threshold {OPERATING_POINT} -> {target}; focus stops: {stops}")
    assert not walk.no_ring, f"focused without a visible outline: {walk.no_ring[:5]}"


# --- 200% zoom ----------------------------------------------------------------------------------


def test_zoom_200_loses_no_content(chromium, server_url):
    """A 1280 px window at 200% zoom: a 640 CSS px viewport drawn at device scale factor 2.

    Every tab opens, nothing is wider than the viewport (no sideways scrolling, nothing cut off),
    and an example can still be analysed.
    """
    page = _open(
        chromium, server_url, viewport={"width": 640, "height": 800}, device_scale_factor=2
    )
    wide = {}
    for name in TABS:
        tab = page.get_by_role("tab", name=name)
        if not tab.is_visible():  # narrow windows move tabs into the "More tabs" menu
            page.get_by_role("button", name="More tabs").click()
        tab.click()
        page.wait_for_timeout(400)
        over = page.evaluate(
            "() => [...document.querySelectorAll('gradio-app *')].filter(e => {"
            " const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0"
            " && e.offsetParent !== null && r.right > innerWidth + 1"
            " && !e.closest('.js-plotly-plot, .table-wrap, pre, .overflow-x-auto')})"
            ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"
        )
        if over or page.evaluate("() => document.documentElement.scrollWidth > innerWidth + 1"):
            wide[name] = over
    assert not wide, f"wider than a 200% zoomed window: {wide}"
    _tab(page, "Case")
    page.locator("#example-1").click()
    page.wait_for_function(
        "() => /Probability of glaucoma: \\d+%/.test("
        "document.querySelector('#case-result')?.innerText || '')",
        timeout=60_000,
    )
    page.close()
