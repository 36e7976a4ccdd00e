"""A scripted Anthropic server that also counts how many model requests are in flight at once."""

from __future__ import annotations

from aiohttp import web

from fakes.fake_anthropic import FakeAnthropic


class CountingAnthropic(FakeAnthropic):
    """``FakeAnthropic`` (same scripting) with ``in_flight`` and ``peak`` over ``/v1/messages``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.in_flight = 0
        self.peak = 0

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super()._messages(request)
        finally:
            self.in_flight -= 1
