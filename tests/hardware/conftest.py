"""Fixtures for the drivers: a sink that records what readers report, and the meal-hall agent.

Driver-only tests report to `RecordingSink`. The reader tests that follow a card all the way
to a stored attendance wire their reader through the agent's `ReaderHub`, as the kiosk does
(tests/edge_agent/meal_hall.py: the agent, its roster and `RecordingHub`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker.models import ReaderState
from broker.vocabulary import Method
from edge_agent.agent import EdgeAgent
from tests.edge_agent.meal_hall import meal_hall_agent


class RecordingSink:
    """A `ReaderSink` that keeps every read and health change, in order (no agent at all)."""

    def __init__(self) -> None:
        """Start with nothing reported."""
        self.reads: list[tuple[str, str, Method]] = []
        self.history: list[tuple[str, ReaderState]] = []

    async def credential(self, reader: str, raw: str, method: Method) -> None:
        """Keep the raw identifier exactly as the reader produced it."""
        self.reads.append((reader, raw, method))

    def reader_state(self, reader: str, state: ReaderState) -> None:
        """Keep the health change."""
        self.history.append((reader, state))


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[EdgeAgent]:
    """A started edge agent without a broker, roster loaded, clock fixed at lunch."""
    async with meal_hall_agent(tmp_path) as started:
        yield started
