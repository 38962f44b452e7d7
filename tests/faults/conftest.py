"""Fault-suite fixtures: scale (small in `make test`, full standalone) and the results table."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from welfare.faults.harness import Counts, FaultEnv

HEADERS = ["scenario", "attempted", "confirmed", "stored", "lost", "duplicated", "s", "notes"]
RESULTS: list[Counts] = []
DOC = Path(__file__).parents[2] / "docs" / "reliability.md"


@dataclass(frozen=True)
class Scale:
    """How much traffic each scenario drives."""

    name: str
    devices: int
    taps: int  # per device
    rate: float  # taps per second per device
    backlog: int  # events of the long-offline device


SCALES = {
    "small": Scale("small", devices=3, taps=150, rate=60, backlog=2_000),
    "full": Scale("full", devices=5, taps=1_500, rate=100, backlog=30_000),
}


@pytest.fixture(scope="session")
def scale() -> Scale:
    """WELFARE_FAULT_SCALE=full for the standalone run; small inside `make test`."""
    return SCALES[os.environ.get("WELFARE_FAULT_SCALE", "small")]


@pytest.fixture
def fault_env(tmp_path: Path, scale: Scale, request: pytest.FixtureRequest) -> Iterator[FaultEnv]:
    """A fresh set of servers per scenario."""
    consumers = getattr(request, "param", 1)
    env = FaultEnv(tmp_path, devices=scale.devices, consumers=consumers)
    try:
        yield env
    finally:
        env.close()


def record(counts: Counts) -> None:
    """Keep a scenario's counts for the summary table."""
    RESULTS.append(counts)


def table() -> str:
    """The results as a Markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(str(v) for v in c.row()) + " |" for c in RESULTS]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the Jepsen-style table; with WELFARE_FAULT_REPORT=1 also write it to the doc."""
    if not RESULTS:
        return
    scale_name = os.environ.get("WELFARE_FAULT_SCALE", "small")
    terminalreporter.write_sep("=", f"fault scenarios ({scale_name} scale)")
    terminalreporter.write_line(table())
    if os.environ.get("WELFARE_FAULT_REPORT") and DOC.exists():
        text = DOC.read_text()
        block = f"<!-- faults:begin -->\nScale: {scale_name}.\n\n{table()}\n<!-- faults:end -->"
        DOC.write_text(
            re.sub(r"<!-- faults:begin -->.*<!-- faults:end -->", block, text, flags=re.S)
        )
