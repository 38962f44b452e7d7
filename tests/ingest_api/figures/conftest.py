"""Fixtures of the figures tests: a year of the five centers loaded once per run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from ingest_api.core.migrate import migrate
from ingest_api.figures import rollup
from tests.security_helpers import CIPHER
from welfare.sample.city import CitySample, build_city, load_events, load_registry

KEY = b"figures-test-key-0123456789abcdef"
YEAR = 2026


def fresh_database(pg_server: Any) -> str:
    """A new migrated database on the session's cluster."""
    url: str = pg_server.create_database(f"f_{uuid.uuid4().hex[:12]}")
    migrate(url)
    return url


@pytest.fixture(scope="session")
def city_year() -> CitySample:
    """A generated year of the five centers (small membership, every kind of program)."""
    return build_city(year=YEAR, members_per_center=20)


@pytest.fixture(scope="session")
def city_db(pg_server: Any, city_year: CitySample) -> str:
    """A database holding the generated year (registry and raw events)."""
    url = fresh_database(pg_server)
    with psycopg.connect(url) as conn:
        load_registry(conn, sample=city_year, key=KEY, cipher=CIPHER)
        load_events(conn, events=city_year.events)
        rollup.refresh(conn)  # what the service's background refresh does after an ingest
    return url


@pytest.fixture
def city_conn(city_db: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the generated year."""
    with psycopg.connect(city_db) as conn:
        yield conn
