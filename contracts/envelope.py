"""The one envelope every event travels in."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.registry import payload_model


class Envelope(BaseModel):
    """`id` doubles as the JetStream `Nats-Msg-Id`, so a re-published event is stored once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    stream_id: UUID
    producer: str
    data: dict[str, Any]

    def payload(self) -> BaseModel:
        """The typed payload, validated against the model registered for (type, version)."""
        return payload_model(self.type, self.version).model_validate(self.data)


def new_envelope(
    payload: BaseModel,
    *,
    stream_id: UUID,
    producer: str,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a registered payload model into an envelope with a fresh id."""
    spec = getattr(type(payload), "__event__", None)
    if spec is None:
        raise TypeError(f"{type(payload).__name__} is not a registered event payload")
    return Envelope(
        id=uuid4(),
        type=spec.event_type,
        version=spec.version,
        occurred_at=occurred_at or datetime.now(UTC),
        stream_id=stream_id,
        producer=producer,
        data=payload.model_dump(mode="json"),
    )
