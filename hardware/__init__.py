"""Kiosk hardware: card/NFC readers, ticket printer, buzzer/LED and opt-in face match.

Every device sits behind a small interface with a real implementation and a simulator;
the demo and the tests use the simulators (or the libraries' own test devices). These are
drivers only: they expose device-level operations (readers report to a `ReaderSink`, a
`Signal` shows a `SignalKind`, a `TicketPrinter` prints a ticket) and never import the edge
agent, which wires them to its taps.
"""
