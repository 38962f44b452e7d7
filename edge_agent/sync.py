"""The device's half of roster and configuration sync (docs/contract.md, "Roster sync").

On every connection, every `sync_interval_s` and after every update the device reports on
`…/sync` the roster version and hash it holds and the ids of the credential keys it has. The
center answers a device that is behind with one update: a delta from the version it holds (or
the whole roster when it no longer has that version's digests). An update is applied only when
its signature checks under a key the device holds and its result hashes to `content_hash`;
otherwise the device keeps deciding with the last good roster and says why it refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import ValidationError

from broker.keys import key_id, unwrap_key, verify, wrap_aad
from broker.models import DeviceConfig, Roster, SyncRequest
from broker.roster import config_signing_bytes, roster_signing_bytes
from broker.vocabulary import SyncReason
from edge_agent.const import REPLAY_MARGIN_S
from edge_agent.roster_store import RosterRefused

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent

_LOG = logging.getLogger(__name__)
# A device refusing update after update must not flood the center with requests.
MIN_REQUEST_GAP_S = 2.0

Send = Callable[[str], None]


class RosterSync:
    """Applies rosters and configurations from the center and reports what the device holds."""

    def __init__(self, agent: EdgeAgent, send: Send) -> None:
        """Report through `send` (publishes a SyncRequest document on the device's sync topic)."""
        self._agent = agent
        self._send = send
        self._last_request = 0.0
        self.refusals = 0
        # Set by the publisher on every (re)connection: report what the device holds.
        self.reconnected = asyncio.Event()

    async def request(self, reason: SyncReason, detail: str | None = None) -> SyncRequest:
        """Report the roster held (rate-limited for refusals); returns what was sent."""
        store = self._agent.store
        config = await store.config()
        message = SyncRequest(
            facility_id=self._agent.settings.facility_id,
            device_id=self._agent.settings.device_id,
            sent_at=self._agent.clock(),
            reason=reason,
            roster_version=await store.roster_version(),
            roster_hash=await store.roster_hash(),
            config_version=config.version if config else None,
            key_ids=[key_id(k) for k in await self._agent.credential_keys()],
            detail=detail[:200] if detail else None,
        )
        self._last_request = time.monotonic()
        self._send(message.model_dump_json(exclude_none=True))
        return message

    async def on_roster(self, payload: bytes) -> None:
        """Apply a roster update from the center, or refuse it and say why."""
        try:
            update = Roster.model_validate_json(payload)
        except ValidationError as exc:
            self.refusals += 1
            _LOG.warning("ignored an invalid roster: %s", exc.errors()[:2])
            return
        mine = (self._agent.settings.facility_id, self._agent.settings.device_id)
        if (update.facility_id, update.device_id) != mine:
            self.refusals += 1
            _LOG.warning("ignored a roster for %s/%s", update.facility_id, update.device_id)
            return
        held = await self._agent.store.roster_version()
        if update.version == held:
            return  # already holding it (an answer crossing a push)
        if not await self._signed(roster_signing_bytes, update, update.signatures):
            self.refusals += 1
            _LOG.warning("refused roster %s: not signed under this device's keys", update.version)
            return
        try:
            await self._agent.apply_roster_update(update)
        except RosterRefused as exc:
            self.refusals += 1
            _LOG.warning("refused roster %s: %s", update.version, exc.detail)
            if time.monotonic() - self._last_request >= MIN_REQUEST_GAP_S:
                await self.request(SyncReason(exc.reason), exc.detail)
            return
        await self.request(SyncReason.APPLIED)

    async def on_config(self, payload: bytes) -> None:
        """Apply a configuration: settings for the views, and the facility's credential keys."""
        try:
            config = DeviceConfig.model_validate_json(payload)
        except ValidationError as exc:
            _LOG.warning("ignored an invalid configuration: %s", exc.errors()[:2])
            return
        settings = self._agent.settings
        if (config.facility_id, config.device_id) != (settings.facility_id, settings.device_id):
            _LOG.warning("ignored a configuration for %s/%s", config.facility_id, config.device_id)
            return
        held = await self._agent.store.config()
        if held is not None and config.version is not None and held.version == config.version:
            return  # the retained configuration again, at a reconnection
        if config.signatures is not None or config.wrapped_keys:
            if not await self._signed(config_signing_bytes, config, config.signatures):
                _LOG.warning("refused configuration %s: no valid signature", config.version)
                return
            keys_changed = await self._take_keys(config)
        else:
            keys_changed = False
        await self._agent.apply_config(config)
        if config.replay_id is not None and config.replay_since is not None:
            await self._replay(config, signed=config.signatures is not None)
        if keys_changed:
            # The center retires an old key only once every kiosk reports holding the new one.
            await self.request(SyncReason.APPLIED)

    async def _replay(self, config: DeviceConfig, *, signed: bool) -> None:
        """Obey a signed replay request once: resend what was confirmed since its time.

        An unsigned request is refused (anyone who could publish on the config topic could
        otherwise make every kiosk resend two weeks of events) and reported to the center,
        which audits it.
        """
        assert config.replay_id is not None
        assert config.replay_since is not None
        if not signed:
            _LOG.warning("refused replay %s: the configuration is not signed", config.replay_id)
            await self.request(SyncReason.REFUSED, f"replay {config.replay_id} refused: unsigned")
            return
        since = config.replay_since.timestamp() - REPLAY_MARGIN_S
        count = await self._agent.store.replay_confirmed(since=since, replay_id=config.replay_id)
        if count is None:
            return  # the retained configuration again: done already
        _LOG.warning(
            "replay %s: resending %d event(s) confirmed since %s",
            config.replay_id,
            count,
            config.replay_since.isoformat(),
        )
        self._agent.publisher_wake.set()

    async def _take_keys(self, config: DeviceConfig) -> bool:
        """Unwrap new keys with keys held, keep only those the facility uses; whether changed."""
        aad = wrap_aad(config.facility_id, config.device_id)
        held = {key_id(k): k for k in await self._agent.credential_keys()}
        received = await self._agent.store.credential_keys()
        for wrapped in config.wrapped_keys or []:
            if wrapped.key_id in held or wrapped.wrapped_with not in held:
                continue
            try:
                received[wrapped.key_id] = unwrap_key(
                    wrapped, under=held[wrapped.wrapped_with], aad=aad
                )
            except ValueError as exc:
                _LOG.warning("could not unwrap key %s: %s", wrapped.key_id, exc)
        if config.key_ids is not None:
            received = {k: v for k, v in received.items() if k in config.key_ids}
        before = await self._agent.store.credential_keys()
        await self._agent.store.set_credential_keys(received)
        return set(received) != set(before)

    async def _signed(
        self,
        what: Callable[..., bytes],
        message: Roster | DeviceConfig,
        signatures: list[str] | None,
    ) -> bool:
        """Whether `message` carries a signature under one of the device's keys."""
        if not signatures:
            return False
        try:
            signed = what(message)
        except ValueError:
            return False
        return verify(await self._agent.credential_keys(), signed, signatures)

    async def run(self, connected: asyncio.Event) -> None:
        """Report at every connection, and periodically (heals a request lost on the way)."""
        while True:
            try:
                async with asyncio.timeout(self._agent.sync_interval_s):
                    await self.reconnected.wait()
            except TimeoutError:
                if connected.is_set():
                    await self.request(SyncReason.PERIODIC)
                continue
            self.reconnected.clear()
            if connected.is_set():
                await self.request(SyncReason.CONNECT)
