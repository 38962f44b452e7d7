"""Database schema, migrations and data functions of the central service."""
