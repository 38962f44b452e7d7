"""The udev rules parse, grant access to the kiosk group, and match the documented devices."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "firmware_config" / "99-welfare-readers.rules"
DOC = ROOT / "docs" / "hardware.md"
_PAIR = re.compile(r'^\s*([A-Z_]+(?:\{[A-Za-z_]+\})?)\s*(==|!=|\+=|:=|=)\s*"([^"]*)"\s*$')


def rules() -> list[list[tuple[str, str, str]]]:
    """Every rule as a list of (key, operator, value)."""
    parsed = []
    for line in RULES.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs = []
        for part in line.split(","):
            match = _PAIR.match(part)
            assert match, f"unparsable part {part!r} in: {line}"
            pairs.append((match[1], match[2], match[3]))
        parsed.append(pairs)
    return parsed


def test_every_rule_matches_a_subsystem_and_grants_a_group() -> None:
    """Each rule selects by subsystem (==) and assigns a group and a mode (=)."""
    for rule in rules():
        keys = {(k, op) for k, op, _ in rule}
        assert ("SUBSYSTEM", "==") in keys, rule
        assert ("GROUP", "=") in keys, rule
        assert ("MODE", "=") in keys, rule
        mode = next(v for k, _, v in rule if k == "MODE")
        assert mode == "0660", "never world-readable: card numbers and faces pass through"


def test_wedge_readers_are_hidden_from_the_desktop() -> None:
    """Keyboard-wedge readers get the symlink the docs use and are ignored by libinput."""
    inputs = [r for r in rules() if ("SUBSYSTEM", "==", "input") in r]
    assert inputs
    for rule in inputs:
        assert ("ENV{LIBINPUT_IGNORE_DEVICE}", "=", "1") in rule
        assert ("SYMLINK", "+=", "input/welfare-card") in rule


def test_every_usb_id_in_the_rules_is_documented() -> None:
    """A device the rules allow is one docs/hardware.md tells staff about."""
    doc = DOC.read_text()
    ids = []
    for rule in rules():
        values = {k: v for k, _, v in rule}
        if "ATTRS{idVendor}" in values:
            ids.append(f"{values['ATTRS{idVendor}']}:{values['ATTRS{idProduct}']}")
    assert len(ids) >= 8
    missing = [usb_id for usb_id in ids if f"`{usb_id}`" not in doc]
    assert missing == []
