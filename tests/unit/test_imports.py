"""No import cycle in hetero, function-level imports included: read from the source with ast, relative imports
resolved, `if TYPE_CHECKING:` left out; `from pkg import name` is an edge to pkg.name if that is a module."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import hetero

ROOT = Path(hetero.__file__).parent


def _roots() -> dict[str, Path]:
    """Package name -> its folder: hetero, and hetero.gui, which is installed from gui/ outside it."""
    roots = {"hetero": ROOT}
    spec = importlib.util.find_spec("hetero.gui")
    if spec is not None and spec.submodule_search_locations:
        roots["hetero.gui"] = Path(list(spec.submodule_search_locations)[0])
    return roots


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the package."""
    out = {}
    for package, root in _roots().items():
        for path in sorted(root.rglob("*.py")):
            parts = tuple(package.split(".")) + path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Import statements anywhere in the tree except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _targets(name: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]) -> set[str]:
    def known(dotted: str) -> str | None:
        """The longest prefix of dotted that is a hetero module."""
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in modules:
                return ".".join(parts[:n])
        return None

    found = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] == "hetero":
                found.add(known(alias.name))
        return found - {None}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if node.level:
        base_parts = package.split(".")
        base_parts = base_parts[:len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != "hetero":
        return set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        found.add(sub if sub in modules else known(base))
    return found - {None}


def import_graph() -> dict[str, set[str]]:
    """Module -> the hetero modules it imports (anywhere in its source)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in _import_nodes(tree):
            edges |= _targets(name, path, node, modules)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated last) for each strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:  # Tarjan's algorithm; the package is small enough for recursion
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, set(comp)) for comp in components]


def describe(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(c) for c in cycles)


def _cycle_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component (breadth first)."""
    start = min(comp)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, v, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return sorted(comp)


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "hetero.tensor" in graph and "hetero.device" in graph["hetero.tensor"]
    assert "hetero.ops.elementwise" in graph["hetero.nn.functional"]  # relative `from ..ops.x import y`
    assert any(name.startswith("hetero.gui.") for name in graph), "hetero.gui (installed from gui/) is read too"


def test_function_level_and_type_checking_imports():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .device import Device\n"
        "def f():\n    from .autograd import backward\n    import hetero.memory\n"
    )
    modules = {"hetero.tensor": ROOT / "tensor.py", "hetero.device": ROOT / "device.py",
               "hetero.autograd": ROOT / "autograd.py", "hetero.memory": ROOT / "memory.py"}
    edges = set()
    for node in _import_nodes(ast.parse(source)):
        edges |= _targets("hetero.tensor", ROOT / "tensor.py", node, modules)
    assert edges == {"hetero.autograd", "hetero.memory"}


def test_find_cycles_reports_a_path():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles in hetero (one shown per group of modules that import each other):\n" + \
        describe(cycles)
