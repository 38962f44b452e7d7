"""The desk and field pages over the security suite's small city (centers A and B).

B gets two more programs here: counselling (rule `consultation`: one case and one
person-visit per person and day) and community organizing (rule `network`).
"""

from __future__ import annotations

import re

import psycopg
import pytest

from ingest_api.registry import store
from ingest_api.registry.models import Program
from tests.ingest_api.security.conftest import World, world  # noqa: F401 - the fixture

__all__ = ["World", "form_key_of", "more_programs"]


def more_programs(url: str) -> None:
    """B's counselling and community-organizing programs."""
    with psycopg.connect(url) as conn:
        for pid, function, rule, name in (
            ("B-CARE", "case_management", "consultation", "사례관리 상담"),
            ("B-ORG", "community_organizing", "network", "주민 조직화"),
        ):
            store.upsert_program(
                conn,
                program=Program(
                    program_id=pid,
                    facility_id="B",
                    name=name,
                    function=function,
                    business_area="지역사회보호",
                    unit_business="사례관리",
                    fee_type="free",
                    rule_id=rule,
                ),
            )


@pytest.fixture
def desk_world(world: World) -> World:  # noqa: F811 - the imported fixture
    """The small city with B's counselling and organizing programs."""
    more_programs(world.url)
    return world


def form_key_of(html: str) -> str:
    """The form key of the (first) form on a page."""
    found = re.search(r'name="form_key" value="([0-9a-f-]{36})"', html)
    assert found, "no form key on the page"
    return found.group(1)
