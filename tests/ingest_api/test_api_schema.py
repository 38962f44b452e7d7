"""Schemathesis against the central service's own OpenAPI schema: no input makes it fail."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ingest_api.core.config import Settings
from ingest_api.core.security import Role
from ingest_api.main import create_app
from tests.security_helpers import DATA_KEY, add_account, session_headers


def test_api_never_errors_and_matches_its_schema(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every operation answers generated input without a 5xx and as its schema says.

    Signed in as a center's manager (the widest reach into personal data), so generated input
    gets past authentication to the handlers; what the role may not do answers 403.
    """
    monkeypatch.setenv("WELFARE_CREDENTIAL_KEY", "schema-test-credential-key-1a2b")
    monkeypatch.setenv("WELFARE_DATA_KEY", DATA_KEY)
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO facilities (facility_id, name) VALUES ('B', '한마음')")
    add_account(database_url, "schema.manager", Role.CENTER_MANAGER, facility_id="B")
    headers = session_headers(database_url, "schema.manager")
    app = create_app(Settings(database_url=database_url), consume=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 4
    for operation in operations:
        # One hypothesis run per operation (schemathesis' pytest plugin does the same).
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            # Rules a schema cannot express (end >= start, at most a year) answer 422 in
            # FastAPI's own error shape, so "schema-valid input rejected" is expected there.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        check()
