"""Fixtures of the handler tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.oracle import default_scores


@pytest.fixture(scope="module")
def oracle(assets_dir: Path):
    """(labels, scores, attribute codes, rows) of the default run, read with the csv module."""
    return default_scores(assets_dir)
