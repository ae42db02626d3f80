"""Every package the tests, fixtures and benchmarks import is declared in pyproject.toml.

A fresh machine gets only what the project declares (``.ci/run`` makes a new virtual environment
for each run); this test names the undeclared import at once, on any machine, even one where the
package happens to be installed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREES = ("tests", "fixtures", "bench")


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _declared() -> set[str]:
    """The runtime dependencies and those of the test and accel extras, following an extra that
    names another of the project's own (``layerleak[fleet]``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    names = {_name(r) for r in project.get("dependencies", [])}
    todo, seen = ["test", "accel"], set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in extras.get(extra, []):
            own = re.fullmatch(rf"{project['name']}\[([^\]]+)\]", requirement.strip())
            if own:
                todo += [e.strip() for e in own.group(1).split(",")]
            else:
                names.add(_name(requirement))
    return names


def _imports() -> dict[str, set[str]]:
    """Top-level module -> files that import it (``importorskip`` counts too)."""
    found: dict[str, set[str]] = {}
    for tree in TREES:
        for path in (ROOT / tree).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif (
                    isinstance(node, ast.Call)
                    and getattr(node.func, "attr", None) == "importorskip"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    names = [str(node.args[0].value)]
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def _undeclared(imports: dict[str, set[str]], declared: set[str]) -> list[str]:
    local = {p.stem for tree in TREES for p in (ROOT / tree).rglob("*.py")} | {"layerleak"}
    distributions = importlib.metadata.packages_distributions()
    undeclared = []
    for module, files in sorted(imports.items()):
        if module in sys.stdlib_module_names or module in local:
            continue
        providers = {_name(d) for d in distributions.get(module, [module])}
        if not providers & declared:
            undeclared.append(f"{module} (from {', '.join(sorted(providers))}) in {', '.join(sorted(files))}")
    return undeclared


def test_every_imported_package_is_declared() -> None:
    undeclared = _undeclared(_imports(), _declared())
    assert not undeclared, "imported but not in pyproject.toml (dependencies, test or accel):\n" + "\n".join(
        undeclared
    )


def test_the_check_sees_an_undeclared_import() -> None:
    imports = _imports()
    assert {"pytest", "cryptography", "re2", "layerleak", "os"} <= set(imports)
    # re2 is google-re2's module: found through the installed distribution's name
    assert not _undeclared({k: imports[k] for k in ("pytest", "re2", "os", "conftest")}, _declared())
    assert _undeclared({"cryptography": {"tests/services.py"}}, _declared() - {"cryptography"})
    assert _undeclared({"requests_toolbelt": {"tests/x.py"}}, _declared())
