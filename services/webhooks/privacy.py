"""What of an event an endpoint without `allow_personal_data` may receive.

Decided per event (type and version), per field:
- a viewer's session id, user id and cart id identify a person (or their browser): removed from
  `viewer.joined`, `viewer.left`, `product.clicked` and `cart.added`, which still say that a
  viewer came, left, clicked or added what, for how much;
- a chat message's author (`user_id`, `display_name`) is removed from `chat.posted` and
  `chat.pinned`; the text stays (it is what the live's viewers all read); a ban's `user_id`
  is removed from `chat.user_banned`;
- the rest carries no personal data: lives (`stream.*` holds no stream key nor provider id: the
  streams service never puts them on the bus), the showcase, offers and audience figures.

An event not listed here (a new type or version) is withheld from such endpoints until someone
decides its fields: a test fails for every registered event that is not.
"""

from typing import Any

from contracts import Envelope

# (type, version) → the dotted paths of the fields removed; () when nothing is personal.
PERSONAL_FIELDS: dict[tuple[str, int], tuple[str, ...]] = {
    ("stream.created", 1): (),
    ("stream.updated", 1): (),
    ("stream.started", 1): (),
    ("stream.ended", 1): (),
    ("stream.deleted", 1): (),
    ("stream.provider_state", 1): (),
    ("product.added", 1): (),
    ("product.updated", 1): (),
    ("product.removed", 1): (),
    ("product.featured", 1): (),
    ("product.unfeatured", 1): (),
    ("product.clicked", 1): ("session_id", "user_id"),
    ("cart.added", 1): ("cart_id", "session_id", "user_id"),
    ("offer.opened", 1): (),
    ("offer.updated", 1): (),
    ("offer.closed", 1): (),
    ("chat.posted", 1): ("message.user_id", "message.display_name"),
    ("chat.pinned", 1): ("message.user_id", "message.display_name"),
    ("chat.deleted", 1): (),
    ("chat.unpinned", 1): (),
    ("chat.user_banned", 1): ("user_id",),
    ("viewer.joined", 1): ("session_id", "user_id"),
    ("viewer.left", 1): ("session_id", "user_id"),
    ("viewers.updated", 1): (),
    ("webhook.test", 1): (),
}


def for_endpoint(envelope: Envelope, *, allow_personal_data: bool) -> dict[str, Any] | None:
    """The envelope as this endpoint receives it (JSON-ready), or None: not for it."""
    document = envelope.model_dump(mode="json")
    if allow_personal_data:
        return document
    paths = PERSONAL_FIELDS.get((envelope.type, envelope.version))
    if paths is None:
        return None
    for path in paths:
        _remove(document["data"], path.split("."))
    return document


def _remove(data: Any, path: list[str]) -> None:
    *parents, last = path
    for key in parents:
        data = data.get(key) if isinstance(data, dict) else None
    if isinstance(data, dict):
        data.pop(last, None)
