"""Downloading a platform's file for the core (``bot.ports.FileFetcher``), safely: what every platform's
fetcher shares (``adapters.slack.files``, ``adapters.discord.files``).

* **Only the platform's own file hosts.** A URL comes from an event, so anyone who can write a message
  could point it anywhere (an internal address, a cloud metadata service): before any request its origin
  (scheme, host, port) must be one of the platform's (``FileOrigin``: data, with reasons). URLs are
  parsed once, by yarl, and the same parsed URL is requested, so the check and the request can never
  read a URL differently; an ambiguous one (userinfo, a backslash in the authority) is refused. Redirects
  are not followed blindly: each hop is checked like the first.
* **Size capped before the body is read.** The platform's metadata first (no request at all), then the
  ``Content-Length``, then the body itself while it streams in: the download stops past the cap.
* **Time-bounded.** Connecting, and the whole download, each get ``seconds``.
* Nothing here logs a URL (Discord's carry a signature) or a byte of the body.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from bot.files import FileHostRefused, FileTooBig, FileUnavailable, megabytes

# A platform's file host may redirect to another of its hosts; more hops than this is not a file.
MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FileOrigin:
    """A host a platform serves its files from, and why Haven may fetch from it."""

    origin: str  # scheme://host[:port], as ``origin_of`` writes it
    why: str


def origin_of(url: str | URL) -> str | None:
    """``scheme://host[:port]`` (lower case, the scheme's default port left out) of a plain http(s) URL;
    None for anything else: another scheme, no host, credentials in the URL, an unparseable one."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        scheme, host, port = parsed.scheme.lower(), parsed.raw_host, parsed.explicit_port
    except (ValueError, TypeError):
        return None
    if scheme not in ("https", "http") or not host or parsed.raw_user is not None:
        return None
    if parsed.raw_password is not None:
        return None
    default = 443 if scheme == "https" else 80
    netloc = host.lower() if port in (None, default) else f"{host.lower()}:{port}"
    return f"{scheme}://{netloc}"


def origins(configured: Collection[str] | None, defaults: Collection[FileOrigin]) -> frozenset[str]:
    """The origins a fetcher allows: the configured ones (a setting) or else the platform's own."""
    chosen = list(configured) if configured is not None else [d.origin for d in defaults]
    return frozenset(o for o in (origin_of(c.rstrip("/")) for c in chosen) if o is not None)


def is_allowed(url: str | URL, allowed: Collection[str]) -> bool:
    found = origin_of(url)
    return found is not None and found in allowed


async def fetch_file(
    url: str,
    *,
    allowed: Collection[str],
    platform: str,
    max_bytes: int,
    size: int | None,
    seconds: float,
    headers: Mapping[str, str] | None = None,
    html_ok: bool = False,
) -> bytes:
    """The bytes at ``url``, or one of ``bot.files``'s refusals (see the module docstring).

    ``html_ok`` False: an HTML page where a file was expected is refused (Slack answers a request it did
    not authorize with its sign-in page and a 200)."""
    if size is not None and size > max_bytes:
        raise FileTooBig("files.too_big", size=megabytes(size), limit=megabytes(max_bytes))
    try:
        target = URL(url)
    except (ValueError, TypeError):
        raise FileHostRefused("files.foreign_host", platform=platform) from None
    timeout = aiohttp.ClientTimeout(total=seconds, sock_connect=seconds, sock_read=seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            for _ in range(MAX_REDIRECTS + 1):
                if not is_allowed(target, allowed):
                    raise FileHostRefused("files.foreign_host", platform=platform)
                async with session.get(target, headers=dict(headers or {}), allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS:
                        location = resp.headers.get("Location")
                        if not location:
                            raise FileUnavailable("files.not_handed_over", platform=platform)
                        target = target.join(URL(location))
                        continue
                    if resp.status != 200:
                        raise FileUnavailable("files.http_error", platform=platform, status=resp.status)
                    if not html_ok and resp.content_type == "text/html":
                        raise FileUnavailable("files.not_handed_over", platform=platform)
                    if resp.content_length is not None and resp.content_length > max_bytes:
                        raise FileTooBig("files.over_limit", limit=megabytes(max_bytes))
                    body = bytearray()
                    async for chunk in resp.content.iter_chunked(_CHUNK):
                        body += chunk
                        if len(body) > max_bytes:
                            raise FileTooBig("files.over_limit", limit=megabytes(max_bytes))
                    return bytes(body)
            raise FileUnavailable("files.too_many_redirects", platform=platform)
    except TimeoutError:
        raise FileUnavailable("files.timed_out", platform=platform) from None
    except (aiohttp.ClientError, ValueError):
        raise FileUnavailable("files.not_handed_over", platform=platform) from None
