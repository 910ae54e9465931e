"""The code's shape: small modules and functions, dependencies one way, no import cycle.

Read from the source with ``ast`` (nothing is imported), so it checks function-level imports too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _sources() -> list[Path]:
    files = [*ROOT.glob("fairmoe/**/*.py"), *ROOT.glob("app/**/*.py"), *ROOT.glob("scripts/*.py")]
    return sorted(files) + [ROOT / "train.py"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports anywhere in its body (resolved to the deepest module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import sub` depends on pkg.sub; `from mod import name` on mod
            names = [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def test_modules_and_functions_stay_small() -> None:
    too_long = []
    for path in _sources():
        src = path.read_text()
        rel = path.relative_to(ROOT)
        if len(src.splitlines()) > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {len(src.splitlines())} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    too_long.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    assert not too_long, "split these along their concepts:\n" + "\n".join(too_long)


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in _sources() if p.name != "train.py"}
    known = set(paths)
    return {m: _imports(p, known) - {m} for m, p in paths.items()}


def test_dependencies_point_one_way() -> None:
    graph = _graph()
    wrong = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps if
                   m.startswith("fairmoe") and d.startswith(("app", "scripts")))  # fmt: skip
    assert not wrong, wrong
    for path in ROOT.glob("fairmoe/**/*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
            ui = [m for m in mods if m.split(".")[0] in ("gradio", "plotly", "app")]
            assert not ui, f"{path.relative_to(ROOT)} imports {ui}: the library has no UI"


def test_no_import_cycle() -> None:
    """A package's __init__ may import its submodules; nothing may import back into a cycle."""
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"
