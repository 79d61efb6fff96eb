"""The architecture's rules run: a break makes the suite (and `make lint`) fail.

- the core never imports Dagster (ruff TID251 and an import-linter contract);
- no module imports from a layer above its own (import-linter layers);
- only ``layout.py`` spells store keys;
- the code location loads the way the webserver loads it (one Definitions object).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "image_assets"
BIN = Path(sys.executable).parent


def _ruff(source: str, filename: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "ruff"), "check", "--select", "TID251", "--stdin-filename", filename, "-"],
        input=source,
        text=True,
        capture_output=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(
    "source",
    [
        "import dagster\n",
        "from dagster import asset\n",
        "from dagster_aws.s3 import S3Resource\n",
        "def f():\n    import dagster_duckdb\n",
    ],
)
def test_a_core_module_importing_dagster_fails_lint(source):
    probe = _ruff(source, "image_assets/imaging/probe.py")
    assert probe.returncode == 1 and "TID251" in probe.stdout, probe.stdout
    shell = _ruff(source, "image_assets/defs/vendors/probe.py")
    assert shell.returncode == 0, shell.stdout


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(BIN / "lint-imports"), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=package_parent,
        env=env,
        check=False,
    )


def test_layers_are_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("probe_module", "source", "broken"),
    [
        ("catalog/probe.py", "from image_assets.scraping import http\n", "Layers"),
        ("storage/probe.py", "from image_assets.records import Product\n", None),
        ("records_probe.py", "import image_assets.storage\n", "Layers"),
        ("imaging/probe.py", "from image_assets.cdn import base\n", "Layers"),
        ("uploads/probe.py", "import dagster\n", "The core never imports Dagster"),
    ],
)
def test_an_import_from_a_higher_layer_breaks_the_contract(tmp_path, probe_module, source, broken):
    copy = tmp_path / "image_assets"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / probe_module
    if probe_module == "records_probe.py":  # a ground-floor module importing upwards
        target = copy / "records.py"
        source = target.read_text() + "\n" + source
    target.write_text(source)
    result = _lint_imports(tmp_path)
    if broken is None:
        assert result.returncode == 0, result.stdout
    else:
        assert result.returncode == 1, result.stdout
        assert "1 kept, 1 broken" in result.stdout, result.stdout
        assert broken in result.stdout.split("Broken contracts", 1)[1], result.stdout


# Prefixes of store keys; a string literal that starts with one, outside layout.py, spells a
# key by hand.
KEY_PREFIXES = (
    "state/",
    "audit/",
    "kits/",
    "originals/",
    "renditions/",
    "pages/",
    "uploads/originals",
    "_meta/",
)


def test_only_the_layout_module_spells_store_keys():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            parts: list[str] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts = [node.value]
            elif isinstance(node, ast.JoinedStr):
                parts = [v.value for v in node.values[:1] if isinstance(v, ast.Constant)]
            for text in parts:
                if text.startswith(KEY_PREFIXES) and not re.search(r"\s", text):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert not offenders, "\n".join(offenders)


def test_the_code_location_loads_as_the_webserver_loads_it(tmp_path):
    """`dagster definitions validate` imports the module as a code server does: it refuses,
    among others, a module with more than one Definitions object at module scope."""
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "image_assets.definitions"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "DAGSTER_HOME": str(home), "IMAGE_ASSETS_DATA_DIR": str(tmp_path)},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "All code locations passed validation" in result.stdout + result.stderr
