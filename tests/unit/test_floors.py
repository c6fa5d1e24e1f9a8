"""The source tree's floors, drawn from its imports: every import of a soar module points to a lower floor (or stays
inside its own package), and no modules import each other in a circle.

Drawn with ``ast`` from every ``import`` and ``from ... import`` in ``src/soar``, the ones inside functions
(lazy imports) included, since a lazy import is still a dependency."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

FLOORS = [
    {"soar", "soar.errors"},  # the package (its version) and the user-facing error type
    {"soar.types", "soar.io"},  # the contracts between stages; crash-safe file IO
    {"soar.math"},  # answer extraction, Math-Verify, pass@k
    {"soar.algo", "soar.world"},  # the pure algorithm; the designed world's family and model builder
    {"soar.config"},  # the typed config (validates with algo's parser and the world's names)
    {"soar.data"},  # problem sets, splits, prompts, record files
    {"soar.engines"},  # models, generation, decoding primitives, trainers
    {"soar.students"},  # the inner loop: workers and pools
    {"soar.analysis"},  # diversity, learning curves, the judge
    {"soar.loops"},  # recipes: train, evaluate, filter, sample, probe, plan, report
    {"soar.cli"},
    {"soar.__main__"},
]


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "soar").rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the soar modules it imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            targets |= {c for c in candidates if c in mods and c != name}
        edges[name] = targets
    return edges


def floor(name: str) -> tuple[int, str]:
    """(floor number, the package that owns the module on that floor)."""
    for number, owners in enumerate(FLOORS):
        for owner in sorted(owners, key=len, reverse=True):
            if owner == "soar" and name != "soar":
                continue
            if name == owner or name.startswith(owner + "."):
                return number, owner
    raise AssertionError(f"{name} is on no floor: add it to FLOORS in {__file__}")


def test_every_import_points_down_or_stays_in_its_package():
    mods = modules()
    assert "soar.io" in mods and "soar.students.pool" in mods  # the walk sees the tree
    upward = []
    for source, targets in imports(mods).items():
        here, owner = floor(source)
        for target in targets:
            there, other = floor(target)
            if there > here or (there == here and other != owner and source != "soar"):
                upward.append(f"{source} -> {target}")
    assert upward == []


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a circle (Tarjan's strongly connected components)."""
    found: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_modules_import_each_other_in_a_circle():
    assert circles(imports(modules())) == []


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    """The two checks can fail: a fake tree with an upward import and a circle is caught by both."""
    fake = tmp_path / "soar"
    (fake / "math").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "math" / "__init__.py").write_text("")
    (fake / "math" / "a.py").write_text("from soar.loops import train\nfrom soar.math import b\n")
    (fake / "math" / "b.py").write_text("def f():\n    from soar.math.a import x\n")
    (fake / "loops").mkdir()
    (fake / "loops" / "__init__.py").write_text("")
    (fake / "loops" / "train.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    edges = imports(modules())
    assert edges["soar.math.a"] == {"soar.loops", "soar.loops.train", "soar.math", "soar.math.b"}
    assert edges["soar.math.b"] == {"soar.math.a"}
    assert floor("soar.math.a")[0] < floor("soar.loops.train")[0]  # an upward import
    assert circles(edges) == [["soar.math.a", "soar.math.b"]]
