"""`make run` on a fresh clone installs only what serving needs (requirements.txt); the targets
that test, lint, type-check, benchmark or generate a client add requirements-dev.txt. Checked
on the Makefile's own commands for a venv that does not exist yet (`make -n`), on the pins, and
on what the service really imports."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    """A requirement's project name, normalised (PEP 503)."""
    bare = re.split(r"[=<>!~;\[ ]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def _pins(path: Path) -> set[str]:
    """The projects a requirements file installs, following its `-r` includes."""
    names: set[str] = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            names |= _pins(path.parent / line.removeprefix("-r ").strip())
        elif line:
            names.add(_name(line))
    return names


RUNTIME = _pins(ROOT / "requirements.txt")
DEVELOPMENT_ONLY = _pins(ROOT / "requirements-dev.txt") - RUNTIME


def _dry_run(target: str, tmp_path: Path) -> str:
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"VENV={tmp_path / 'fresh-venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_run_installs_the_runtime_pins_alone(tmp_path: Path) -> None:
    commands = _dry_run("run", tmp_path)
    assert "-m venv" in commands
    assert "-r requirements.txt" in commands
    assert "requirements-dev.txt" not in commands
    assert commands.rstrip().endswith("-m app serve")


@pytest.mark.parametrize("target", ["test", "lint", "typecheck", "client"])
def test_development_targets_add_the_development_set(target: str, tmp_path: Path) -> None:
    commands = _dry_run(target, tmp_path)
    assert commands.index("-r requirements.txt") < commands.index("-r requirements-dev.txt")


def test_no_development_tool_is_a_runtime_pin() -> None:
    assert {"pytest", "mypy", "ruff", "playwright", "openapi-python-client"} <= DEVELOPMENT_ONLY
    assert not RUNTIME & {"pytest", "mypy", "ruff", "playwright", "schemathesis", "hypothesis"}


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"app"}


def test_everything_the_service_imports_is_a_runtime_pin() -> None:
    providers = packages_distributions()
    imported = _third_party_imports()
    assert {"fastapi", "sqlalchemy", "mcp"} <= imported
    unpinned = {
        module: providers.get(module)
        for module in imported
        if not {_name(d) for d in providers.get(module, [])} & RUNTIME
    }
    assert not unpinned, "imported by app/ but not in requirements.txt"


def test_serving_loads_no_development_tool() -> None:
    """The app built as `make run` builds it (every route, the MCP server, the docs) loads no
    module of a development-only project."""
    script = (
        "import sys\n"
        "from app.main import openapi_document\n"
        "import app.__main__, app.launcher\n"
        "from app.config import load_settings\n"
        "openapi_document(load_settings())\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "DATA_DIR": "/nonexistent"},
    )
    assert result.returncode == 0, result.stderr
    providers = packages_distributions()
    loaded = {
        module: sorted({_name(d) for d in providers.get(module, [])} & DEVELOPMENT_ONLY)
        for module in result.stdout.split()
    }
    assert not {module: tools for module, tools in loaded.items() if tools}
