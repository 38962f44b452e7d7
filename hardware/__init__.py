"""Kiosk hardware: card/NFC readers, ticket printer, buzzer/LED and opt-in face match.

Every device sits behind a small interface with a real implementation and a simulator;
the demo and the tests use the simulators (or the libraries' own test devices).
"""
