"""NATS subjects: `live.<stream_id>.<type>`, e.g. `live.7d1e….product.featured`.

A deployment (or a test run) may put every subject under a prefix such as `t41f.`; the prefix is
part of the root, so `root="t41f.live"` gives `t41f.live.<stream_id>.<type>`.
"""

from uuid import UUID

DEFAULT_ROOT = "live"


def subject_for(stream_id: UUID | str, event_type: str, *, root: str = DEFAULT_ROOT) -> str:
    """The subject an event of `event_type` about live `stream_id` is published on."""
    return f"{root}.{stream_id}.{event_type}"


def stream_subject(stream_id: UUID | str, *, root: str = DEFAULT_ROOT) -> str:
    """The wildcard subject holding every event of one live."""
    return f"{root}.{stream_id}.>"


def _tail(subject: str, root: str) -> str:
    if not subject.startswith(root + "."):
        raise ValueError(f"subject {subject!r} is not under {root!r}")
    return subject[len(root) + 1 :]


def stream_id_of(subject: str, *, root: str = DEFAULT_ROOT) -> str:
    return _tail(subject, root).split(".", 1)[0]


def event_type_of(subject: str, *, root: str = DEFAULT_ROOT) -> str:
    return _tail(subject, root).split(".", 1)[1]
