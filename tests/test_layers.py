"""The layers in docs/architecture.md hold: no module imports from a layer above its own, lazy imports
included, and the packages import each other without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "affectlab"

# Lower number = lower layer. A module may import from its own layer or any lower one.
LAYERS = {
    "errors": 0, "io": 0, "plots": 0, "imports": 0, "__init__": 0, "__main__": 7,
    "data": 1,
    "nn": 2,
    "losses": 3, "metrics": 3,
    "methods": 4,
    "runs": 5, "inference": 5,
    "experiments": 6, "api": 6,
    "cli": 7,
}
# The package namespace sits on top: it hands out affectlab.load and affectlab.train, imported lazily from api.
LAYERS["__init__"] = 7


def _package(module: str) -> str:
    """``affectlab.data.readers.folders`` -> ``data``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    relative = path.relative_to(SRC.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every ``affectlab.*`` module imported anywhere in the file (inside functions too), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return [(line, name) for line, name in found if name == "affectlab" or name.startswith("affectlab.")]


FILES = sorted(SRC.rglob("*.py"))


def test_every_package_has_a_layer():
    unknown = sorted({_package(_module_name(p)) for p in FILES} - set(LAYERS))
    assert not unknown, f"add these packages to LAYERS here and in docs/architecture.md: {unknown}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_runs_up_a_layer(path):
    own = LAYERS[_package(_module_name(path))]
    upward = [f"line {line}: {name}" for line, name in _imports(path)
              if name != "affectlab" and LAYERS.get(_package(name), 0) > own]
    assert not upward, f"{path.relative_to(SRC)} (layer {own}) imports from higher layers: {upward}"


def test_packages_import_each_other_without_cycles():
    edges: dict[str, set[str]] = {}
    for path in FILES:
        source = _package(_module_name(path))
        for _, name in _imports(path):
            target = _package(name)
            if target != source and name != "affectlab":
                edges.setdefault(source, set()).add(target)

    def visit(node: str, trail: list[str]) -> None:
        if node in trail:
            raise AssertionError("import cycle between packages: " + " -> ".join(trail[trail.index(node):] + [node]))
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, trail + [node])

    for start in sorted(edges):
        visit(start, [])
