"""The module structure holds: the layers, no import cycle, small plugin contracts, headless figures, and a
module map (docs/architecture.md) that names every module.

Imports are counted wherever they are written: at module level, under ``if TYPE_CHECKING:`` and inside
functions. A function-level import is still a dependency (it runs on the first call), and a type-only one
still ties the two modules' designs together.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bench"

# Top to bottom. A name covers that module and, for a package, every module under it. The package root
# (bench/__init__.py) is in no layer: every bench import runs it first, so it may only pin the numerics
# and export hookimpl (test_the_package_root_imports_only_the_pins_and_hookimpl).
LAYERS: dict[str, tuple[str, ...]] = {
    "cli": ("bench.cli", "bench.__main__"),  # the command line: a thin layer
    "api": ("bench.api",),  # the Python API for notebooks: beside the command line, over the same layers
    "sweep": ("bench.sweep",),  # many experiments on one machine or a cluster
    "experiments": ("bench.experiments",),  # the paper's measurements; they return data
    "report": ("bench.report",),  # tables and figures from stored results (beside experiments)
    "stages": ("bench.stages", "bench.execute"),  # the cached stages of a replicate, and training them
    "core": ("bench.config", "bench.presets", "bench.datasets", "bench.data", "bench.models", "bench.training", "bench.fused",
             "bench.pruning", "bench.connectivity", "bench.paths", "bench.cache", "bench.cache_doctor", "bench.stage_checks",
             "bench.seeding", "bench.stats", "bench.provenance", "bench.numerics", "bench.plugins", "bench.progress",
             "bench.batchlog", "bench.results", "bench.sizes", "bench.testing", "bench.submission", "bench.interpolation",
             "bench.search_rule", "bench.allocator"),
    "contracts": ("bench.perturbation", "bench.pretraining", "bench.pruning_strategy", "bench.hookspecs", "bench.errors",
                  "bench.plugin_guard",
                  "bench.tracking"),  # for plugins
}
_BELOW_EXPERIMENTS = {"stages", "core", "contracts"}
# what each layer may import: its own layer and those below it; report sits beside experiments, and neither
# imports the other (experiments return data, the command line draws it)
MAY_IMPORT: dict[str, set[str]] = {
    "cli": set(LAYERS),
    "api": set(LAYERS) - {"cli"},
    "sweep": {"sweep", "experiments"} | _BELOW_EXPERIMENTS,
    "experiments": {"experiments"} | _BELOW_EXPERIMENTS,
    "report": {"report", "core", "contracts"},
    "stages": _BELOW_EXPERIMENTS,
    "core": {"core", "contracts"},
    "contracts": {"contracts"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The bench modules ``path`` imports anywhere in its source (module level, TYPE_CHECKING, functions)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]  # `from bench import paths`
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("bench") and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = _imports(path, modules)
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


def _layer(module: str) -> str | None:
    found = [layer for layer, names in LAYERS.items()
             for n in names if module == n or module.startswith(n + ".")]
    return found[0] if len(found) == 1 else None


def test_every_module_is_in_exactly_one_layer():
    unplaced = sorted(m for m in _modules() if m != "bench" and _layer(m) is None)
    assert not unplaced, f"add these modules to LAYERS in tests/test_architecture.py: {unplaced}"


def test_the_layers_import_downwards_only():
    wrong = []
    for module, deps in _graph().items():
        if module == "bench":
            continue
        for dep in sorted(deps - {"bench"}):
            if _layer(dep) not in MAY_IMPORT[_layer(module)]:
                wrong.append(f"{module} ({_layer(module)}) -> {dep} ({_layer(dep)})")
    assert not wrong, "imports against the layers: " + "; ".join(wrong)


def test_the_package_root_imports_only_the_pins_and_hookimpl():
    assert _graph()["bench"] <= {"bench.numerics", "bench.hookspecs"}


def test_no_import_cycle_at_any_depth():
    graph = _graph()
    cycles = sorted(name for name in graph if name in _closure(graph, name) and name != "bench")
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_plugin_contracts_do_not_load_the_harness():
    graph = _graph()
    allowed = {"bench", "bench.errors", "bench.perturbation", "bench.hookspecs", "bench.plugin_guard"}
    for contract in LAYERS["contracts"]:
        loaded = _closure(graph, contract)
        assert loaded <= allowed, f"{contract} loads {sorted(loaded - allowed)}"


def test_training_loop_does_not_depend_on_the_fused_path():
    assert "bench.fused" not in _closure(_graph(), "bench.training")


def test_the_module_map_names_every_module():
    """docs/architecture.md names every module by its path under bench/ (e.g. `experiments/trace.py`)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    named = {name.removeprefix("bench/") for name in re.findall(r"[\w/]+\.py", text)}
    missing = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                     if p.relative_to(PACKAGE).as_posix() not in named)
    assert not missing, f"docs/architecture.md does not name: {missing}"


def test_the_cli_imports_on_its_own_and_leaves_matplotlib_alone():
    # a fresh interpreter: a cycle would fail here whatever the tests imported before
    code = ("import bench.cli, sys; import matplotlib; "
            "import bench.report.figures; assert 'matplotlib.pyplot' not in sys.modules, 'pyplot loaded'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
