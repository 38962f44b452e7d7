"""Peer sharing: the kiosks of one hall tell each other what they served, on the center broker.

Every accepted check-in is published on the kiosk's own peer topic
(welfare/v1/<facility>/<device>/peer, QoS 1); every kiosk of the facility subscribes to
welfare/v1/<facility>/+/peer and enters what the others served in its served log, so a member
who taps a second kiosk hears "already served" with the ticket of the first. The center
broker sits on the center's LAN, so this keeps working while the city link is down. Nothing
here compares times: a serve counts for the sitting it names, whatever the kiosks' clocks say.

A message that does not validate, names another facility, or claims another device than the
topic it came on is ignored and counted (metrics `welfare_edge_peer_ignored{reason}`).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import time
from typing import TYPE_CHECKING

from pydantic import ValidationError

from broker.models import AttendanceEvent, PeerServe
from broker.topics import Channel, parse_topic, peer_subscription, topic
from broker.vocabulary import Outcome

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

_LOG = logging.getLogger(__name__)


class PeerSharing:
    """One kiosk's side of peer sharing: what it tells the hall, and what it takes from it."""

    def __init__(self, agent: EdgeAgent) -> None:
        """Bind to the agent whose served log is shared."""
        self._agent = agent
        self.facility_id = agent.settings.facility_id
        self.device_id = agent.settings.device_id
        self.topic = topic(self.facility_id, self.device_id, Channel.PEER)
        self.subscription = peer_subscription(self.facility_id)
        self.ignored: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()

    def message(self, event: AttendanceEvent, *, sitting: time | None = None) -> str | None:
        """The peer message of a decision, or None when it is nothing the hall must know."""
        if event.outcome is not Outcome.ACCEPTED or event.visitor is not None:
            return None
        if event.member_ref is None or event.program_id is None:
            return None
        return PeerServe(
            facility_id=self.facility_id,
            device_id=self.device_id,
            event_id=event.event_id,
            program_id=event.program_id,
            member_ref=event.member_ref,
            service_date=event.service_date,
            ticket_no=event.ticket_no,
            sitting=sitting,
        ).model_dump_json(exclude_none=True)

    def is_peer_topic(self, topic_name: str) -> bool:
        """Whether a message arrived on a peer topic (of any facility: checked on receipt)."""
        return topic_name.endswith("/" + Channel.PEER.value)

    async def receive(self, topic_name: str, payload: bytes) -> str:
        """Apply another kiosk's serve; returns what happened ('applied', …, or 'ignored:…')."""
        try:
            address = parse_topic(topic_name)
            serve = PeerServe.model_validate_json(payload)
        except (ValidationError, ValueError) as exc:
            return self._ignore("invalid", topic_name, exc)
        if address.facility_id != self.facility_id or serve.facility_id != self.facility_id:
            return self._ignore("other_facility", topic_name, serve.facility_id)
        if serve.device_id != address.device_id:
            return self._ignore("wrong_device", topic_name, serve.device_id)
        if serve.device_id == self.device_id:
            return "own"  # the broker echoes our own message only if no-local was not honoured
        outcome = await self._agent.store.apply_peer_serve(serve)
        self.applied[outcome] += 1
        self._agent.metrics.peer_applied.labels(outcome).inc()
        if outcome == "conflict":
            _LOG.warning(
                "member %s was also served by %s in this sitting (kiosks were apart)",
                serve.member_ref,
                serve.device_id,
            )
        return outcome

    def _ignore(self, reason: str, topic_name: str, detail: object) -> str:
        """Count and log an ignored peer message."""
        self.ignored[reason] += 1
        self._agent.metrics.peer_ignored.labels(reason).inc()
        _LOG.warning("ignored peer message on %s (%s): %s", topic_name, reason, detail)
        return f"ignored:{reason}"
