"""Constants of the registry (the shared enums and labels live in broker/vocabulary.py)."""

from __future__ import annotations

from typing import Final

CITY: Final = "*"  # facility_id of city-wide node targets
