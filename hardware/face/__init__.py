"""Opt-in face match: consent-gated enrolment, encrypted templates, 1:N match (`face` extra).

Face is a convenience next to the card, never instead of it: see docs/face.md for its limits.
Only `encoder` and `camera` need face_recognition/OpenCV; consent, storage and matching need
numpy and cryptography alone.
"""
