"""Which provider serves which platform."""

from collections.abc import Callable
from typing import Any

from contracts.streams import Platform
from services.streams.providers.base import UnsupportedPlatform, VideoProvider
from services.streams.providers.custom_rtmp import CustomRtmpProvider
from services.streams.providers.nginx_rtmp import NginxRtmpProvider
from services.streams.settings import StreamsSettings

Factory = Callable[[StreamsSettings, dict[str, Any], dict[str, str]], VideoProvider]
Validator = Callable[[dict[str, Any]], dict[str, Any]]


def _nginx_rtmp(
    settings: StreamsSettings, config: dict[str, Any], secrets: dict[str, str]
) -> VideoProvider:
    return NginxRtmpProvider(
        ingest_url=config.get("ingest_url") or settings.rtmp_ingest_url,
        hls_base_url=config.get("hls_base_url") or settings.hls_base_url,
    )


def _custom_rtmp(
    settings: StreamsSettings, config: dict[str, Any], secrets: dict[str, str]
) -> VideoProvider:
    return CustomRtmpProvider(
        ingest_url=config.get("ingest_url"),
        playback_url_template=config.get("playback_url_template"),
    )


PROVIDERS: dict[Platform, tuple[Factory, Validator]] = {
    Platform.NGINX_RTMP: (_nginx_rtmp, NginxRtmpProvider.validate_config),
    Platform.CUSTOM_RTMP: (_custom_rtmp, CustomRtmpProvider.validate_config),
}
SUPPORTED_PLATFORMS = list(PROVIDERS)


def build_provider(
    platform: Platform,
    *,
    settings: StreamsSettings,
    config: dict[str, Any],
    secrets: dict[str, str],
) -> VideoProvider:
    """The provider of `platform` configured from the environment and the admin's settings."""
    try:
        factory, _ = PROVIDERS[platform]
    except KeyError:
        raise UnsupportedPlatform(platform) from None
    return factory(settings, config, secrets)


def validate_config(platform: Platform, config: dict[str, Any]) -> dict[str, Any]:
    """The admin's config for `platform`, checked and normalised (InvalidProviderConfig if not)."""
    try:
        _, validator = PROVIDERS[platform]
    except KeyError:
        raise UnsupportedPlatform(platform) from None
    return validator(config)
