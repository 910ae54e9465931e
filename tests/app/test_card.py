"""app.card: the header and the model card from the checkpoint metadata and REPORT.md."""

from __future__ import annotations

from app import card


def test_header_and_model_card(runtime):
    header = card.header_markdown(runtime)
    assert "Research tool, not for clinical use" in header and "trained on a CPU" in header
    text = card.model_card(runtime)
    meta = runtime.meta
    assert f"{meta.temperature:.4g}" in text
    assert f"{meta.n_parameters:,}" in text
    assert "This model was trained on a CPU" in text
    assert "| Attribute | ES-AUC | ES-ACC | DPD | DEOdds | Unknown |" in text
    report = card.report_markdown(runtime)
    assert f"(/gradio_api/file={(runtime.assets / 'tradeoff.png').resolve()})" in report
