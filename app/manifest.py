"""Check an assets folder against its MANIFEST.json (size and sha256 of every shipped file).

``scripts/build_assets.py`` writes the manifest. At start the app verifies every file it lists:
a changed, truncated or missing model file stops the start (the app would otherwise serve a
model nobody trained or reviewed); a changed score table or example is left out with a warning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fairmoe.checkpoint import sha256_file

__all__ = ["MANIFEST", "ManifestCheck", "ManifestError", "check_manifest"]

MANIFEST = "MANIFEST.json"


class ManifestError(ValueError):
    """The manifest itself cannot be read or is not in the expected form."""


@dataclass
class ManifestCheck:
    """The result of :func:`check_manifest`; paths are relative to the assets folder (posix)."""

    present: bool  # False: the folder has no manifest, nothing was verified
    verified: set[str] = field(default_factory=set)
    problems: dict[str, str] = field(default_factory=dict)  # path -> what is wrong with it

    @property
    def ok(self) -> bool:
        return self.present and not self.problems

    def status(self, rel: str | Path) -> str | None:
        """None if ``rel`` matches the manifest; otherwise why it cannot be trusted."""
        if not self.present:
            return None
        rel = PurePosixPath(rel).as_posix()
        if rel in self.problems:
            return self.problems[rel]
        if rel not in self.verified:
            return f"{rel} is not listed in {MANIFEST}"
        return None


def check_manifest(assets: Path) -> ManifestCheck:
    """Size and sha256 of each listed file; a size mismatch skips hashing the file."""
    path = assets / MANIFEST
    if not path.is_file():
        return ManifestCheck(present=False)
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        entries = {str(k): (int(v["size"]), str(v["sha256"])) for k, v in files.items()}
    except (
        OSError,
        UnicodeDecodeError,
        json.JSONDecodeError,
        KeyError,
        TypeError,
        ValueError,
    ) as e:
        raise ManifestError(f"{path}: cannot read the manifest ({type(e).__name__}: {e})") from None
    check = ManifestCheck(present=True)
    for rel, (size, digest) in sorted(entries.items()):
        f = assets / rel
        if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
            check.problems[rel] = f"{rel}: not a path inside the assets folder"
        elif not f.is_file():
            check.problems[rel] = f"{rel} is missing"
        elif f.stat().st_size != size:
            check.problems[rel] = f"{rel} has {f.stat().st_size:,} bytes, the manifest {size:,}"
        elif sha256_file(f) != digest:
            check.problems[rel] = f"{rel} differs from the manifest (sha256)"
        else:
            check.verified.add(rel)
    return check
