"""The module structure holds: no import cycle, small plugin contracts, headless figures."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bench"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(path: Path) -> set[str]:
    """The bench modules ``path`` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    found: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("bench"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)  # `from bench import paths`
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body + getattr(node, "orelse", []) + getattr(node, "finalbody", []))

    visit(ast.parse(path.read_text()).body)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = {d for d in _module_level_imports(path) if d in modules and d != name}
        # importing bench.x.y runs bench/x/__init__.py first, unless that package is this module's own
        # ancestor (then it is already being imported, which is how a package loads its submodules)
        parents = {".".join(d.split(".")[:i]) for d in deps for i in range(2, d.count(".") + 1)}
        graph[name] = deps | {p for p in parents if p in modules and p != name and not name.startswith(p + ".")}
    return graph


def _closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_no_module_level_import_cycle():
    graph = _graph()
    cycles = sorted(name for name in graph if name in _closure(graph, name) and name != "bench")
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_plugin_contracts_do_not_load_the_harness():
    graph = _graph()
    allowed = {"bench", "bench.errors", "bench.perturbation", "bench.hookspecs"}
    for contract in ("bench.perturbation", "bench.pretraining", "bench.pruning_strategy", "bench.hookspecs",
                     "bench.errors"):
        loaded = _closure(graph, contract)
        assert loaded <= allowed, f"{contract} loads {sorted(loaded - allowed)}"


def test_training_loop_does_not_depend_on_the_fused_path():
    assert "bench.fused" not in _closure(_graph(), "bench.training")


def test_the_cli_imports_on_its_own_and_leaves_matplotlib_alone():
    # a fresh interpreter: a cycle would fail here whatever the tests imported before
    code = ("import bench.cli, sys; import matplotlib; "
            "import bench.report.figures; assert 'matplotlib.pyplot' not in sys.modules, 'pyplot loaded'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
