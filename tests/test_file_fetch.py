"""Fetching files safely (``adapters.files`` and the platforms' fetchers) against local file hosts: the
origin allow-list, size caps before and during the download, redirects, time-outs, Slack's sign-in page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.discord.files import DiscordFiles
from adapters.files import fetch_file, is_allowed, origin_of, origins
from adapters.slack.files import SLACK_FILE_ORIGINS, SlackFiles
from bot.files import FileHostRefused, FileTooBig, FileUnavailable
from bot.types import Attachment
from fakes.file_host import FileHost

SLACK = frozenset({"https://files.slack.com"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/download/a.png", True),
        ("https://FILES.slack.com:443/files-pri/T1-F1/a.png", True),  # case and the default port
        ("http://files.slack.com/files-pri/T1-F1/a.png", False),  # not over TLS
        ("https://files.slack.com:8443/a.png", False),
        ("https://files.slack.com.evil.example/a.png", False),
        ("https://evil.example/files.slack.com/a.png", False),
        ("https://files.slack.com@evil.example/a.png", False),  # userinfo: the host is evil.example
        ("https://user:pw@files.slack.com/a.png", False),  # credentials in a URL: never ours
        ("https://evil.example#@files.slack.com/a.png", False),
        ("https://files.slack.com\\@evil.example/a.png", False),  # ambiguous: refused outright
        ("https://slack.com/a.png", False),
        ("https://169.254.169.254/latest/meta-data/", False),
        ("file:///etc/passwd", False),
        ("ftp://files.slack.com/a.png", False),
        ("", False),
        ("//files.slack.com/a.png", False),
    ],
)
def test_the_slack_allow_list(url: str, allowed: bool) -> None:
    assert is_allowed(url, SLACK) is allowed


def test_origins_come_from_the_setting_or_the_platform_table() -> None:
    assert origins(None, SLACK_FILE_ORIGINS) == SLACK
    assert origins(["http://127.0.0.1:8123/", "not a url"], SLACK_FILE_ORIGINS) == {"http://127.0.0.1:8123"}
    assert origin_of("http://127.0.0.1:80/x") == "http://127.0.0.1"


@pytest.fixture
async def host() -> AsyncIterator[FileHost]:
    async with FileHost() as h:
        yield h


async def get(host: FileHost, url: str, *, max_bytes: int = 1000, size: int | None = None) -> bytes:
    return await fetch_file(
        url, allowed={host.url}, platform="Slack", max_bytes=max_bytes, size=size, seconds=2.0
    )


async def test_a_file_on_an_allowed_host_is_fetched(host: FileHost) -> None:
    assert await get(host, host.add("a.txt", b"hello", "text/plain")) == b"hello"


async def test_a_size_over_the_cap_in_the_metadata_makes_no_request(host: FileHost) -> None:
    url = host.add("big.pdf", b"%PDF-", "application/pdf")
    with pytest.raises(FileTooBig):
        await get(host, url, size=30_000_000)
    assert host.requests == []


async def test_a_content_length_over_the_cap_is_refused_before_the_body(host: FileHost) -> None:
    with pytest.raises(FileTooBig):
        await get(host, host.add("big.txt", b"x" * 5000, "text/plain"), max_bytes=1000)


async def test_a_body_without_length_stops_past_the_cap(host: FileHost) -> None:
    host.chunked = True
    with pytest.raises(FileTooBig):
        await get(host, host.add("big.txt", b"x" * 300_000, "text/plain"), max_bytes=1000)


async def test_a_redirect_to_another_host_is_not_followed(host: FileHost) -> None:
    async with FileHost() as elsewhere:
        host.redirect_to(elsewhere.add("secret", b"internal"))
        with pytest.raises(FileHostRefused):
            await get(host, host.add("a.txt", b"hello", "text/plain"))
        assert elsewhere.requests == []


async def test_a_redirect_within_the_host_is_followed_and_checked(host: FileHost) -> None:
    target = host.add("b.txt", b"moved", "text/plain")
    async with FileHost() as first:
        first.redirect_to(target)
        got = await fetch_file(
            first.add("a.txt", b"", "text/plain"),
            allowed={host.url, first.url},
            platform="Slack",
            max_bytes=100,
            size=None,
            seconds=2.0,
        )
    assert got == b"moved"


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ("missing", FileUnavailable),
        ("html", FileUnavailable),  # Slack's sign-in page, answered with a 200
        ("slow", FileUnavailable),
    ],
)
async def test_failures_are_refusals_with_a_reason(
    host: FileHost, setup: str, error: type[Exception]
) -> None:
    url = host.add("a.png", b"<html>sign in</html>", "text/html" if setup == "html" else "image/png")
    if setup == "missing":
        url = url.replace("a.png", "nothing.png")
    if setup == "slow":
        host.delay = 1.0
    with pytest.raises(error):
        await fetch_file(url, allowed={host.url}, platform="Slack", max_bytes=100, size=None, seconds=0.3)


async def test_slack_sends_the_workspace_token_and_never_looks_it_up_for_another_host(host: FileHost) -> None:
    asked: list[str] = []

    async def token_for(team: str) -> str | None:
        asked.append(team)
        return "xoxb-team-token"

    files = SlackFiles(token_for, [host.url])
    url = host.add("a.txt", b"hi", "text/plain")
    assert (
        await files.fetch("T1", Attachment("F1", "a.txt", "text/plain", url, 2), max_bytes=10, seconds=2)
        == b"hi"
    )
    assert host.requests[0].headers["Authorization"] == "Bearer xoxb-team-token"
    assert asked == ["T1"]

    with pytest.raises(FileHostRefused):
        await files.fetch(
            "T1",
            Attachment("F2", "a.txt", "text/plain", "https://evil.example/a.txt", 2),
            max_bytes=10,
            seconds=2,
        )
    assert asked == ["T1"]  # the token was never even looked up


async def test_discord_sends_no_credentials(host: FileHost) -> None:
    files = DiscordFiles([host.url])
    url = host.add("a.txt", b"hi", "text/plain")
    assert (
        await files.fetch("G1", Attachment("A1", "a.txt", "text/plain", url, 2), max_bytes=10, seconds=2)
        == b"hi"
    )
    assert "Authorization" not in host.requests[0].headers
    with pytest.raises(FileHostRefused):
        await DiscordFiles().fetch("G1", Attachment("A1", "a.txt", "", url, 2), max_bytes=10, seconds=2)
