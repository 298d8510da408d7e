"""The layers stay clean: the core never imports Textual, the UI never imports psutil."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def _modules_after(code: str) -> set[str]:
    code += "; import sys; print(' '.join(sys.modules))"
    res = subprocess.run([sys.executable, "-c", code],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    return set(res.stdout.split())


def test_core_does_not_import_textual() -> None:
    mods = _modules_after("import portside.model, portside.query, portside.fmt, portside.view, "
                          "portside.report, portside.backend, portside.demo, portside.cli, "
                          "portside.system.sampler, portside.system.control, "
                          "portside.system.probe, portside.system.backend")
    assert not any(m == "textual" or m.startswith("textual.") for m in mods)


def test_ui_does_not_import_psutil_or_the_system_layer() -> None:
    mods = _modules_after("import portside.ui.app, portside.ui.table, portside.ui.dialogs, "
                          "portside.ui.details")
    assert "psutil" not in mods
    assert not any(m.startswith("portside.system") for m in mods)
