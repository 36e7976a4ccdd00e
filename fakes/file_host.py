"""A local file host that records every request (aiohttp, 127.0.0.1, ephemeral port): Discord's CDN in
the Discord tests, and "another host" that a file URL must never reach in the SSRF tests.

    async with FileHost() as host:
        url = host.add("report.pdf", pdf_bytes, "application/pdf")
        ...
        assert host.requests == []          # nothing ever asked it

``add(name, data, content_type)`` serves ``data`` at a fresh path and returns its URL; ``requests`` keeps
each request's path and headers (answered or not). ``redirect_to(url)`` makes every path answer a 302 to
``url``; ``chunked`` sends bodies without a ``Content-Length`` (so only the streamed size can tell);
``delay`` seconds pass before each answer.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from aiohttp import web

from fakes.serving import InThread, serve


@dataclass
class FileRequest:
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class FileHost(InThread):
    thread_name = "fake file host"

    def __init__(self) -> None:
        self.files: dict[str, tuple[str, bytes]] = {}
        self.requests: list[FileRequest] = []
        self.redirect: str | None = None
        self.chunked = False
        self.delay = 0.0
        self.url = ""
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    def add(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        path = f"/attachments/{next(self._ids)}/{name}"
        self.files[path] = (content_type, data)
        return f"{self.url}{path}?ex=signed&hm=abc"

    def redirect_to(self, url: str) -> None:
        self.redirect = url

    async def __aenter__(self) -> FileHost:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(FileRequest(request.path, dict(request.headers)))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.redirect is not None:
            raise web.HTTPFound(self.redirect)
        found = self.files.get(request.path)
        if found is None:
            return web.Response(status=404, text="not found")
        content_type, data = found
        if not self.chunked:
            return web.Response(body=data, content_type=content_type)
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 65536):
            await response.write(data[start : start + 65536])
        await response.write_eof()
        return response
