"""The package's layers (docs/ARCHITECTURE.md): every import, at the top of a file or inside a function,
goes from a higher layer to a lower one, and no module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rcnn_cli"

#: Top to bottom. A package may import from its own package and from lower layers only; packages on
#: one layer do not import each other (so training and inference share what they need through models).
LAYERS: list[set[str]] = [
    {"cli"},
    {"report"},
    {"pictures"},
    {"training", "inference"},
    {"proposals", "evaluation"},
    {"data", "models"},
    {"rpn", "rcnn"},
    {"ops", "artifacts", "fingerprints", "locks", "folder_swap"},
    {"errors", "boxes", "progress", "lazy", "temporaries", "limits", "__init__"},
]
RANK = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def _package(module: str) -> str:
    """rcnn_cli.inference.detect -> inference; rcnn_cli.errors -> errors; rcnn_cli -> __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """Every rcnn_cli module that ``path`` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("rcnn_cli"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "rcnn_cli":  # from rcnn_cli import ops, __version__
                found.update(
                    f"rcnn_cli.{a.name}" if a.name != "__version__" else "rcnn_cli" for a in node.names
                )
            elif node.module.startswith("rcnn_cli."):
                found.add(node.module)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): imports_of(p) for p in sorted(SRC.rglob("*.py"))}


def test_every_package_has_a_layer() -> None:
    packages = {_package(m) for m in _graph()}
    assert packages <= set(RANK), f"give these a layer in LAYERS and ARCHITECTURE.md: {packages - set(RANK)}"


def test_imports_go_down_the_layers() -> None:
    wrong = []
    for module, imported in _graph().items():
        for target in imported:
            a, b = _package(module), _package(target)
            if a != b and RANK[b] <= RANK[a]:
                wrong.append(f"{module} imports {target} ({a} is not above {b})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circle() -> None:
    graph = _graph()
    known = set(graph)

    def resolve(name: str) -> str | None:  # "rcnn_cli.proposals.storage.X" -> the module that exists
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: {t for t in map(resolve, targets) if t and t != m} for m, targets in graph.items()}
    # A package's __init__ that re-exports its modules is not a way back into them.
    for module in edges:
        edges[module] = {t for t in edges[module] if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The test above can fail: a lazy import inside a function is found like a top-level one."""
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from rcnn_cli.cli.main import cli\n    from rcnn_cli import ops\n")
    assert imports_of(source) == {"rcnn_cli.cli.main", "rcnn_cli.ops"}
