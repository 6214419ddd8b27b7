"""Which endpoint URLs are allowed (WHK-D30..WHK-D32): http or https with a host; and unless
the server runs with `--allow-private-webhooks`, no host that is or resolves to a private,
loopback, link-local or otherwise non-public address (a webhook must not become a way to
reach the server's own network)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

__all__ = ("Address", "UrlRefused", "addresses_of", "check_url", "first_private")

URL_LENGTH_MAX = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """Why a URL cannot be an endpoint; the message is the API's."""


def addresses_of(infos: Iterable[tuple[Any, ...]]) -> list[Address]:
    """The IP addresses of `getaddrinfo`'s answers (an IPv6 scope id dropped)."""
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def first_private(addresses: Iterable[Address]) -> Address | None:
    """The first address that is not public (WHK-D31), if any."""
    return next((address for address in addresses if not address.is_global), None)


def _addresses(host: str) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise UrlRefused(f"its host {host!r} does not resolve") from error
    return addresses_of(infos)


def check_url(url: str, *, allow_private: bool) -> str:
    """`url` when it may be an endpoint.

    Raises:
        UrlRefused: it may not; the message says why.
    """
    if len(url) > URL_LENGTH_MAX:
        raise UrlRefused(f"it is longer than {URL_LENGTH_MAX} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise UrlRefused(f"it is not a URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("it must start with http:// or https://")
    if not parts.hostname:
        raise UrlRefused("it has no host")
    if parts.username or parts.password:
        raise UrlRefused("it must not carry credentials")
    if not allow_private and (address := first_private(_addresses(parts.hostname))):
        raise UrlRefused(
            f"its host {parts.hostname} is a private or loopback address "
            f"({address}); start the server with --allow-private-webhooks to allow it"
        )
    return url
