"""The import rules of docs/architecture.md ("What each folder may import"), checked on every
module of the package: a stage imports the core and the stages before it, never one after it,
the simulator, the tools or the CLI."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipeline"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
EVERY_MODULE = "every module"


def allowed_imports() -> dict[str, set[str] | None]:
    """The table's rows: unit -> the units it may import (None: any)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("## What each folder may import", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, set[str] | None] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        unit = cells[0].strip("`")
        rows[unit] = None if cells[1] == EVERY_MODULE else set(re.findall(r"`(\w+)`", cells[1]))
    return rows


def unit_of(path: Path) -> str:
    """The folder (or top-level module) of pipeline/ that a file belongs to."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[str]:
    """The units of pipeline/ that a file imports, wherever in the file (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = node.module.split(".")
            if names[0] == "pipeline":
                found |= {names[1]} if len(names) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("pipeline.")
            }
    return found


def package_files() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if path != PACKAGE / "__init__.py"]


def test_the_table_names_every_unit_of_the_package() -> None:
    units = {unit_of(path) for path in package_files()} - {"data"}
    assert units == set(allowed_imports())


def test_every_import_follows_the_table() -> None:
    rules = allowed_imports()
    broken = []
    for path in package_files():
        unit = unit_of(path)
        allowed = rules.get(unit)
        if allowed is None and unit in rules:
            continue
        for imported in sorted(imported_units(path) - {unit} - (allowed or set())):
            broken.append(f"{path.relative_to(ROOT)} imports pipeline.{imported}")
    assert broken == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """What the rules test reads, on a made-up file: a lazy import inside a function counts."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from pipeline.sinks.warehouse import Warehouse\n")
    assert imported_units(module) == {"sinks"}
    assert "sinks" not in (allowed_imports()["sources"] or set())
