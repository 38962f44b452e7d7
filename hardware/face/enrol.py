"""Face enrolment with the member's separate consent, and withdrawal (template deleted at once).

Identifying a member at the kiosk drives the edge agent, so it lives on the agent's side;
this module only turns photos into stored templates and takes them out again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from hardware.face.encoder import FaceEncoder, RgbImage
from hardware.face.matcher import FaceMatcher
from hardware.face.store import ConsentRequiredError, FaceTemplateStore


class NoFaceError(ValueError):
    """None of the enrolment photos showed a usable face."""


def enrol_member(
    store: FaceTemplateStore,
    matcher: FaceMatcher | None,
    encoder: FaceEncoder,
    member_ref: str,
    images: Sequence[RgbImage],
    *,
    at: datetime,
) -> int:
    """Enrol from one or more photos (their mean descriptor); returns the photos used.

    The consent is checked before any photo is analysed, so no descriptor of a member
    without consent is ever computed.
    """
    consent = store.consent(member_ref)
    if consent is None or not consent.active:
        raise ConsentRequiredError(f"no active face consent on record for {member_ref!r}")
    encodings = [face.encoding for image in images if (face := encoder.largest(image))]
    if not encodings:
        raise NoFaceError("no face found in the enrolment photos")
    template = np.mean(np.vstack(encodings), axis=0)
    store.enrol(member_ref, template, at=at)
    if matcher is not None:
        matcher.add(member_ref, template)
    return len(encodings)


def withdraw_member(
    store: FaceTemplateStore, matcher: FaceMatcher | None, member_ref: str, *, at: datetime
) -> bool:
    """Consent withdrawn: delete the template on disk and from memory at once."""
    deleted = store.withdraw(member_ref, at=at)
    if matcher is not None:
        matcher.remove(member_ref)
    return deleted
