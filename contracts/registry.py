"""Which payload model belongs to which event type and version."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """Base of every event payload: immutable; unknown fields ignored so that a producer may add
    optional fields without breaking older consumers."""

    model_config = ConfigDict(frozen=True, extra="ignore")


@dataclass(frozen=True)
class EventSpec:
    event_type: str
    version: int
    model: type[Payload]
    summary: str


EVENTS: dict[tuple[str, int], EventSpec] = {}

P = TypeVar("P", bound=type[Payload])


def event(type_: str, *, version: int = 1) -> Callable[[P], P]:
    """Register a payload model as the data of `type_` at `version`."""

    def register(model: P) -> P:
        key = (type_, version)
        if key in EVENTS:
            raise ValueError(f"event {type_} v{version} is registered twice")
        spec = EventSpec(type_, version, model, (model.__doc__ or "").strip().split("\n")[0])
        EVENTS[key] = spec
        model.__event__ = spec  # type: ignore[attr-defined]
        return model

    return register


def payload_model(type_: str, version: int) -> type[Payload]:
    _load_all()
    try:
        return EVENTS[(type_, version)].model
    except KeyError:
        raise LookupError(f"unknown event {type_} v{version}") from None


def _load_all() -> None:
    # Importing the modules registers their models; done lazily to avoid import cycles.
    from contracts import chat, products, streams, viewers  # noqa: F401
