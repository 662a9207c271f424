"""Where an endpoint may point: an http(s) URL of a host, checked when it is registered and
again before each attempt (a name may resolve elsewhere later).

Outside production a receiver may be on the same machine or network; in production loopback,
private, link-local (cloud metadata) and other non-public addresses are refused unless
WEBHOOKS_ALLOW_PRIVATE_TARGETS says otherwise, so that nobody makes the service call into the
cluster.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


class TargetRefused(ValueError):
    """The URL may not be an endpoint; the message says why, for the admin."""


def check_url(url: str, *, private_allowed: bool) -> str:
    """The URL as it will be called, or TargetRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() for char in url):
        raise TargetRefused("the URL may not contain spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with http:// or https://")
    if not parts.hostname:
        raise TargetRefused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL may not carry credentials: authenticate with the signature")
    if parts.fragment:
        raise TargetRefused("the URL may not have a #fragment")
    if port == 0:
        raise TargetRefused("port 0 is not a port")
    if not private_allowed:
        host = parts.hostname.rstrip(".").lower()
        if host == "localhost" or host.endswith(".localhost") or host.endswith(".internal"):
            raise TargetRefused("the URL must name a public host")
        try:
            refuse_private(ipaddress.ip_address(host))
        except ValueError as error:
            if isinstance(error, TargetRefused):
                raise
    return url


def refuse_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        raise TargetRefused("the URL must name a public address")


async def check_resolved(url: str, *, private_allowed: bool) -> None:
    """Before an attempt: every address the host resolves to must be public (unless allowed).
    A name that does not resolve is left to the HTTP client to say so."""
    if private_allowed:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError:
        return
    for *_, sockaddr in found:
        refuse_private(ipaddress.ip_address(sockaddr[0]))
