"""Every package ``src/refsmith`` imports is declared in pyproject.toml, and nothing more."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parents[1]
SOURCE = ROOT / "src" / "refsmith"


def imported_packages() -> dict[str, set[str]]:
    """Top-level names of the third-party modules imported anywhere in src/refsmith
    (lazy imports inside functions included) -> the files importing them."""
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top != "refsmith":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> tuple[set[str], set[str]]:
    """(required, optional) distribution names of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(specs: list[str]) -> set[str]:
        return {normalized(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in specs}

    optional = set().union(*map(names, project.get("optional-dependencies", {}).values()))
    return names(project["dependencies"]), optional


OPTIONAL_USERS = ("src/refsmith/execute/dask.py", "src/refsmith/execute/jobqueue.py")
"""Modules that may import packages of an extra (``[dask]``): imported only when used."""


def test_every_imported_package_is_declared():
    distributions = packages_distributions()
    required, optional = declared()
    missing = []
    for module, files in sorted(imported_packages().items()):
        dists = {normalized(d) for d in distributions.get(module, [module])}
        allowed = required | (optional if set(files) <= set(OPTIONAL_USERS) else set())
        if not dists & allowed:
            missing.append(f"{module} ({', '.join(sorted(dists))}) imported by "
                           f"{', '.join(sorted(files))}")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)


def test_every_declared_package_is_imported():
    distributions = packages_distributions()
    used = {normalized(d) for module in imported_packages()
            for d in distributions.get(module, [module])}
    required, _ = declared()
    assert required <= used, f"declared but never imported: {sorted(required - used)}"


def test_the_check_sees_lazy_imports():
    found = imported_packages()
    assert "src/refsmith/report/plots.py" in found["matplotlib"]  # inside functions only
    assert "yaml" in found and "numpy" in found
