"""Settings of the chat service (12-factor, read from the environment)."""

from pydantic import Field

from chassis.settings import ServiceSettings


class ChatSettings(ServiceSettings):
    chat_port: int = 8003
    # Flood protection: a token bucket per user (every live together), kept in Redis.
    chat_rate_capacity: int = Field(5, ge=1, le=1000)
    chat_rate_refill_per_s: float = Field(1.0, gt=0, le=1000)
    chat_history_max_page: int = Field(100, ge=1, le=1000)
