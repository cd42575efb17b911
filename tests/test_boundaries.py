"""Project-wide rules: the engine is frappe-free, and nothing bypasses permissions."""

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import verenigingen

ROOT = Path(verenigingen.__file__).parent
# The Frappe app: its host, DocTypes, public API and bench tests (run by scripts/frappe-test).
FRAPPE_SIDE = (
    "verenigingen.frappe_host",
    "verenigingen.verenigingen.doctype",
    "verenigingen.utils",
    "verenigingen.api",
    "verenigingen.tests",
)


def frappe_free_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(ROOT)], "verenigingen.")]
    return [name for name in names if not name.startswith(FRAPPE_SIDE)]


def test_importing_the_engine_never_imports_frappe():
    modules = frappe_free_modules()
    assert "verenigingen.mijnrood.reader" in modules and "verenigingen.dutch.phone" in modules
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
    code += "print('frappe' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_every_module_imports():
    for name in frappe_free_modules():
        importlib.import_module(name)


BYPASS = re.compile(
    r"ignore_permissions\s*=\s*(True|1)|flags\.ignore_permissions|flags\.in_import|set_user\(\s*['\"]Administrator"
)


def test_no_permission_bypass_anywhere_in_the_app():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in ROOT.rglob("*")
        if path.suffix in {".py", ".js"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if BYPASS.search(line)
    ]
    assert offenders == []
