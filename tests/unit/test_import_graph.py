"""The imports run one way: parsers <- exporter kernel <- features <- the mailpulse shell.

Read from the source with ``ast`` (lazy imports inside functions count too), so a shortcut taken in a
function body is caught as well as one at the top of a module. Modules are named here by their folder
(``exporter.app``); in code they are imported as ``mailpulse.exporter.app`` (one import package).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("parsers", "exporter", "probes", "mailpulse")


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks never run)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            node.body = []
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {short(name) for name in found}


def short(name: str) -> str:
    """``mailpulse.exporter.app`` -> ``exporter.app`` (the folder it lives in); the shell stays ``mailpulse``."""
    for folder in ("exporter", "parsers", "probes"):
        if name == f"mailpulse.{folder}" or name.startswith(f"mailpulse.{folder}."):
            return name.removeprefix("mailpulse.")
    return name


def bare_imports(path: Path) -> set[str]:
    """Project modules imported by their folder name (``from parsers...``) instead of ``mailpulse.parsers...``:
    in a checkout both work, and the same module would be loaded twice, as two different modules."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found.update(n for n in names if n.split(".")[0] in ("exporter", "parsers", "probes"))
    return found


def modules(package: str) -> dict[str, set[str]]:
    """Module name -> the project modules it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        graph[name] = {m for m in imports_of(path) if m.split(".")[0] in PACKAGES}
    return graph


def offenders(package: str, allowed: tuple[str, ...], *, skip: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        f"{module} imports {imported}"
        for module, imported_set in modules(package).items()
        if not module.startswith(skip)
        for imported in imported_set
        if not imported.startswith(allowed)
    )


def test_project_modules_are_imported_through_the_mailpulse_package() -> None:
    folders = ("exporter", "parsers", "probes", "mailpulse", "tests", "bench", "lab", "dashboards", "scripts")
    paths = [p for f in folders for p in sorted((ROOT / f).rglob("*.py"))
             if not p.is_relative_to(ROOT / "mailpulse") or p.parent == ROOT / "mailpulse"]  # fmt: skip
    assert [] == sorted(f"{p.relative_to(ROOT)}: {m}" for p in paths for m in bare_imports(p))


def test_parsers_import_only_parsers() -> None:
    assert [] == offenders("parsers", ("parsers",))


def test_kernel_knows_no_feature() -> None:
    """exporter/ outside exporter/features/ imports neither a feature nor the shell."""
    assert [] == offenders("exporter", ("parsers", "exporter"), skip=("exporter.features",))
    kernel = {m: i for m, i in modules("exporter").items() if not m.startswith("exporter.features")}
    assert [] == sorted(
        f"{m} imports {i}" for m, imps in kernel.items() for i in imps if i.startswith("exporter.features")
    )


def test_nothing_in_exporter_imports_probes() -> None:
    assert [] == offenders("exporter", ("parsers", "exporter"))


def test_probes_do_not_import_the_shell() -> None:
    assert [] == offenders("probes", ("parsers", "exporter", "probes"))


@pytest.mark.parametrize("package", PACKAGES)
def test_no_cycle_between_modules(package: str) -> None:
    """No import cycle among the project's modules (module level and lazy imports alike)."""
    graph: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        graph.update(modules(pkg))
    # an import of a package means its __init__; an import of a name from a module means the module
    edges = {m: {i for i in imps if i in graph and i != m} for m, imps in graph.items()}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycle.extend([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*path, nxt]):
                return True
        state[node] = 2
        return False

    for start in sorted(m for m in graph if m.split(".")[0] == package):
        if state.get(start) is None and visit(start, [start]):
            break
    assert [] == cycle, " -> ".join(cycle)
