"""The package's shape, checked: no import cycle (function-level imports included), no module over 800
lines, and tests and benches that use growgpt's public names only, so a module's internals can change
without touching another module's tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "growgpt"
MAX_MODULE_LINES = 800


def module_name(path: Path) -> str:
    return ".".join(path.with_suffix("").relative_to(ROOT).parts).removesuffix(".__init__")


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(module: str, tree: ast.AST) -> set[str]:
    """The growgpt modules `module` imports anywhere in its body (top level, functions, TYPE_CHECKING
    blocks alike: a cycle dodged by importing inside a function is still a cycle)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:  # `from growgpt import report`
                    found.add(f"{base}.{alias.name}")
                elif base in MODULES:
                    found.add(base)
    found.discard(module)
    # Importing a submodule runs its package's __init__ too, but growgpt's __init__ files import
    # nothing of the package, so they add no edge worth following.
    return found


def import_graph() -> dict[str, set[str]]:
    return {name: imported_modules(name, ast.parse(path.read_text(encoding="utf-8"))) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None. Depth-first search with three colours."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    tree = ast.parse("def f():\n    from growgpt.model import GPT\n")
    assert imported_modules("growgpt.train", tree) == {"growgpt.model"}  # inside a function counts


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_800_lines(name):
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines"


def private_uses(path: Path) -> list[str]:
    """`from growgpt.x import _y`, `module._y` on an imported growgpt module, and monkeypatch targets
    such as "growgpt.x._y" or setattr(module, "_y", ...) in a test or bench file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = set()  # local names bound to growgpt modules
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("growgpt"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    uses.append(f"line {node.lineno}: from {node.module} import {alias.name}")
                elif f"{node.module}.{alias.name}" in MODULES:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("growgpt"):
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = ast.unparse(node.value)
            if owner.split(".")[0] in modules:
                uses.append(f"line {node.lineno}: {owner}.{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("growgpt."):
            if any(part.startswith("_") and not part.startswith("__") for part in node.value.split(".")):
                uses.append(f"line {node.lineno}: {node.value!r}")
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("setattr") and len(node.args) >= 2
              and ast.unparse(node.args[0]).split(".")[0] in modules and isinstance(node.args[1], ast.Constant)
              and str(node.args[1].value).startswith("_")):
            uses.append(f"line {node.lineno}: setattr({ast.unparse(node.args[0])}, {node.args[1].value!r})")
    return uses


USERS = sorted([*ROOT.joinpath("tests").glob("*.py"), *ROOT.joinpath("bench").glob("*.py")])


@pytest.mark.parametrize("path", USERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_tests_and_benches_use_public_names_only(path):
    assert private_uses(path) == [], f"{path.relative_to(ROOT)} reaches into growgpt's private names"


def test_the_private_name_check_sees_each_form(tmp_path):
    sample = tmp_path / "t.py"
    sample.write_text("from growgpt.grow import _start_from, grow\nimport growgpt.report as report\n"
                      "from growgpt.wiki import extract as ex\nfrom growgpt import report as r2\n"
                      "x = report._curves\ny = ex._PageParser()\nz = report.curves\n"
                      "monkeypatch.setattr('growgpt.dumps._OPEN', 1)\nmonkeypatch.setattr(r2, '_pair', 1)\n")
    found = sorted(use.split(": ", 1)[1] for use in private_uses(sample))
    assert found == sorted(["from growgpt.grow import _start_from", "report._curves", "ex._PageParser",
                            "'growgpt.dumps._OPEN'", "setattr(r2, '_pair')"])


def test_no_temporary_shim_is_left():
    left = [str(p.relative_to(ROOT)) for p in [*MODULES.values(), *USERS]
            if p.name != "test_structure.py" and "TEMPORARY SHIM" in p.read_text(encoding="utf-8")]
    assert left == [], f"issue 14's temporary re-exports are still in {left}"
