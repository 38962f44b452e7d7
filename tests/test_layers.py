"""The layers of docs/architecture.md hold, and the import-linter contract would catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("broker", "hardware", "edge_agent", "kiosk_app", "ingest_api", "welfare")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Run the project's contracts (or only the ones named) over the packages in `tree`."""
    only = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT), str(tree / "pyproject.toml"), "--no-cache", *only],
        cwd=tree,
        env=dict(os.environ, PYTHONPATH=str(tree)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the product's packages and contracts, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_code_keeps_every_contract(tree: Path) -> None:
    """Today's code: every contract kept."""
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("hardware/readers.py", "import edge_agent.agent", "kiosk-side"),
        ("broker/models.py", "import welfare.demo", "kiosk-side"),
        ("edge_agent/store.py", "import ingest_api.core.db", "sides-apart"),
        ("ingest_api/registry/store.py", "import ingest_api.figures.engine", "center-inside"),
        ("ingest_api/figures/engine.py", "import welfare.sample.city", "center-side"),
        ("broker/topics.py", "import paho.mqtt.client", "vocabulary-leaf"),
    ],
)
def test_a_wrong_way_import_breaks_a_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    """One import added the wrong way fails `lint-imports`: that very contract is broken."""
    assert _lint(tree, contract).returncode == 0
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # noqa: E402, F401\n")
    result = _lint(tree, contract)
    assert result.returncode != 0
    assert "1 broken" in result.stdout, result.stdout
