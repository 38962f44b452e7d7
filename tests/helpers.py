"""Small helpers shared by tests: waiting, SQL counts, MQTT clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def wait_until(
    check: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition"
) -> None:
    """Poll `check` until true, or fail with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def sql_scalar(url: str, query: str, *params: Any) -> Any:
    """Run one query and return its single value."""
    with psycopg.connect(url) as conn:
        row = conn.execute(query.encode(), params or None).fetchone()
        assert row is not None
        return row[0]


def mqtt_client(port: int, username: str, password: str, client_id: str) -> mqtt.Client:
    """A connected v5 client with its network loop running."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(username, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def count_by_rules(url: str) -> dict[tuple[str, str | None], tuple[int, int]]:
    """(unique persons, person-visits) per (facility, program) and per (facility, None).

    Written from the rules as the centers agreed them (table 3-2), in Python over the raw
    rows, not with the figures engine's SQL: a person counts once however many programs they
    attend; a person-visit is one person on one day in one program (`member_day`); programs
    whose rule is not in the figures and refused taps never count; people registered at two
    centers are one person (their person_id). Only the visit units the samples use are known.
    """
    with psycopg.connect(url) as conn:
        rules = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT p.program_id, r.visit_unit, r.counts_unique, r.in_figures"
                " FROM programs p JOIN counting_rules r USING (rule_id)"
            )
        }
        person: dict[str, str] = {
            str(r[0]): str(r[1]) for r in conn.execute("SELECT member_ref, person_id FROM members")
        }
        taps = conn.execute(
            "SELECT facility_id, program_id, member_ref, service_date, outcome"
            " FROM attendance_events"
        ).fetchall()
        contacts = conn.execute(
            "SELECT facility_id, program_id, contact_code, service_date FROM community_contacts"
            " WHERE program_id IS NOT NULL"
        ).fetchall()
    seen: list[tuple[str, str, str, Any]] = [
        (f, p, m, d) for f, p, m, d, outcome in taps if outcome == "accepted" and p and m
    ]
    seen += [(f, p, code, d) for f, p, code, d in contacts]
    persons: dict[tuple[str, str | None], set[str]] = {}
    visits: dict[tuple[str, str | None], set[tuple[str, str, Any]]] = {}
    for facility, program, ref, day in seen:
        if program not in rules:  # a program the registry does not know is not counted
            continue
        visit_unit, counts_unique, in_figures = rules[program]
        assert visit_unit in ("member_day", "none"), f"no independent count for {visit_unit}"
        if not in_figures:
            continue
        who = person.get(ref, ref)
        for key in ((facility, program), (facility, None)):
            if counts_unique:
                persons.setdefault(key, set()).add(who)
            if visit_unit == "member_day":
                visits.setdefault(key, set()).add((who, program, day))
    return {k: (len(persons.get(k, ())), len(visits.get(k, ()))) for k in persons | visits}
