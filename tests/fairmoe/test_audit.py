"""fairmoe.audit: your own scores CSV, the offline HTML audit and its CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fairmoe.audit import AuditError, build_audit, read_user_scores
from fairmoe.audit.__main__ import main

REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*(src|href)\s*=\s*[\"']?(https?:)?//", re.I)
GROUPS = ("Asian", "Black", "White")


def _csv(path: Path, n: int = 120, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    race = rng.choice([0, 1, 2], n, p=[0.1, 0.2, 0.7])  # Asian: ~12 cases, too small
    rows = ["id,label,score,race,gender,ethnicity,language"]
    for i in range(n):
        gender = ("female", "Male")[i % 2]
        rows.append(f"c{i},{y[i]},{s[i]:.4f},{GROUPS[race[i]]},{gender},unknown,{i % 3}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_read_user_scores_accepts_names_spellings_and_codes(tmp_path):
    ss = read_user_scores(_csv(tmp_path / "m.csv"))
    raw = (tmp_path / "m.csv").read_text().splitlines()[1:]
    assert ss.n == len(raw)
    assert [GROUPS[c] for c in ss.attrs["race"]] == [r.split(",")[3] for r in raw]
    assert set(ss.attrs["ethnicity"]) == {-1} and set(ss.attrs["gender"]) == {0, 1}
    assert ss.attrs["language"].tolist() == [i % 3 for i in range(ss.n)]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("id,score,race\n1,0.5,Asian\n", "missing column"),
        ("id,label,score\n1,1,0.5\n", "no attribute column"),
        ("label,score,race\nmaybe,0.5,Asian\n", "row 2: label"),
        ("label,score,race\n1,1.5,Asian\n", "between 0 and 1"),
        ("label,score,race\n1,abc,Asian\n", "not a number"),
        ("label,score,race\n1,0.5,Martian\n", "not a group"),
        ("label,score,race\n", "no rows"),
    ],
)
def test_bad_scores_csv_says_what_is_wrong(tmp_path, text, words):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(AuditError, match=words):
        read_user_scores(bad)
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(AuditError, match="UTF-8"):
        read_user_scores(bad)


def test_audit_is_offline_escaped_and_has_table_and_warnings(tmp_path):
    ss = read_user_scores(_csv(tmp_path / "m.csv"), name="<script>alert(1)</script>")
    html = build_audit(ss, attr="race", threshold=0.5, source="<b>evil</b>.csv")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>evil</b>" not in html
    assert not REMOTE.search(html) and "Plotly.newPlot" in html
    res = ss.fairness("race", 0.5, ci="none")
    for g in res.groups:
        assert f"<td>{g.name}</td><td>{g.n}</td>" in html
    asian = res.group("Asian")
    assert asian.n < 30 and 'data-code="small_group"' in html and "too small" in html
    assert 'data-code="degenerate"' not in html
    assert 'data-code="degenerate"' in build_audit(ss, attr="race", threshold=0.0)


def _figs(html: str) -> dict:
    """The plotly figures the audit embeds, by id."""
    return json.loads(re.search(r"const FIGS=(.*?);for\(", html).group(1))


def _cells(html: str, table: str) -> dict[str, list[str]]:
    """{group: its cells} of one of the audit's tables."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body)[1:]
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows]
    return {c[0]: c[1:] for c in cells}


def test_audit_shows_calibration_and_clinical_rates_per_group(tmp_path, monkeypatch):
    ss = read_user_scores(_csv(tmp_path / "m.csv", n=400))
    html = build_audit(ss, attr="race", threshold=0.5)
    res = ss.fairness("race", 0.5, ci="all")
    rates, calib = _cells(html, "group-table"), _cells(html, "calibration-table")
    for g in res.present:
        assert rates[g.name][4].startswith(f"{g.fnr:.3f} <small>[{g.ci.fnr.low:.3f}")  # FNR
        assert rates[g.name][6].startswith(f"{g.ppv:.3f} <small>[")  # PPV with its CI
        assert rates[g.name][7].startswith(f"{g.npv:.3f} <small>[")  # NPV with its CI
        ece = f"{g.ece:.3f} <small>[{g.ci.ece.low:.3f}, {g.ci.ece.high:.3f}]</small>"
        assert calib[g.name][2] == ece
        assert calib[g.name][3] == f"{g.citl:+.3f}"
        assert (calib[g.name][-1] == "ok") == (g.flag == "")  # group_flag, defined once
    figs = _figs(html)
    rel = [f for k, f in figs.items() if k.startswith("rel-")]
    assert len(rel) == len(res.present)  # a reliability diagram per group with cases
    for g, f in zip(res.present, rel, strict=True):
        assert f["layout"]["title"]["text"].startswith(g.name)
        c = g.reliability
        filled = [i for i, n in enumerate(c.count) if n]
        assert f["data"][-1]["x"] == [c.mean_predicted[i] for i in filled]
        assert f["data"][-1]["y"] == [c.observed[i] for i in filled]
    for f in [figs["roc"], *rel]:  # unit axes: the page's width never stretches them
        for axis in ("xaxis", "yaxis"):
            assert f["layout"][axis]["range"] == [0, 1]
            assert f["layout"][axis]["constrain"] == "domain"
    monkeypatch.setattr("fairmoe.audit.render.plotly_js", lambda: None)
    static = build_audit(ss, attr="race", threshold=0.5)  # no plotly: inline SVG figures
    assert "Plotly" not in static and static.count('<figure class="rel"') == len(res.present)


def test_crossed_attribute_audit_lists_its_cells(tmp_path):
    scores = _csv(tmp_path / "m.csv", n=400)
    out = tmp_path / "cells.html"
    assert main(["--scores", str(scores), "--attribute", "gender*race", "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert "<b>race*gender</b>" in html
    assert "<td>Black &amp; Female</td>" in html and "<td>White &amp; Male</td>" in html
    ss = read_user_scores(scores)
    assert len(_figs(html)) - 1 == len(ss.fairness("race*gender", ci="none").present)
    thr = build_audit(ss, attr="race*gender", threshold=[0.5] * 6)  # one per cell
    assert "<td>Black &amp; Male</td><td>0.500</td>" in thr
    with pytest.raises(AuditError, match="race\\*gender"):
        build_audit(ss, attr="race*age")
    with pytest.raises(SystemExit):  # argparse names the valid attributes
        main(["--scores", str(scores), "--attribute", "age", "--out", str(out)])


def test_strategy_audit_warns_and_records_the_strategy(tmp_path):
    ss = read_user_scores(_csv(tmp_path / "m.csv"))
    html = build_audit(ss, attr="race", strategy="group", cost_ratio=4)
    assert "strategy <b>group</b> at cost ratio 4" in html
    assert 'data-code="needs_attribute"' in html and 'data-code="flag_rate"' in html
    with pytest.raises(AuditError, match="cost ratio"):
        build_audit(ss, attr="race", strategy="group", cost_ratio=0)
    with pytest.raises(AuditError, match="3 groups"):
        build_audit(ss, attr="race", threshold=[0.4, 0.5])


def test_cli_writes_the_audit_and_refuses_bad_input(tmp_path, capsys):
    scores = _csv(tmp_path / "m.csv")
    out = tmp_path / "audit.html"
    assert (
        main(["--scores", str(scores), "--threshold", "0.4", "0.5", "0.6", "--out", str(out)]) == 0
    )
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    bad = tmp_path / "bad.csv"
    bad.write_text("label,score,race\n1,7,Asian\n")
    assert main(["--scores", str(bad), "--out", str(tmp_path / "x.html")]) == 2
    assert "between 0 and 1" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
