"""Which provider serves which platform."""

from collections.abc import Callable
from typing import Any

from contracts.streams import Platform
from services.streams.providers.base import SecretsStore, UnsupportedPlatform, VideoProvider
from services.streams.providers.custom_rtmp import CustomRtmpProvider
from services.streams.providers.ivs import IvsProvider
from services.streams.providers.mux import MuxProvider
from services.streams.providers.nginx_rtmp import NginxRtmpProvider, control_beside
from services.streams.providers.restream import RestreamProvider
from services.streams.settings import StreamsSettings

Factory = Callable[
    [StreamsSettings, dict[str, Any], dict[str, str], SecretsStore | None], VideoProvider
]
Validator = Callable[[dict[str, Any]], dict[str, Any]]


def _nginx_rtmp(
    settings: StreamsSettings,
    config: dict[str, Any],
    secrets: dict[str, str],
    store: SecretsStore | None,
) -> VideoProvider:
    hls_base_url = config.get("hls_base_url") or settings.hls_base_url
    return NginxRtmpProvider(
        ingest_url=config.get("ingest_url") or settings.rtmp_ingest_url,
        hls_base_url=hls_base_url,
        replay_base_url=config.get("replay_base_url") or settings.replay_base_url,
        reconnect_grace_s=config.get("reconnect_grace_s", settings.rtmp_reconnect_grace_s),
        control_url=config.get("control_url")
        or settings.rtmp_control_url
        or control_beside(hls_base_url),
        control_secret=settings.rtmp_callback_secret.get_secret_value(),
    )


def _custom_rtmp(
    settings: StreamsSettings,
    config: dict[str, Any],
    secrets: dict[str, str],
    store: SecretsStore | None,
) -> VideoProvider:
    return CustomRtmpProvider(
        ingest_url=config.get("ingest_url"),
        playback_url_template=config.get("playback_url_template"),
    )


def _mux(
    settings: StreamsSettings,
    config: dict[str, Any],
    secrets: dict[str, str],
    store: SecretsStore | None,
) -> VideoProvider:
    return MuxProvider(config=config, secrets=secrets)


def _restream(
    settings: StreamsSettings,
    config: dict[str, Any],
    secrets: dict[str, str],
    store: SecretsStore | None,
) -> VideoProvider:
    return RestreamProvider(config=config, secrets=secrets, store=store)


def _aws_ivs(
    settings: StreamsSettings,
    config: dict[str, Any],
    secrets: dict[str, str],
    store: SecretsStore | None,
) -> VideoProvider:
    return IvsProvider(config=config, secrets=secrets)


PROVIDERS: dict[Platform, tuple[Factory, Validator]] = {
    Platform.MUX: (_mux, MuxProvider.validate_config),
    Platform.AWS_IVS: (_aws_ivs, IvsProvider.validate_config),
    Platform.NGINX_RTMP: (_nginx_rtmp, NginxRtmpProvider.validate_config),
    Platform.CUSTOM_RTMP: (_custom_rtmp, CustomRtmpProvider.validate_config),
    Platform.RESTREAM: (_restream, RestreamProvider.validate_config),
}
SUPPORTED_PLATFORMS = list(PROVIDERS)


def build_provider(
    platform: Platform,
    *,
    settings: StreamsSettings,
    config: dict[str, Any],
    secrets: dict[str, str],
    store: SecretsStore | None = None,
) -> VideoProvider:
    """The provider of `platform` configured from the environment and the admin's settings;
    `store` lets it change its stored secrets (a refreshed OAuth token)."""
    try:
        factory, _ = PROVIDERS[platform]
    except KeyError:
        raise UnsupportedPlatform(platform) from None
    return factory(settings, config, secrets, store)


def validate_config(platform: Platform, config: dict[str, Any]) -> dict[str, Any]:
    """The admin's config for `platform`, checked and normalised (InvalidProviderConfig if not)."""
    try:
        _, validator = PROVIDERS[platform]
    except KeyError:
        raise UnsupportedPlatform(platform) from None
    return validator(config)
