"""app.callbacks.common: uploaded file values, notes and JSON-safe outputs."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest

from app.callbacks.common import clean_note, numpy_free, scan_source, upload_path


def test_upload_values_and_notes(tmp_path):
    scan = tmp_path / "scan.png"
    scan.write_bytes(b"x")
    assert upload_path({"path": str(scan)}) == str(scan) == upload_path(scan)
    assert upload_path(None) is None and upload_path("") is None
    assert scan_source({"path": str(scan)}) == str(scan)
    with pytest.raises(gr.Error, match="Upload a scan first"):
        scan_source("  ")
    assert clean_note("  ") is None and clean_note(None) is None and clean_note("IOP") == "IOP"
    with pytest.raises(gr.Error, match="must be text"):
        clean_note(3)


def test_numpy_free_is_json_safe():
    out = numpy_free({"a": np.float32(0.5), "b": (np.arange(2), [np.int64(3)])})
    assert out == {"a": 0.5, "b": [[0, 1], [3]]}
    json.dumps(out, allow_nan=False)
