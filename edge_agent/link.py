"""The local link between the edge agent and its views: JSON lines on a Unix domain socket.

The agent owns the readers, the decision and the record; a view (the Kivy kiosk UI) only
subscribes to what happened and sends staff commands. Every answer is sent after the agent
has committed the event, so a view that crashes or restarts loses nothing.

Protocol, one JSON object per line in each direction:

- view -> agent: ``{"id": 7, "op": "<op>", ...arguments}`` with op one of
  ``subscribe``, ``status``, ``tap`` (simulated reader: ``credential``, ``method``),
  ``choose`` (``member_ref``, ``program_id``, ``method``), ``override`` (``member_ref``,
  ``program_id``, ``reason``: required), ``next_sitting`` (``member_ref``, ``program_id``,
  ``starts``, ``method``: a full sitting's offered ticket for a later one),
  ``register_visitor`` (``gender``, ``age_band``, ``neighbourhood``, ``purpose``), ``counts``
  and ``face_answer`` (``token``, ``yes``).
- agent -> view: a reply ``{"id": 7, "ok": true, "result": ...}`` or
  ``{"id": 7, "ok": false, "error": "..."}``; after ``subscribe``, pushes
  ``{"event": "tap", "result": {...}}`` for every tap result and
  ``{"event": "status", "status": {...}}`` whenever the status shown to people changes, and
  ``{"event": "face", "face": {"token", "display_name", "timeout_s"}}`` when a face matched and
  the person must say whether it is them (docs/face.md); nothing is recorded until a view
  answers ``face_answer`` with ``yes: true`` within the time.

A tap result carries ``outcome`` (an `Outcome` value, or null while the member must pick one
of ``choices``), ``method``, ``event_id`` and the member's and program's display fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from uuid import UUID

from broker.models import VisitorInfo, mask_name
from broker.vocabulary import Gender, Method, Outcome, ProgramKind
from edge_agent.decision import programs_on_now
from edge_agent.models import ProgramChoice, TapResult

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent
    from hardware.face.matcher import FaceMatch

_LOG = logging.getLogger(__name__)

# A view that stops reading is dropped rather than let the agent's memory grow.
MAX_CLIENT_BUFFER = 1 << 20
LINE_LIMIT = 1 << 16


class LinkError(RuntimeError):
    """The agent refused a command or the link is down."""


# -- codec (shared by both ends) -------------------------------------------------------------


def tap_result_to_json(result: TapResult) -> dict[str, Any]:
    """A TapResult as a JSON-ready dict; `outcome` is null while the member must choose."""
    return {
        "outcome": result.outcome.value if result.outcome is not None else None,
        "method": result.method.value,
        "event_id": str(result.event_id) if result.event_id else None,
        "member_ref": result.member_ref,
        "display_name": result.display_name,
        "program_id": result.program_id,
        "program_name": result.program_name,
        "program_kind": result.program_kind.value if result.program_kind else None,
        "ticket_no": result.ticket_no,
        "choices": [
            {"program_id": c.program_id, "name": c.name, "place": c.place} for c in result.choices
        ],
        "problem": result.problem,
        "sitting": result.sitting.isoformat("minutes") if result.sitting else None,
        "next_sitting": result.next_sitting.isoformat("minutes") if result.next_sitting else None,
    }


def tap_result_from_json(data: dict[str, Any]) -> TapResult:
    """Rebuild a TapResult sent over the link."""
    return TapResult(
        outcome=Outcome(data["outcome"]) if data.get("outcome") is not None else None,
        method=Method(data["method"]),
        event_id=UUID(data["event_id"]) if data.get("event_id") else None,
        member_ref=data.get("member_ref"),
        display_name=data.get("display_name"),
        program_id=data.get("program_id"),
        program_name=data.get("program_name"),
        program_kind=ProgramKind(data["program_kind"]) if data.get("program_kind") else None,
        ticket_no=data.get("ticket_no"),
        choices=tuple(
            ProgramChoice(c["program_id"], c["name"], c.get("place"))
            for c in data.get("choices", [])
        ),
        problem=data.get("problem"),
        sitting=time.fromisoformat(data["sitting"]) if data.get("sitting") else None,
        next_sitting=time.fromisoformat(data["next_sitting"]) if data.get("next_sitting") else None,
    )


@dataclass(frozen=True, slots=True)
class ServiceNow:
    """A program running now, as the idle screen names it."""

    program_id: str
    name: str
    kind: str
    place: str | None


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """What a view shows besides tap results: where it is, what is on, whether it is online."""

    facility_id: str
    facility_name: str
    device_id: str
    local_time: str  # "HH:MM", the agent's (and the record's) clock
    local_date: str  # ISO date
    online: bool  # the publisher is connected to the center's broker
    on_now: tuple[ServiceNow, ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "facility_id": self.facility_id,
            "facility_name": self.facility_name,
            "device_id": self.device_id,
            "local_time": self.local_time,
            "local_date": self.local_date,
            "online": self.online,
            "on_now": [
                {"program_id": s.program_id, "name": s.name, "kind": s.kind, "place": s.place}
                for s in self.on_now
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkStatus:
        """Rebuild a status sent over the link."""
        return cls(
            facility_id=data["facility_id"],
            facility_name=data["facility_name"],
            device_id=data["device_id"],
            local_time=data["local_time"],
            local_date=data["local_date"],
            online=bool(data["online"]),
            on_now=tuple(
                ServiceNow(s["program_id"], s["name"], s["kind"], s.get("place"))
                for s in data["on_now"]
            ),
        )


@dataclass(frozen=True, slots=True)
class ProgramCount:
    """Accepted check-ins of one program today (the hall's, peers' serves included)."""

    program_id: str
    name: str
    count: int
    seats_left: int | None = None  # a meal sitting on now with a capacity
    # Members served here and at another kiosk while the two could not talk (flagged for staff).
    double_serves: int = 0


def _dumps(obj: dict[str, Any]) -> bytes:
    """One protocol line."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# -- the agent's end -------------------------------------------------------------------------


class LinkServer:
    """Serves the link for one agent; `async with LinkServer(agent, path)`."""

    def __init__(self, agent: EdgeAgent, path: Path | str, *, status_interval: float = 1.0) -> None:
        """Bind to an agent; the socket is created on enter."""
        self.agent = agent
        self.path = Path(path)
        self.status_interval = status_interval
        self._server: asyncio.Server | None = None
        self._subscribers: set[asyncio.StreamWriter] = set()
        self._clients: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._status_task: asyncio.Task[None] | None = None
        self._last_status: LinkStatus | None = None
        self._face_pending: dict[str, asyncio.Future[bool]] = {}

    async def __aenter__(self) -> Self:
        """Start listening and forwarding tap results."""
        # A socket file left by a crashed agent would make bind fail.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve_client, path=str(self.path), limit=LINE_LIMIT
        )
        # Only the kiosk's own user (and group) may talk to the agent.
        os.chmod(self.path, 0o660)
        self.agent.add_listener(self._on_tap)
        self._status_task = asyncio.create_task(self._watch_status(), name="link-status")
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving; the agent keeps running on its own. Safe to call twice."""
        if self._server is None:
            return
        self.agent.remove_listener(self._on_tap)
        if self._status_task is not None:
            self._status_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._status_task
        self._server.close()
        # Closing a view's connection ends its handler at its next read.
        for writer in list(self._clients):
            writer.close()
        if self._handlers:
            _done, pending = await asyncio.wait(list(self._handlers), timeout=5)
            for task in pending:
                task.cancel()
        await self._server.wait_closed()
        self._server = None
        self._status_task = None
        self._last_status = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def status(self) -> LinkStatus:
        """The agent's status as views show it."""
        now = self.agent.local_now()
        on_now = programs_on_now(await self.agent.store.programs(), now)
        return LinkStatus(
            facility_id=self.agent.settings.facility_id,
            facility_name=self.agent.settings.facility_name,
            device_id=self.agent.settings.device_id,
            local_time=f"{now:%H:%M}",
            local_date=now.date().isoformat(),
            online=self.agent.online,
            on_now=tuple(ServiceNow(p.program_id, p.name, p.kind.value, p.place) for p in on_now),
        )

    def _broadcast(self, line: bytes) -> None:
        """Send a push to every subscriber; drop one that stopped reading."""
        for writer in list(self._subscribers):
            if writer.is_closing() or writer.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
                self._subscribers.discard(writer)
                writer.close()
                continue
            writer.write(line)

    async def confirm_face(self, match: FaceMatch, *, within: float = 10.0) -> bool:
        """Ask the views "김*수 님이 맞으세요?"; True only for a "yes" within `within` s.

        With no view to ask (headless kiosk) the answer is no: without a liveness check a face
        alone records nothing (docs/face.md).
        """
        member = await self.agent.store.member(match.member_ref)
        if not self._subscribers or member is None or member.face_template is None:
            return False
        token = secrets.token_hex(8)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._face_pending[token] = future
        face = {"token": token, "display_name": mask_name(member.display_name), "timeout_s": within}
        self._broadcast(_dumps({"event": "face", "face": face}))
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            return False
        finally:
            self._face_pending.pop(token, None)

    def _face_answer(self, token: str, yes: bool) -> bool:
        """A view's answer to a face question; whether the question was still open."""
        future = self._face_pending.pop(token, None)
        if future is None or future.done():
            return False
        future.set_result(yes)
        return True

    def _on_tap(self, result: TapResult) -> None:
        """Agent listener: forward a (committed) tap result to the views."""
        self._broadcast(_dumps({"event": "tap", "result": tap_result_to_json(result)}))

    async def _watch_status(self) -> None:
        """Push the status when it changes (online state, service on now, the minute)."""
        while True:
            try:
                status = await self.status()
            except Exception:
                _LOG.exception("link status failed")
            else:
                if status != self._last_status:
                    self._last_status = status
                    self._broadcast(_dumps({"event": "status", "status": status.to_json()}))
            await asyncio.sleep(self.status_interval)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer one view's commands until it goes away."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._clients.add(writer)
        try:
            while line := await reader.readline():
                reply = await self._answer(line, writer)
                writer.write(_dumps(reply))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            _LOG.info("link client dropped: %s", exc)
        except asyncio.CancelledError:
            # Shutting down: asyncio's stream callback would log a cancelled handler as an error.
            _LOG.debug("link client handler cancelled")
        finally:
            self._subscribers.discard(writer)
            self._clients.discard(writer)
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    async def _answer(self, line: bytes, writer: asyncio.StreamWriter) -> dict[str, Any]:
        """Run one command and build its reply; errors go back to the view, not up."""
        request_id: Any = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            result = await self._run(request, writer)
        except Exception as exc:
            _LOG.warning("link command failed: %s", exc)
            return {"id": request_id, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"id": request_id, "ok": True, "result": result}

    async def _run(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> Any:
        """Dispatch one command to the agent."""
        op = request.get("op")
        agent = self.agent
        if op == "subscribe":
            self._subscribers.add(writer)
            return (await self.status()).to_json()
        if op == "status":
            return (await self.status()).to_json()
        if op == "tap":
            method = Method(request.get("method", Method.CARD.value))
            return tap_result_to_json(await agent.tap(str(request["credential"]), method=method))
        if op == "choose":
            method = Method(request.get("method", Method.CARD.value))
            result = await agent.check_in(
                str(request["member_ref"]), str(request["program_id"]), method=method
            )
            return tap_result_to_json(result)
        if op == "override":
            result = await agent.check_in(
                str(request["member_ref"]),
                str(request["program_id"]),
                method=Method.STAFF,
                override=True,
                reason=str(request.get("reason") or ""),
            )
            return tap_result_to_json(result)
        if op == "next_sitting":
            result = await agent.take_next_sitting(
                str(request["member_ref"]),
                str(request["program_id"]),
                time.fromisoformat(str(request["starts"])),
                method=Method(request.get("method", Method.CARD.value)),
            )
            return tap_result_to_json(result)
        if op == "register_visitor":
            info = await agent.register_visitor(
                gender=Gender(request["gender"]),
                age_band=str(request["age_band"]),
                neighbourhood=str(request["neighbourhood"]),
                purpose=str(request["purpose"]),
            )
            return info.model_dump(mode="json")
        if op == "counts":
            day = agent.local_now().date()
            counts = await agent.store.served_count(day)
            names = {p.program_id: p.name for p in await agent.store.programs()}
            left = await agent.seats_left()
            doubles = Counter(pid for _m, pid, _d in await agent.store.served_conflicts(day))
            return {
                "date": day.isoformat(),
                "programs": [
                    {
                        "program_id": pid,
                        "name": names.get(pid, pid),
                        "count": counts.get(pid, 0),
                        "seats_left": left.get(pid),
                        "double_serves": doubles.get(pid, 0),
                    }
                    for pid in sorted(set(names) | set(counts))
                ],
            }
        if op == "face_answer":
            return {"open": self._face_answer(str(request["token"]), request.get("yes") is True)}
        raise LinkError(f"unknown op {op!r}")


# -- a view's end ----------------------------------------------------------------------------

TapCallback = Callable[[TapResult], None]
StatusCallback = Callable[[LinkStatus], None]
ConnectionCallback = Callable[[bool], None]
# A face matched: {"token", "display_name" (masked), "timeout_s"}; answer with face_answer.
FaceCallback = Callable[[dict[str, Any]], None]


class LinkClient:
    """A view's connection to the agent; reconnects by itself and never touches widgets."""

    def __init__(
        self,
        path: Path | str,
        *,
        on_tap: TapCallback | None = None,
        on_status: StatusCallback | None = None,
        on_connection: ConnectionCallback | None = None,
        on_face: FaceCallback | None = None,
        subscribe: bool = True,
        retry_s: float = 0.5,
    ) -> None:
        """Prepare; `await client.connect()` or run `client.run()` as a task."""
        self.path = Path(path)
        self._on_tap = on_tap
        self._on_status = on_status
        self._on_connection = on_connection
        self._on_face = on_face
        self._subscribe = subscribe
        self._retry_s = retry_s
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether the agent is reachable now."""
        return self._connected.is_set()

    async def wait_connected(self, within: float = 10.0) -> None:
        """Wait until the link is up."""
        await asyncio.wait_for(self._connected.wait(), within)

    async def run(self) -> None:
        """Stay connected until closed: read pushes and replies, reconnect after a loss."""
        while not self._closed:
            try:
                reader, writer = await asyncio.open_unix_connection(
                    str(self.path), limit=LINE_LIMIT
                )
            except OSError:
                await asyncio.sleep(self._retry_s)
                continue
            self._writer = writer
            self._connected.set()
            if self._on_connection:
                self._on_connection(True)
            if self._subscribe:
                # Subscribing is a request like any other: its reply is the current status.
                asyncio.get_running_loop().create_task(self._subscribe_now())
            try:
                while line := await reader.readline():
                    self._dispatch(json.loads(line))
            except (ConnectionError, ValueError) as exc:
                _LOG.info("link to agent lost: %s", exc)
            finally:
                self._connected.clear()
                self._writer = None
                writer.close()
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(LinkError("link to the agent lost"))
                self._pending.clear()
                if self._on_connection and not self._closed:
                    self._on_connection(False)
            if not self._closed:
                await asyncio.sleep(self._retry_s)

    async def _subscribe_now(self) -> None:
        """Ask for pushes and pass the current status on."""
        with contextlib.suppress(LinkError):
            data = await self.request("subscribe")
            if self._on_status:
                self._on_status(LinkStatus.from_json(data))

    def _dispatch(self, message: dict[str, Any]) -> None:
        """Route a line from the agent to a waiting request or a callback."""
        event = message.get("event")
        if event == "tap":
            if self._on_tap:
                self._on_tap(tap_result_from_json(message["result"]))
            return
        if event == "status":
            if self._on_status:
                self._on_status(LinkStatus.from_json(message["status"]))
            return
        if event == "face":
            if self._on_face:
                self._on_face(dict(message["face"]))
            return
        future = self._pending.pop(message.get("id", -1), None)
        if future is None or future.done():
            return
        if message.get("ok"):
            future.set_result(message.get("result"))
        else:
            future.set_exception(LinkError(str(message.get("error"))))

    async def request(self, op: str, **args: Any) -> Any:
        """Send one command and wait for its reply."""
        if self._writer is None:
            raise LinkError("not connected to the agent")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._writer.write(_dumps({"id": request_id, "op": op, **args}))
        await self._writer.drain()
        return await future

    async def tap(self, credential: str, *, method: Method = Method.CARD) -> TapResult:
        """Simulated reader tap (tests, demo, benchmark)."""
        return tap_result_from_json(
            await self.request("tap", credential=credential, method=method.value)
        )

    async def choose(self, member_ref: str, program_id: str, *, method: Method) -> TapResult:
        """Check a member into the class they picked."""
        data = await self.request(
            "choose", member_ref=member_ref, program_id=program_id, method=method.value
        )
        return tap_result_from_json(data)

    async def override(self, member_ref: str, program_id: str, reason: str) -> TapResult:
        """Staff let a member in despite the rule (already served, inactive), saying why."""
        return tap_result_from_json(
            await self.request(
                "override", member_ref=member_ref, program_id=program_id, reason=reason
            )
        )

    async def next_sitting(
        self, member_ref: str, program_id: str, starts: time, *, method: Method
    ) -> TapResult:
        """The member takes the offered ticket for a later sitting (theirs was full)."""
        return tap_result_from_json(
            await self.request(
                "next_sitting",
                member_ref=member_ref,
                program_id=program_id,
                starts=starts.isoformat("minutes"),
                method=method.value,
            )
        )

    async def register_visitor(
        self, *, gender: Gender, age_band: str, neighbourhood: str, purpose: str
    ) -> VisitorInfo:
        """Register a one-off visitor; returns the issued personal ID code."""
        data = await self.request(
            "register_visitor",
            gender=gender.value,
            age_band=age_band,
            neighbourhood=neighbourhood,
            purpose=purpose,
        )
        return VisitorInfo.model_validate(data)

    async def counts(self) -> tuple[str, list[ProgramCount]]:
        """Today's date and accepted check-ins per program."""
        data = await self.request("counts")
        return data["date"], [
            ProgramCount(
                p["program_id"],
                p["name"],
                int(p["count"]),
                p.get("seats_left"),
                int(p.get("double_serves", 0)),
            )
            for p in data["programs"]
        ]

    async def face_answer(self, token: str, *, yes: bool) -> bool:
        """Answer "is this you?"; whether the question was still open."""
        data = await self.request("face_answer", token=token, yes=yes)
        return bool(data["open"])

    async def status(self) -> LinkStatus:
        """The agent's status now."""
        return LinkStatus.from_json(await self.request("status"))

    async def close(self) -> None:
        """Disconnect and stop reconnecting."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
