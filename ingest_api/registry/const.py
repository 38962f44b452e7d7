"""Constants of the registry (the shared enums and labels live in broker/vocabulary.py)."""

from __future__ import annotations

from typing import Final

CITY: Final = "*"  # facility_id of city-wide node targets
# A kiosk gets the dated sittings of today and the coming week (8 days); beyond that a kiosk
# that stayed offline decides by the weekly pattern.
SITTING_DAYS: Final = 8
# Members who became inactive stay on rosters this long with their status (the kiosk says
# "see staff" instead of "unknown card"), then leave them.
INACTIVE_KEPT_DAYS: Final = 30
