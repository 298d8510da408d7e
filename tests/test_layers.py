"""The layers stay clean (DESIGN.md): checked on every module's source, and at run time.

core (model, query, fmt, view, report, backend, actions, policy, demo): no Textual, no
psutil, nothing of system/, ui/ or cli/. ui/: no psutil, nothing of system/ or cli/.
system/: no Textual, nothing of ui/ or cli/. cli/: Textual only through ui/, and that only
from cli/dashboard.py (the one-shot commands start without it).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "app" / "portside"


def layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    if rel.parts == ("__main__.py",):
        return "cli"  # `python -m portside` is the command line
    return rel.parts[0] if len(rel.parts) > 1 else "core"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports."""
    return imports_of(path.read_text(encoding="utf-8"), module_name(path),
                      path.name == "__init__.py")


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Every module some source imports, at any depth of its code, relative ones resolved."""
    package = module.split(".")
    if not is_package:
        package.pop()
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            # `from . import policy` imports a module too.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


FORBIDDEN = {
    "core": ("textual", "psutil", "portside.system", "portside.ui", "portside.cli"),
    "ui": ("psutil", "portside.system", "portside.cli"),
    "system": ("textual", "portside.ui", "portside.cli"),
    "cli": ("textual",),
}
FILES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    assert {layer(p) for p in FILES} == set(FORBIDDEN)
    assert len(FILES) > 30


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_respect_the_layers(path: Path) -> None:
    bad = sorted(m for m in imports(path) for f in FORBIDDEN[layer(path)]
                 if m == f or m.startswith(f + "."))
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_only_the_dashboard_command_reaches_the_ui() -> None:
    reaching = sorted(p.name for p in (PACKAGE / "cli").glob("*.py")
                      if any(m.startswith("portside.ui") for m in imports(p)))
    assert reaching == ["dashboard.py"]


def test_the_import_walker_sees_relative_and_nested_imports() -> None:
    """The checker itself: an import hidden inside a function, relative or not, is found."""
    source = "def f():\n    from ..system import control\n    import psutil\n"
    found = imports_of(source, "portside.ui.x", False)
    assert {"portside.system", "portside.system.control", "psutil"} <= found
    assert "portside.view" in imports(PACKAGE / "ui" / "table.py")
    assert "portside.policy" in imports(PACKAGE / "system" / "control.py")  # from .. import


def _modules_after(code: str) -> set[str]:
    code += "; import sys; print(' '.join(sys.modules))"
    res = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    return set(res.stdout.split())


def test_core_and_one_shot_commands_do_not_load_textual() -> None:
    mods = _modules_after("import portside.model, portside.query, portside.fmt, portside.view, "
                          "portside.report, portside.backend, portside.actions, "
                          "portside.policy, portside.demo, portside.cli, "
                          "portside.system.sampler, portside.system.control, "
                          "portside.system.probe, portside.system.backend")
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)


def test_ui_does_not_load_psutil_or_the_system_layer() -> None:
    mods = _modules_after("import portside.ui.app, portside.ui.main, portside.ui.table, "
                          "portside.ui.dialogs, portside.ui.details, portside.ui.widgets, "
                          "portside.ui.commands")
    assert "psutil" not in mods
    assert not any(m.startswith("portside.system") for m in mods)


def test_a_listing_does_not_load_psutil() -> None:
    """Importing psutil was 15 ms of a 65 ms `portside list` (Linux reads /proc itself);
    the listing, the table and why run without it."""
    for argv in (["list", "--json"], ["list", "--all"], ["why", "1"]):
        code = (f"import sys, io; from portside.cli import run; "
                f"run({argv!r}, io.StringIO(), io.StringIO(), io.StringIO())")
        mods = _modules_after(code)
        assert "portside.system.sampler" in mods and "psutil" not in mods, argv


def test_a_listing_does_not_load_the_docker_client() -> None:
    """http.client (with ssl and email) costs a one-shot `portside list` ~15 ms: it is
    imported only when Docker's API is asked."""
    mods = _modules_after("import portside.cli.listing, portside.system.sampler, "
                          "portside.system.managers, portside.system.services")
    assert "http.client" not in mods and "portside.system.dockerapi" not in mods
