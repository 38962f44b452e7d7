"""The central ingest service: MQTT consumer, PostgreSQL/TimescaleDB writer, web API."""
