"""The SSRF guard: a webhook may only call public https addresses, unless the settings allow
more (`WEBHOOK_ALLOW_HTTP`, `WEBHOOK_ALLOW_PRIVATE_NETWORKS`).

Checked when an endpoint is created or its url changed (a 400 naming `url`), and again before
every attempt, since what a name resolves to can change: the attempt then connects to the
addresses just checked (`Destination`), never to a second lookup's answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.config import Settings
from app.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1918 and unique local IPv6 (fc00::/7); loopback, link-local and unspecified addresses are
# known to `ipaddress` itself. 0.0.0.0/8 reaches the host itself on Linux, like 0.0.0.0.
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_THIS_HOST = ipaddress.ip_network("0.0.0.0/8")
_RESOLVE_SECONDS = 5.0


class Refused(Exception):
    """The url may not be called; `reason` says why, in words for the endpoint's owner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an attempt may connect: the url's host name (for TLS and the Host header) and
    the addresses checked for it."""

    host: str
    addresses: tuple[IPAddress, ...]


def forbidden_kind(address: IPAddress) -> str | None:
    """What makes `address` private, in words; None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified or address in _THIS_HOST:
        return "an unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    return None


async def resolve(url: str, settings: Settings) -> Destination:
    """The addresses `url` may be called at, or `Refused`."""
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.webhook_allow_http else ("https",)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        allowed = "an absolute https or http URL" if settings.webhook_allow_http else None
        raise Refused(f"must be {allowed or 'an absolute https URL'}")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise Refused("has an invalid port") from None
    host = parts.hostname
    addresses = await _addresses(host, port)
    if not settings.webhook_allow_private_networks:
        for address in addresses:
            kind = forbidden_kind(address)
            if kind is None:
                continue
            named = host if host == str(address) else f"{host} resolves to {address}, which"
            raise Refused(
                f"{named} is {kind}; only public addresses may receive webhooks"
                " (WEBHOOK_ALLOW_PRIVATE_NETWORKS)"
            )
    return Destination(host, addresses)


async def _addresses(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(_RESOLVE_SECONDS):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        raise Refused(f"the host name {host} does not resolve") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise Refused(f"the host name {host} does not resolve")
    return tuple(addresses)


async def check_url(url: str, settings: Settings) -> None:
    """A 400 naming `url` unless webhooks may be sent to it."""
    try:
        await resolve(url, settings)
    except Refused as exc:
        raise InvalidInput("url", exc.reason) from None
