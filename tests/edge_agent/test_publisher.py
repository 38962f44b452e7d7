"""The publisher's batch: the contract's AttendanceBatch, built from the stored events as is."""

from __future__ import annotations

import time

from broker.config import MqttSettings
from broker.models import AttendanceBatch
from edge_agent.agent import EdgeAgent
from edge_agent.publisher import Publisher
from tests.edge_agent.conftest import CARDS, LUNCH


async def test_batch_is_the_contracts_document_of_the_stored_events(agent: EdgeAgent) -> None:
    """Header from the device's settings and clock; events byte for byte as stored, in order."""
    for card in (CARDS["meal"], "DEADBEEF", CARDS["moved"]):
        await agent.tap(card)
    rows = await agent.store.due(limit=10, resend_before=time.time())
    mqtt = MqttSettings(username="B.k1", password="Xq7ZpL2mR9vT4kWs3nBd")
    # A publisher of the same device, not started: building a batch needs no broker.
    device = EdgeAgent(agent.settings.model_copy(update={"mqtt": mqtt}), clock=agent.clock)
    payload = Publisher(agent=device).payload(rows)
    batch = AttendanceBatch.model_validate_json(payload)
    assert (batch.facility_id, batch.device_id, batch.sent_at) == ("B", "k1", LUNCH)
    assert batch.events == await agent.store.all_events()
    assert [e.event_id for e in batch.events] == [r.event_id for r in rows]
    assert payload.endswith("[" + ",".join(r.payload for r in rows) + "]}")
