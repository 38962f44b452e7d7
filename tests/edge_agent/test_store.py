"""The outbox: due batches in order, resend after a timeout, acknowledge, prune."""

from __future__ import annotations

import time
from uuid import UUID

from edge_agent.agent import EdgeAgent
from tests.edge_agent.conftest import CARDS


async def _tap_many(agent: EdgeAgent, n: int) -> list[UUID]:
    """Make `n` refused taps (unknown cards) and return their ids."""
    ids: list[UUID] = []
    for i in range(n):
        event_id = (await agent.tap(f"FF{i:06X}")).event_id
        assert event_id is not None
        ids.append(event_id)
    return ids


async def test_due_returns_oldest_first_and_respects_limit(agent: EdgeAgent) -> None:
    """The publisher drains in order."""
    ids = await _tap_many(agent, 5)
    rows = await agent.store.due(limit=3, resend_before=time.time())
    assert [r.event_id for r in rows] == ids[:3]


async def test_sent_events_wait_for_the_resend_timeout(agent: EdgeAgent) -> None:
    """Sent, unconfirmed events come back only after the timeout; confirmed never."""
    ids = await _tap_many(agent, 4)
    store = agent.store
    rows = await store.due(limit=10, resend_before=time.time())
    await store.mark_sent([r.seq for r in rows], at=time.time())
    assert await store.due(limit=10, resend_before=time.time() - 30) == []
    assert await store.in_flight(resend_before=time.time() - 30) == 4
    assert await store.acknowledge(ids[:2], at=time.time()) == 2
    assert await store.acknowledge(ids[:2], at=time.time()) == 0  # repeated ack is harmless
    later = await store.due(limit=10, resend_before=time.time() + 1)
    assert [r.event_id for r in later] == ids[2:]
    stats = await store.stats()
    assert (stats.pending, stats.confirmed) == (2, 2)


async def test_resend_all_after_reconnect(agent: EdgeAgent) -> None:
    """After a reconnect every unconfirmed event is due again at once."""
    await _tap_many(agent, 3)
    rows = await agent.store.due(limit=10, resend_before=time.time())
    await agent.store.mark_sent([r.seq for r in rows], at=time.time())
    await agent.store.resend_all()
    assert len(await agent.store.due(limit=10, resend_before=0)) == 3


async def test_prune_only_removes_confirmed(agent: EdgeAgent) -> None:
    """Nothing unconfirmed is ever deleted."""
    ids = await _tap_many(agent, 3)
    await agent.tap(CARDS["meal"])
    await agent.store.acknowledge(ids, at=time.time() - 100)
    assert await agent.store.prune_confirmed(before=time.time()) == 3
    stats = await agent.store.stats()
    assert (stats.pending, stats.confirmed) == (1, 0)
