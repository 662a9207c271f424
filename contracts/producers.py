"""Who publishes what: each service its own events, and no one else's.

The bus's permissions (deploy/nats) grant each service the subjects of its own families; the
gateway, which speaks to every viewer, checks the same table for each event it forwards, so a
credential that leaked could not speak for another service either.
"""

# A service, and the event families (`stream.`) or types (`cart.added`) it publishes.
PUBLISHES: dict[str, tuple[str, ...]] = {
    "streams": ("stream.",),
    "products": ("product.", "cart.", "offer."),
    "chat": ("chat.",),
    "analytics": ("viewers.",),
    "gateway": ("viewer.", "reactions."),
}


def may_publish(producer: object, event_type: str) -> bool:
    """Whether `producer` (an envelope's) is the service that publishes `event_type`."""
    families = PUBLISHES.get(producer) if isinstance(producer, str) else None
    return families is not None and event_type.startswith(families)
