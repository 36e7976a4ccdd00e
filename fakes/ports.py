"""A free local TCP port for a server that another process will start.

Picking a port by binding to port 0 and closing the socket leaves a window in which any other process
on the host (a parallel test worker, an outgoing connection) may be handed the same port by the kernel
before the intended server binds it: the server then fails with "address already in use". Here the
port is left in TIME_WAIT instead (the trick of Yelp's ephemeral-port-reserve): the kernel hands it to
nobody else for a minute, while a server that binds with ``SO_REUSEADDR`` (asyncio's and aiohttp's
default on Unix, and PostgreSQL's) may still take it.
"""

from __future__ import annotations

import socket
from contextlib import closing

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that the kernel will not give out for about a minute (see the module)."""
    with closing(socket.socket()) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, 0))
        listener.listen(1)
        address = listener.getsockname()
        # The side that accepted closes first, so it is this port that stays in TIME_WAIT.
        with closing(socket.create_connection(address)), closing(listener.accept()[0]):
            pass
    return int(address[1])
