"""The mixed-fault soak, short: random overlapping faults over five centers' kiosks.

`welfare faults soak --minutes 60` is the long run (its table is in docs/reliability.md);
this runs the same code for about a minute and a half.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from welfare.faults.soak import soak

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1200)]


def test_a_short_soak_loses_nothing_duplicates_nothing_and_parks_every_refusal(
    tmp_path: Path,
) -> None:
    """Lost 0, duplicated 0, every refused event parked, and the faults really overlapped."""
    result = soak(tmp_path, minutes=1.5, rate=4.0, poison_every=120, seed=7)
    print(result.table())
    counts = result.counts
    assert counts.confirmed > 1000
    assert counts.parked > 0  # refused events were made, and each is parked on its kiosk
    assert counts.refused_unparked == 0
    assert counts.lost == 0, counts
    assert counts.duplicated == 0, counts
    assert counts.stored + counts.parked == counts.confirmed
    assert sum(result.faults.values()) >= 8
    assert len(result.faults) >= 5
    assert result.most_at_once >= 2  # overlapping, not one at a time
    assert result.ok
