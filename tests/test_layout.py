"""The house rules the code must keep (issue "the relying-party shell", STYLE §9): the apps import
nothing from `idp/`, and from `shared/` only the names `shared/__init__.py` publishes; `shared/`
never imports from `idp/` or `apps/`."""

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
