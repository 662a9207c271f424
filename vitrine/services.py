"""The services Vitrine runs, and how to build, migrate and serve each one."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from chassis.settings import ServiceSettings


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings: Callable[[], ServiceSettings]
    # Each takes the service's own settings class.
    create_app: Callable[[Any], FastAPI]
    migrate: Callable[[Any], Awaitable[None]] | None
    port_setting: str
    url_env: str | None  # how the gateway finds it


def _streams() -> ServiceSpec:
    from services.streams.app import create_app, migrate
    from services.streams.settings import StreamsSettings

    return ServiceSpec(
        "streams", StreamsSettings, create_app, migrate, "streams_port", "STREAMS_URL"
    )


def _gateway() -> ServiceSpec:
    from services.gateway.app import create_app
    from services.gateway.settings import GatewaySettings

    return ServiceSpec("gateway", GatewaySettings, create_app, None, "gateway_port", None)


def _products() -> ServiceSpec:
    from services.products.app import create_app, migrate
    from services.products.settings import ProductsSettings

    return ServiceSpec(
        "products", ProductsSettings, create_app, migrate, "products_port", "PRODUCTS_URL"
    )


def _chat() -> ServiceSpec:
    from services.chat.app import create_app, migrate
    from services.chat.settings import ChatSettings

    return ServiceSpec("chat", ChatSettings, create_app, migrate, "chat_port", "CHAT_URL")


def _analytics() -> ServiceSpec:
    from services.analytics.app import create_app, migrate
    from services.analytics.settings import AnalyticsSettings

    return ServiceSpec(
        "analytics", AnalyticsSettings, create_app, migrate, "analytics_port", "ANALYTICS_URL"
    )


def _notifications() -> ServiceSpec:
    from services.notifications.app import create_app, migrate
    from services.notifications.settings import NotificationsSettings

    return ServiceSpec(
        "notifications",
        NotificationsSettings,
        create_app,
        migrate,
        "notifications_port",
        "NOTIFICATIONS_URL",
    )


def _webhooks() -> ServiceSpec:
    from services.webhooks.app import create_app, migrate
    from services.webhooks.settings import WebhooksSettings

    return ServiceSpec(
        "webhooks", WebhooksSettings, create_app, migrate, "webhooks_port", "WEBHOOKS_URL"
    )


# Started in this order: the gateway last, once what it calls is up.
SERVICES: dict[str, Callable[[], ServiceSpec]] = {
    "streams": _streams,
    "products": _products,
    "chat": _chat,
    "analytics": _analytics,
    "notifications": _notifications,
    "webhooks": _webhooks,
    "gateway": _gateway,
}


def spec(name: str) -> ServiceSpec:
    try:
        return SERVICES[name]()
    except KeyError:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}") from None
