"""The package's import graph has no cycles: no module imports one that imports it back.

Every `import ddpg.x` and `from ddpg.x import y` counts, at module level and inside functions
alike (a lazy import is still a dependency); imports under `if TYPE_CHECKING:` do not, as they
never run. `from ddpg import x` counts as importing `ddpg.x` when x is a module, else `ddpg`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ddpg

SRC = Path(ddpg.__file__).parent


def module_name(path: Path) -> str:
    parts = ["ddpg", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str) -> set[str]:
    """The package's modules that module `name` imports, anywhere in its body."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in node.orelse:  # the `else:` branch does run
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in MODULES and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_the_walk_sees_lazy_imports_and_skips_type_checking_ones():
    graph = {name: imports_of(name) for name in MODULES}
    assert "ddpg.train" in graph["ddpg.runs"]  # module level
    assert "ddpg.sweep.driver" in graph["ddpg.commands.sweep"]  # inside a function
    assert "ddpg.cudagraph" in graph["ddpg.train"]  # inside a function
    assert "ddpg.train" in graph["ddpg.api"]  # inside a function
    assert "ddpg.agent" not in graph["ddpg.api"]  # for type checking only
    assert len(graph) >= 40


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_has_no_cycles():
    graph = {name: imports_of(name) for name in MODULES}
    assert find_cycle(graph) is None
