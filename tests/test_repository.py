"""Repository-level promises: the README's fresh-machine commands, CI, and code style."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [block.strip() for block in blocks]


def test_readme_gives_two_fresh_machine_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    quickstart, tests = commands
    assert quickstart.endswith("ember quickstart") and "pytest" in tests
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line and not line.startswith("#")]
    assert tests in ci_lines


def test_core_never_imports_a_plugin():
    for path in (ROOT / "core").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+ember_(vision|text|tabular)", text, re.M), path


@pytest.mark.skipif(shutil.which("ruff") is None and not (ROOT / ".venv/bin/ruff").exists(),
                    reason="ruff not installed")
def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(ROOT / ".venv/bin/ruff")
    result = subprocess.run([ruff, "check", "core", "plugins", "tests", "bench"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_helpers_docs_plugins_md_lists_are_public_names_of_their_modules():
    # docs/plugins.md named no core helper, so the rules for plugins (reuse core's checks:
    # ember.split_label, ember.warn_unseen_classes, ember.utils.check_whole, …) had nowhere to
    # point; every helper the table lists must stay a public name of the module it names
    import importlib

    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split("## Core helpers a plugin reuses", 1)[1]
    listed = re.findall(r"^\| `(ember(?:\.\w+)*)\.(\w+)\(", section, re.M)
    assert len(listed) >= 10
    for module_name, name in listed:
        module = importlib.import_module(module_name)
        assert name in module.__all__ and callable(getattr(module, name)), (module_name, name)
    for new in ("ember.split_label", "ember.warn_unseen_classes", "ember.utils.check_whole",
                "ember.data.check_batch_like_training", "ember.checks.check_metrics"):
        assert f"`{new}(" in section, new
