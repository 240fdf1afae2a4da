"""Layering rules read from the source: only core/store/ talks SQL (sqlalchemy, the ORM tables), and the
GUI reaches the engine through its use cases, never through the command line's module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import paths
from core.store import Base

ROOT = paths.REPO_ROOT
CHECKED = ("core", "GUI", "training", "scripts")
STORE = ROOT / "core" / "store"
ORM_NAMES = {m.class_.__name__ for m in Base.registry.mappers} | {"Base"}
ORM_MODULE = "core.store.tables"


def _sources() -> list[Path]:
    files = [p for d in CHECKED for p in sorted((ROOT / d).rglob("*.py"))]
    return [p for p in files if STORE not in p.parents and ".venv" not in p.parts]


def _forbidden(module: str) -> bool:
    return module.split(".")[0] == "sqlalchemy" or module == ORM_MODULE or module.startswith(ORM_MODULE + ".")


def _sql_imports(path: Path) -> list[str]:
    """``line: what`` for each import of sqlalchemy, of the ORM tables module, or of an ORM class."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _forbidden(node.module):
                found.append(f"{node.lineno}: {node.module}")
            elif node.module.startswith("core.store"):
                found += [f"{node.lineno}: {node.module}.{a.name}" for a in node.names if a.name in ORM_NAMES]
    return found


def test_the_rule_sees_what_it_forbids(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy.orm\nfrom sqlalchemy import select\n"
                   "from core.store import Store, RunTable\nfrom core.store.tables import Base\n"
                   "def f():\n    import core.store.tables\n")
    assert [s.split(": ")[1] for s in _sql_imports(bad)] == [
        "sqlalchemy.orm", "sqlalchemy", "core.store.RunTable", "core.store.tables", "core.store.tables"]
    fine = tmp_path / "fine.py"
    fine.write_text("from core.store import Store, Sightings, TrackRecord\nimport core.store\n")
    assert _sql_imports(fine) == []
    assert {"VideoTable", "RunTable", "TrackTable", "SightingTable", "EmbeddingTable"} <= ORM_NAMES


@pytest.mark.parametrize("folder", CHECKED)
def test_only_the_store_imports_sqlalchemy_or_orm_tables(folder: str):
    files = [p for p in _sources() if p.relative_to(ROOT).parts[0] == folder]
    assert files, f"no Python files found under {folder}/"
    offenders = {str(p.relative_to(ROOT)): hits for p in files if (hits := _sql_imports(p))}
    assert not offenders, f"outside core/store/, these import SQL or ORM tables: {offenders}"


def _imports_cli(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
        found += [f"{node.lineno}: {n}" for n in names if n == "core.cli" or n.startswith("core.cli.")]
    return found


def test_the_gui_does_not_import_the_command_line():
    files = [p for p in _sources() if p.relative_to(ROOT).parts[0] == "GUI"]
    offenders = {str(p.relative_to(ROOT)): hits for p in files if (hits := _imports_cli(p))}
    assert not offenders, f"the GUI must call the engine's use cases, not core.cli: {offenders}"
