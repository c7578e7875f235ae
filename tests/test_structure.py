"""The shape of the code, checked: core/ is a library in subpackages by concern whose imports point one way (no
cycle, counting imports inside functions too), free of Streamlit; the Streamlit side uses Streamlit's public API only
and patches nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The core modules a file imports anywhere in it (module level and inside functions)."""
    found = set()
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a name imported from a module: the module
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("core"):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = [p for p in CORE.rglob("*.py")]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_core_imports_point_one_way():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_is_subpackages_by_concern_with_few_modules_at_the_top():
    top = sorted(p.name for p in CORE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= 15, top
    packages = sorted(p.name for p in CORE.iterdir() if (p / "__init__.py").exists())
    for package in packages:
        doc = ast.get_docstring(ast.parse((CORE / package / "__init__.py").read_text()))
        assert doc, f"core/{package}/__init__.py says what the package is for"


def test_core_never_imports_streamlit():
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "streamlit" for n in names), f"{path} imports Streamlit"


PUBLIC_STREAMLIT = ("streamlit", "streamlit.components.v1", "streamlit.testing.v1")


def _streamlit_side_files() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]


def test_the_streamlit_side_uses_only_streamlits_public_api():
    """No import from Streamlit's internals (streamlit.runtime, streamlit.web, ...), no private attribute of st, no
    frame tricks."""
    problems = []
    for path in _streamlit_side_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "streamlit":
                if node.module not in PUBLIC_STREAMLIT:
                    problems.append(f"{path.name}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                problems += [
                    f"{path.name}: import {a.name}"
                    for a in node.names
                    if a.name.split(".")[0] == "streamlit" and a.name not in PUBLIC_STREAMLIT
                ]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "st" and node.attr.startswith("_"):
                    problems.append(f"{path.name}: st.{node.attr}")
                if node.value.id == "sys" and node.attr == "_getframe":
                    problems.append(f"{path.name}: sys._getframe")
    assert problems == []


def test_importing_the_pages_shared_modules_changes_nothing_in_the_process():
    """Tuning the server is app.py's explicit call (pages.ui.server.tune_process), never a side effect of an import."""
    import subprocess
    import sys

    probe = (
        "import gc, sys; before = (sys.getswitchinterval(), gc.get_freeze_count()); import keras; "
        "clear = keras.backend.clear_session; "
        "import pages.ui.jobs, pages.ui.menu, pages.ui.resources, pages.ui.server, pages.ui.state, "
        "pages.ui.widgets; "
        "after = (sys.getswitchinterval(), gc.get_freeze_count()); "
        "assert before == after, (before, after); assert keras.backend.clear_session is clear; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().endswith("ok"), out.stderr[-2000:]
