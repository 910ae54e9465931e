"""Patient data stays for the user's session only: uploads and derived files are deleted at its end.

Gradio keeps uploads in its cache folder, by default ``/tmp/gradio``: shared by every Gradio app on
the machine and kept until someone deletes it. The app instead

1. gives the process its own cache folder, readable by its user only and removed at exit
   (:func:`use_private_cache`, called by ``python -m app``);
2. writes its own outputs (overlays, previews, cohort CSVs) inside that folder, so Gradio serves
   them in place instead of keeping a second copy;
3. records the files each session uploaded or was sent and deletes them when the session ends
   (:class:`SessionFiles`, on Gradio's unload event: the tab closes or the API client disconnects);
4. has Gradio delete any cached file older than :data:`SESSION_MAX_AGE_S` (``delete_cache``), for
   sessions that never end cleanly.

Notes are text: they live in the browser and in the request being served, never in a file or log.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from fairmoe.checkpoint import sha256_file

__all__ = [
    "CACHE_ENV",
    "CLEAN_EVERY_S",
    "SESSION_MAX_AGE_S",
    "SessionFiles",
    "cache_dir",
    "use_private_cache",
]

CACHE_ENV = "GRADIO_TEMP_DIR"
# Backstop for sessions whose end Gradio never sees (a killed browser, a client without heartbeat).
SESSION_MAX_AGE_S = 3600
CLEAN_EVERY_S = 300


def cache_dir() -> Path:
    """The folder Gradio caches uploads and outputs in (as ``gradio.utils.get_upload_folder``)."""
    return Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "gradio").resolve()


def use_private_cache() -> Path:
    """A fresh 0700 cache folder for this process, removed at exit; a set GRADIO_TEMP_DIR wins.

    Call before Gradio builds any component: components read the folder when they are created.
    """
    if os.environ.get(CACHE_ENV):
        return cache_dir()
    path = Path(tempfile.mkdtemp(prefix="fairmoe-studio-"))  # mkdtemp makes it 0700
    os.environ[CACHE_ENV] = str(path)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path.resolve()


class SessionFiles:
    """Which session uploaded or was sent which file; a file goes when its last session ends.

    Two sessions that upload the same bytes share one cached file (Gradio names it by content), so
    files are reference-counted, and a file re-uploaded after a session recorded it (its ctime
    changed) is left to the session that uploaded it last. Copies of the ``public`` files (the
    shipped examples, which every user may pick at once) are not patient data and never tracked.
    Only files inside ``roots`` are ever deleted.
    """

    def __init__(self, roots: Iterable[str | Path], public: Iterable[str | Path] = ()) -> None:
        self.roots = [Path(r).resolve() for r in roots]
        self._public = {_fingerprint(Path(p)) for p in public if Path(p).is_file()}
        self._public_sizes = {size for size, _ in self._public}
        self._by_session: dict[str, dict[Path, int]] = {}  # path -> st_ctime_ns when recorded
        self._lock = threading.Lock()

    def _deletable(self, path: Path) -> bool:
        return any(path != root and path.is_relative_to(root) for root in self.roots)

    def _is_public(self, path: Path, size: int) -> bool:
        return size in self._public_sizes and _fingerprint(path) in self._public

    def track(self, session: str | None, *paths: str | Path | None) -> None:
        """Remember files of ``session`` (None: a call without a session, nothing to remember)."""
        if not session:
            return
        keep = {}
        for p in paths:
            if not p:
                continue
            path = Path(p).resolve()
            try:
                st = path.stat()
            except OSError:
                continue
            if self._deletable(path) and not self._is_public(path, st.st_size):
                keep[path] = st.st_ctime_ns
        if keep:
            with self._lock:
                self._by_session.setdefault(session, {}).update(keep)

    def files(self, session: str) -> set[Path]:
        with self._lock:
            return set(self._by_session.get(session, ()))

    def end(self, session: str | None) -> int:
        """Delete the session's files that no other live session holds; returns how many."""
        if not session:
            return 0
        with self._lock:
            mine = self._by_session.pop(session, {})
            held = set().union(*self._by_session.values()) if self._by_session else set()
        n = 0
        for path, ctime in mine.items():
            if path in held:
                continue
            try:
                if path.stat().st_ctime_ns != ctime:
                    continue  # uploaded again since: that session's to delete
                path.unlink()
                n += 1
            except FileNotFoundError:
                pass
            self._remove_empty_parent(path)
        return n

    def _remove_empty_parent(self, path: Path) -> None:
        """Gradio stores an upload as ``<cache>/<content hash>/<name>``: drop the hash folder too."""
        parent = path.parent
        if self._deletable(parent) and parent not in self.roots:
            with contextlib.suppress(OSError):
                parent.rmdir()  # only succeeds when empty


def _fingerprint(path: Path) -> tuple[int, str]:
    return path.stat().st_size, sha256_file(path)
