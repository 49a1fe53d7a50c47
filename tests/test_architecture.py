"""The package layout holds: every package's names resolve, no private name crosses a module.

The layers themselves are import-linter's contracts (pyproject.toml, ``lint-imports`` in
``make test``); these are what it cannot see.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import refsmith

SRC = Path(refsmith.__file__).parent
PACKAGES = ["refsmith", *sorted(
    info.name for info in pkgutil.walk_packages(refsmith.__path__, "refsmith.")
    if info.ispkg and not info.name.endswith(".builtin")
)]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves_to_what_its_module_holds(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__all__ == sorted(package.__all__)
    for exported in package.__all__:
        value = getattr(package, exported)
        # a module of the same name would replace the name once imported
        assert not isinstance(value, types.ModuleType), f"{name}.{exported} is a module"
        assert importlib.util.find_spec(f"{name}.{exported}") is None, exported
    assert set(package.__all__) <= set(dir(package))


def test_importing_refsmith_imports_nothing_else() -> None:
    code = "import sys, refsmith; print(sorted(m for m in sys.modules if 'refsmith' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['refsmith', 'refsmith.util', 'refsmith.util.lazy']"


def private_imports() -> list[str]:
    """``from refsmith.x import _name`` anywhere in the package."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (
                    node.module or "").startswith("refsmith")):
                found += [f"{path.relative_to(SRC)}: {node.module} {alias.name}"
                          for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def test_no_private_name_is_imported_from_another_module() -> None:
    assert private_imports() == []
