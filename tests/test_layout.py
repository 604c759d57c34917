"""The house rules the code must keep (issue "the relying-party shell", STYLE §9): the apps import
nothing from `idp/`, and from `shared/` only the names `shared/__init__.py` publishes; `shared/`
never imports from `idp/` or `apps/`. Issue 11 (STYLE §3, "signals between features"): no module
reaches back up through a circle of imports, not even from inside a function; the domain core
(`idp/core/`) imports neither Flask nor the OIDC layer nor any web module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in a Python file, wherever it stands in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


PACKAGES = ("idp", "shared", "apps")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module → the repository's modules it imports, at the top of the file or inside a function
    (`from package import module` counts as importing the module)."""
    files = {_module_name(path): path for package in PACKAGES for path in _python_files(package)}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level-1 packages
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                found = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in files]
                targets.update(found or [base])
        graph[name] = {target for target in targets if target in files and target != name}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_circle_of_imports() -> None:
    graph = _import_graph()
    assert "idp.core.accounts" in graph and "apps.sam.models" in graph  # the walk found the packages
    circles = _circles(graph)
    described = [" ↔ ".join(c) + " (" + "; ".join(f"{m} → {', '.join(sorted(graph[m] & set(c)))}" for m in c) + ")"
                 for c in circles]
    assert not described, "import circles:\n" + "\n".join(described)


def test_the_circle_finder_sees_function_level_imports(tmp_path: Path) -> None:
    """The walk and the finder themselves: a circle closed inside a function body is a circle."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from idp.oidc import logout\n")
    assert [module for _, module, _ in _imports(source)] == ["idp.oidc"]


# What the domain core may import from the repository (STYLE §3: it knows nothing of Flask).
CORE_MAY_IMPORT = ("idp.core", "idp.models", "idp.directory", "shared")
FLASK = ("flask", "flask_", "werkzeug")


def _imports_flask(module: str, graph: dict[str, set[str]], seen: set[str] | None = None) -> bool:
    """Whether a repository module imports Flask, itself or through the repository's modules,
    including the packages' `__init__` files Python runs to import it (`shared.locking` runs
    `shared/__init__.py`). The `idp` package's own `__init__` aside: it is the service's factory,
    in which the core runs."""
    seen = seen if seen is not None else set()
    if module in seen:
        return False
    seen.add(module)
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    if any(name.startswith(FLASK) for _, name, _ in _imports(path)):
        return True
    parts = module.split(".")
    packages = {".".join(parts[:i]) for i in range(1, len(parts))} - {"idp"}
    return any(_imports_flask(target, graph, seen) for target in sorted(graph[module] | packages))


@pytest.mark.parametrize("path", _python_files("idp/core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_knows_nothing_of_flask_nor_oidc(path: Path) -> None:
    graph = _import_graph()
    for line, module, _names in _imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        assert not module.startswith(FLASK), f"{where} imports {module}"
        if module.split(".")[0] in PACKAGES:
            assert module.startswith(CORE_MAY_IMPORT), f"{where} imports {module} (not the core, models or directory)"
            if module.startswith(("idp.models", "idp.directory", "shared")):
                assert not _imports_flask(module, graph), f"{where} imports {module}, which imports Flask"


def test_the_flask_finder_follows_the_shell_and_its_package() -> None:
    """The walk itself: the shell's web layer imports Flask; a module importing it does too."""
    graph = _import_graph()
    assert _imports_flask("shared.web", graph) and _imports_flask("shared.factory", graph)
    assert not _imports_flask("shared.locking", graph) and not _imports_flask("shared", graph)


def test_the_shell_modules_the_core_uses_load_no_flask() -> None:
    """At run time too: importing them (and so `shared/__init__.py`) loads neither Flask nor the rest
    of the shell; the public names are still there when an app asks for them."""
    import os
    import subprocess
    import sys

    used = sorted({module for path in _python_files("idp/core") for _, module, _ in _imports(path)
                   if module.startswith("shared.")})
    assert "shared.locking" in used
    code = (f"import sys\nimport {', '.join(used)}\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'werkzeug', 'flask_babel', "
            "'flask_wtf', 'flask_login', 'flask_sqlalchemy') or m in ('shared.factory', 'shared.web'))\n"
            "assert not loaded, loaded\n"
            "from shared import CONFLICT_MESSAGE, StaleVersion, create_app\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", _python_files("apps"), ids=lambda p: str(p.relative_to(ROOT)))
def test_apps_import_only_the_shells_public_names(path: Path) -> None:
    import shared

    for line, module, names in _imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        assert module != "idp" and not module.startswith("idp."), f"{where} imports {module}"
        assert not module.startswith("shared."), f"{where} imports {module}: use `from shared import ...`"
        if module == "shared":
            unknown = [n for n in names if n not in shared.__all__]
            assert not unknown, f"{where} imports {unknown}, not public in shared/__init__.py"


@pytest.mark.parametrize("path", _python_files("shared"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_shell_stands_on_its_own(path: Path) -> None:
    for line, module, _names in _imports(path):
        assert not module.startswith(("idp", "apps")), f"{path.relative_to(ROOT)}:{line} imports {module}"
