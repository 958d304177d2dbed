"""The direction of imports (docs/architecture.md): no domain imports what sits on top of it."""

from __future__ import annotations

import ast
from pathlib import Path

import bastion

SRC = Path(bastion.__file__).parent
#: What sits on top: the CLI, the app factories and pages, the demo. They may import any domain; none imports them.
TOP = ("bastion.cli", "bastion.web", "bastion.demo")


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_domain_imports_the_cli_the_web_layer_or_the_demo() -> None:
    upward: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(("bastion", *path.relative_to(SRC).with_suffix("").parts))
        if module.startswith(TOP) or module in ("bastion.__main__",) or "migrations" in path.parts:
            continue
        upward += [f"{module} imports {name}" for name in sorted(_imports(path))
                   if any(name == top or name.startswith(top + ".") for top in TOP)]
    assert upward == []
