"""Webhook receivers for `make bench`: one process serving a few loopback ports, each a
minimal HTTP/1.1 server that answers every POST with 204 at once and counts it. No signature
is checked: the benchmark measures what sending costs the service, not what receiving costs.

`python -m bench.receivers PORT [PORT ...]`. A GET on any port answers
`{"received": <POSTs on all ports>, "by_port": {...}}`, which is also how readiness is seen.
Run in a process of its own so its CPU shows apart from the service's, as wrk's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


class Receivers:
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.counts = dict.fromkeys(ports, 0)

    def counted(self) -> bytes:
        body = json.dumps({"received": sum(self.counts.values()), "by_port": self.counts}).encode()
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        ) + body

    async def serve_one(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Requests on one connection, kept alive until the client closes it."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method = head.split(b" ", 1)[0]
                length, chunked, close = 0, False, False
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"transfer-encoding":
                        chunked = b"chunked" in value.lower()
                    elif name == b"connection":
                        close = value.strip().lower() == b"close"
                if chunked:
                    await _skip_chunks(reader)
                elif length:
                    await reader.readexactly(length)
                if method == b"POST":
                    self.counts[port] += 1
                    writer.write(NO_CONTENT)
                else:
                    writer.write(self.counted())
                if close:
                    await writer.drain()
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def run(self) -> None:
        servers = []
        for port in self.ports:

            async def on_connect(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = port
            ) -> None:
                await self.serve_one(port, reader, writer)

            servers.append(await asyncio.start_server(on_connect, "127.0.0.1", port))
        await asyncio.gather(*(s.serve_forever() for s in servers))


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            return


def main() -> None:
    ports = [int(p) for p in sys.argv[1:]]
    if not ports:
        raise SystemExit("usage: python -m bench.receivers PORT [PORT ...]")
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):  # uvloop comes with uvicorn[standard]
        import uvloop

        loop_factory = uvloop.new_event_loop
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=loop_factory) as r:
        r.run(Receivers(ports).run())


if __name__ == "__main__":
    main()
