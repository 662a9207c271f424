"""Settings of the analytics service (12-factor, read from the environment)."""

from pydantic import Field, SecretStr

from chassis.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    analytics_port: int = 8004
    # WooCommerce → Settings → Advanced → Webhooks → Secret; unset: every order webhook is refused.
    woocommerce_webhook_secret: SecretStr | None = None
    # The Shopify app's client secret (or the admin's webhook signing secret). Comma-separated to
    # rotate it: the old and the new both verify until the old is removed. Unset: all refused.
    shopify_webhook_secret: SecretStr | None = None
    # A player registered with `POST /api/live/viewers` stops counting this long after its last
    # POST (its heartbeat); players should POST again every third of it.
    player_ttl_s: int = Field(60, ge=3)
    # The gateways' presence expiry, the same value (PRESENCE_TTL_S): a crashed gateway's viewers
    # stop counting after it, and their sessions are closed.
    presence_ttl_s: int = Field(15, ge=2)
    # `viewers.updated` goes out at most once per this interval per live.
    presence_interval_s: float = Field(1.0, gt=0)

    @property
    def shopify_webhook_secrets(self) -> list[str]:
        """The secrets a Shopify webhook may be signed with."""
        secret = self.shopify_webhook_secret
        listed = secret.get_secret_value() if secret else ""
        return [one.strip() for one in listed.split(",") if one.strip()]
