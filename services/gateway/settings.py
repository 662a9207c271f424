from pydantic import Field

from chassis.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    gateway_port: int = 8000
    # Browser origins allowed to call the API (comma-separated); tokens travel in headers, not
    # cookies, so "*" is safe for reading and the default for development.
    cors_origins: str = "*"
    gateway_id: str | None = None  # a random one per process when unset
    streams_url: str = "http://127.0.0.1:8001"
    products_url: str = "http://127.0.0.1:8002"
    chat_url: str = "http://127.0.0.1:8003"
    analytics_url: str = "http://127.0.0.1:8004"
    notifications_url: str = "http://127.0.0.1:8005"
    webhooks_url: str = "http://127.0.0.1:8006"
    # A socket whose unsent bytes pass this is too slow: it is dropped and resumes with since=.
    ws_max_buffer_bytes: int = Field(1_000_000, ge=4096)
    # The kernel's send buffer per viewer socket (Linux doubles it; 0: the kernel's own, which
    # grows to megabytes that a frozen peer holds for tens of seconds).
    ws_send_buffer_bytes: int = Field(64 * 1024, ge=0)
    # Events replayed to a reconnecting socket before a fresh snapshot is cheaper.
    ws_max_replay: int = Field(5_000, ge=1)
    # Seconds a live's subscription outlives its last viewer (viewers often reload).
    hub_linger_s: float = Field(10.0, ge=0)
    presence_ttl_s: int = Field(15, ge=2)
    presence_interval_s: float = Field(1.0, gt=0)
    upstream_timeout_s: float = Field(10.0, gt=0)
    # Reminder subscriptions (each may send a confirmation e-mail to the address given) one
    # anonymous client, by IP address (IPv6 by /64), may ask for at once, then an hour; what a
    # signed-in user, by id, may (a person needs accounts to get more, and their own address
    # gets no e-mail); admins have no limit. Past it: 429 with Retry-After (gateway/limits.py).
    reminder_subscribe_burst: int = Field(5, ge=1)
    reminder_subscribe_per_hour: float = Field(20.0, gt=0)
    reminder_subscribe_user_burst: int = Field(20, ge=1)
    reminder_subscribe_user_per_hour: float = Field(60.0, gt=0)
    # A gateway without NATS serves snapshots that never move: past this it is taken out of
    # its Service so new viewers land on one that has the bus (inf: never; see the README).
    # Redis only keeps the viewer counts (presence fails open): tolerated for ever by default.
    readiness_nats_outage_bound_s: float = Field(120.0, ge=0)
