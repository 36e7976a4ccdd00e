"""What every local fake server shares: listening on a free local port, and running on its own thread.

The fakes are async context managers (``async with FakeX() as x``) for in-process tests; subprocess
tests need the same server alive on another event loop while the test's own loop waits on a child
process, which ``InThread`` provides.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free port of 127.0.0.1; the runner (to clean up) and the base URL.

    In-flight handlers are cancelled half a second after cleanup starts, so a test never waits on a
    handler that is still streaming into a closed connection."""
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


class InThread:
    """``start_in_thread`` / ``stop_thread`` for a fake that is an async context manager."""

    thread_name = "fake-server"
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Self:
        raise NotImplementedError

    async def __aexit__(self, *exc: object) -> None:
        raise NotImplementedError

    def start_in_thread(self) -> Self:
        """Run the server on its own event loop in a daemon thread (for subprocess tests)."""
        ready, failed = threading.Event(), list[BaseException]()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.__aenter__())
            except Exception as e:
                failed.append(e)
                loop.close()
                return
            finally:
                ready.set()
            loop.run_forever()
            loop.run_until_complete(self.__aexit__())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(10) or failed:
            raise RuntimeError(f"{self.thread_name} did not start") from (failed[0] if failed else None)
        return self

    def stop_thread(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = self._thread = None


__all__ = ["InThread", "serve"]
