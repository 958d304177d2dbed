"""The direction of imports that docs/architecture.md draws: a domain imports ``core/`` and the domains below it, never
one above. Read from the source with ``ast`` (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bastion

SRC = Path(bastion.__file__).parent

#: What each domain may import besides itself. The top (cli, web, demo) may import any domain below it.
BELOW: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "hashing": frozenset({"core"}),
    "matching": frozenset({"core", "hashing"}),
    "classifiers": frozenset({"core", "hashing"}),
    "review": frozenset({"core"}),
    "moderation": frozenset({"core", "hashing", "matching", "classifiers", "review"}),
    "orders": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation"}),
    "reporting": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation"}),
    "hub": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation", "orders"}),
    "centre": frozenset({"core"}),
    "hma": frozenset({"core", "hashing", "matching"}),
    "exchanges": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation"}),
    "minors": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation"}),
    "factchecks": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation"}),
    "designations": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation"}),
    "feed": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation", "minors", "orders"}),
    "transparency": frozenset({"core", "hashing", "matching", "classifiers", "review", "moderation", "orders",
                               "reporting", "hub", "minors"}),
}
TOP = frozenset({"cli", "web", "demo", "testing", "migrations"})


def _imported_domains(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "bastion" and len(parts) > 1:
                found.add(parts[1])
    return found


def _domains() -> list[str]:
    return sorted(p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists())


def test_every_domain_has_a_place_in_the_diagram() -> None:
    """A new domain must be given its layer here (and in docs/architecture.md) before it can be merged."""
    assert set(_domains()) <= set(BELOW) | TOP


@pytest.mark.parametrize("domain", sorted(BELOW))
def test_no_domain_imports_upward(domain: str) -> None:
    allowed = BELOW[domain] | {domain, "__init__"}
    upward = {
        f"{path.relative_to(SRC)} imports bastion.{d}"
        for path in (SRC / domain).rglob("*.py")
        for d in _imported_domains(path) - allowed
        if (SRC / d).is_dir() or (SRC / f"{d}.py").exists()
    }
    assert not upward, sorted(upward)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The reader itself: a lazy import of web/ inside a function is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from bastion.web.app import create_app\n    import bastion.orders.wire\n")
    assert _imported_domains(module) == {"web", "orders"}


#: Where moderation's tables may be read: moderation itself, the top (which wires and shows everything) and the
#: metadata that gathers every table (``bastion/models.py``, the migrations). Other domains call
#: ``moderation/queries.py`` (STYLE.md 16: read through a domain's query functions, never its tables).
MODERATION_TABLES_READERS = frozenset({"moderation", "web", "cli", "demo", "testing", "migrations", "models.py"})


def _imports_module(path: Path, module: str) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name == module for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None and (
                node.module == module or any(f"{node.module}.{a.name}" == module for a in node.names)):
            return True
    return False


def _readers_of(module: str, allowed: frozenset[str], root: Path = SRC) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                  if path.relative_to(root).parts[0] not in allowed and _imports_module(path, module))


def test_only_moderation_reads_its_tables() -> None:
    assert _readers_of("bastion.moderation.models", MODERATION_TABLES_READERS) == []


def test_the_table_check_sees_a_reader(tmp_path: Path) -> None:
    """The check itself: a domain importing moderation's models (either spelling) is found, queries are not."""
    for name, source in (("orders", "from bastion.moderation.models import ContentItem\n"),
                         ("reporting", "def f():\n    from bastion.moderation import models\n"),
                         ("hub", "from bastion.moderation import queries\n"),
                         ("web", "from bastion.moderation.models import ContentItem\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "m.py").write_text(source)
    assert _readers_of("bastion.moderation.models", MODERATION_TABLES_READERS, tmp_path) == \
        ["orders/m.py", "reporting/m.py"]
