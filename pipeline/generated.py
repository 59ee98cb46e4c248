"""Files generated from code and kept in the repository (event schemas, grafana/): which
ones differ from what the code renders, and writing those."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def stale(root: Path, files: Mapping[str, str]) -> list[Path]:
    """The files (path under `root` -> text) missing under `root` or differing there."""
    return [
        root / relative
        for relative, text in files.items()
        if not (root / relative).exists() or (root / relative).read_text(encoding="utf-8") != text
    ]


def write_stale(root: Path, files: Mapping[str, str]) -> list[Path]:
    """Write the stale files; return them."""
    changed = stale(root, files)
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path.relative_to(root).as_posix()], encoding="utf-8")
    return changed
