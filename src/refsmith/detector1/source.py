"""The installed jwst's calwebb_detector1 step order, read from its source with :mod:`ast`.

``jwst`` is found, never imported (importing it takes seconds and pulls in CRDS). Used by
:func:`refsmith.detector1.steps.installed_step_orders`, which falls back to refsmith's own
table when the source cannot be read or holds a step refsmith does not know.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

from refsmith.detector1.keywords import STEP_KEYWORDS

log = logging.getLogger(__name__)


def detector1_source() -> Path | None:
    """Path of the installed ``jwst/pipeline/calwebb_detector1.py`` (jwst is not imported)."""
    try:
        spec = importlib.util.find_spec("jwst")  # top-level: finds, does not import
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "pipeline" / "calwebb_detector1.py"
        if path.is_file():
            return path
    return None


def derive_step_orders(source: Path | str) -> dict[str, tuple[str, ...]] | None:
    """Parse ``Detector1Pipeline.process`` and return its step order per branch.

    Collects the ``self.<step>.run(...)`` calls in source order. At the ``if`` whose test
    compares with ``"MIRI"`` the MIRI order takes the ``if`` body and the near-infrared
    order the ``else`` body; other ``if`` statements contribute both branches (each step
    counted once, at its first call).

    Returns
    -------
    dict or None
        ``{'NIR': steps, 'MIRI': steps}``, or None when the file cannot be read or parsed,
        has no MIRI branch, or names a step refsmith does not know.
    """
    try:
        tree = ast.parse(Path(source).read_text(encoding="utf-8"))
        process = _find_process(tree)
        if process is None:
            return None
        orders: dict[str, tuple[str, ...]] = {}
        for branch in ("NIR", "MIRI"):
            found: list[str] = []
            seen_miri = _collect_runs(process.body, branch == "MIRI", found)
            if not seen_miri:
                return None
            steps = tuple(dict.fromkeys(found))
            if not steps or any(step not in STEP_KEYWORDS for step in steps):
                log.warning("unexpected calwebb_detector1 steps %s; using the fallback table",
                            [s for s in steps if s not in STEP_KEYWORDS])
                return None
            orders[branch] = steps
        return orders
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None


def _find_process(tree: ast.Module) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Detector1Pipeline":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "process":
                    return item
    return None


def _is_miri_test(test: ast.expr) -> bool:
    return isinstance(test, ast.Compare) and any(
        isinstance(n, ast.Constant) and n.value == "MIRI"
        for n in (test.left, *test.comparators)
    )


def _collect_runs(body: Sequence[ast.stmt], miri: bool, found: list[str]) -> bool:
    """Append step names of ``self.<step>.run(...)`` calls in order; True if a MIRI if seen."""
    seen_miri = False
    for statement in body:
        if isinstance(statement, ast.If) and _is_miri_test(statement.test):
            seen_miri = True
            _collect_runs(statement.body if miri else statement.orelse, miri, found)
            continue
        if isinstance(statement, ast.If):
            seen_miri |= _collect_runs(statement.body, miri, found)
            seen_miri |= _collect_runs(statement.orelse, miri, found)
            continue
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "run"
                and isinstance(node.func.value, ast.Attribute)
                and isinstance(node.func.value.value, ast.Name)
                and node.func.value.value.id == "self"
            ):
                found.append(node.func.value.attr)
    return seen_miri
