"""The entry-point layers import only downwards: runs and inference (5) < experiments < cli (6), lazy
imports included (``affectlab.experiments.train`` builds the CLI object, so it must live below ``cli``)."""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT

PACKAGE = ROOT / "src/affectlab"
FORBIDDEN = {
    "runs": ("affectlab.cli", "affectlab.experiments"),
    "inference.py": ("affectlab.cli", "affectlab.experiments", "affectlab.runs"),
    "experiments": ("affectlab.cli",),
}


def imported_modules(path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_import_runs_up_a_layer(part):
    target = PACKAGE / part
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    upward = {f"{path.relative_to(PACKAGE)}: {module}" for path in files for module in imported_modules(path)
              if module.startswith(FORBIDDEN[part])}
    assert upward == set()
