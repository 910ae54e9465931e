"""What every tab's handlers share: user errors, uploaded file values, notes, JSON-safe output."""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app.theme import icon

__all__ = [
    "CaseState",
    "clean_note",
    "numpy_free",
    "scan_name",
    "scan_source",
    "upload_path",
    "user_error",
    "user_message",
]


def user_error(message: str) -> gr.Error:
    """An error the user caused and can fix: shown as a message, no traceback in the log.

    API clients get it raised; the browser's Case and Experts events catch it and show
    :func:`user_message` in one message area instead (a raised error would mark every output
    of the event, form fields included, with an "Error" badge and pop up a toast)."""
    return gr.Error(message, print_exception=False)


def user_message(error: gr.Error) -> str:
    """The message area's markdown for a user error: what was wrong and what to do."""
    return f"{icon('warn')} {html.escape(str(error.message), quote=False)}"


def scan_name(value: Any) -> str | None:
    """The file name of an uploaded scan (what a result says it belongs to), or None."""
    path = upload_path(value)
    return Path(path).name if path else None


def upload_path(value: Any) -> str | None:
    """The server-side path of an uploaded file value (str, or a client payload dict)."""
    if isinstance(value, dict):
        value = value.get("path")
    return str(value) if value else None


def scan_source(image: Any) -> str:
    """The uploaded file's path (gr.File gives a str; a raw client payload may be a dict)."""
    if isinstance(image, dict):
        image = image.get("path")
    if image is None or str(image).strip() == "":
        raise user_error("Upload a scan first: PNG, JPEG or TIFF, or a FairVLMed .npz file.")
    if not Path(image).exists():  # uploads go when their session ends or after an hour
        raise user_error(
            f"{Path(image).name} is no longer on the server (uploads are deleted when a session "
            "ends, and after an hour); upload it again."
        )
    return str(image)


def clean_note(note: Any) -> str | None:
    """The clinical note as text, or None when there is none."""
    if note is None:
        return None
    if not isinstance(note, str):
        raise user_error("The note must be text.")
    return note if note.strip() else None


def numpy_free(obj: Any) -> Any:
    """JSON-safe copy (numpy scalars/arrays to Python) for gr.JSON outputs."""
    if isinstance(obj, dict):
        return {k: numpy_free(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [numpy_free(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


class CaseState(Mapping[str, Any]):
    """A user's explained case (``result``, ``pixels``, ...), read-only, for a ``gr.State``.

    Gradio hashes an output State that has a ``.change`` listener (the scan editor resets on a
    new case) before and after every event that writes it, and a dict or list element by
    element: ~7 ms of the server's event loop per explanation, for its attribution grids. A
    Mapping that is not a dict is hashed by identity; every new state is a new object, so the
    change is still seen.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"CaseState({sorted(self._data)})"
