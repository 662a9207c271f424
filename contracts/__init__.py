"""Vitrine's shared event contracts: the envelope, subjects and every payload model.

This package depends on pydantic only, so any consumer (a service, a data warehouse loader,
a CRM bridge) can install it and read the bus.
"""

from contracts.envelope import Envelope, new_envelope
from contracts.registry import EVENTS, EventSpec, payload_model
from contracts.subjects import event_type_of, stream_id_of, stream_subject, subject_for

__all__ = [
    "EVENTS",
    "Envelope",
    "EventSpec",
    "event_type_of",
    "new_envelope",
    "payload_model",
    "stream_id_of",
    "stream_subject",
    "subject_for",
]
