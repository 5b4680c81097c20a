"""A small TCP proxy in its own thread: passes bytes through, or black-holes them.

`blackhole()` makes the network swallow everything: new connections are accepted and never
answered, bytes on open ones are dropped in both directions (as a cut cable or a firewall
that drops packets would). `heal()` lets new connections through again and closes the ones
that lost bytes (their TCP streams could never recover).
"""

from __future__ import annotations

import asyncio
import threading

from tests.fakes.server import free_port


class TcpProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = free_port(host)
        self.holed = False
        self._damaged: set[asyncio.StreamWriter] = set()
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._stopping: asyncio.Event | None = None

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stopping is not None
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def blackhole(self) -> None:
        self._loop.call_soon_threadsafe(self._set_holed, True)

    def heal(self) -> None:
        self._loop.call_soon_threadsafe(self._set_holed, False)

    def _set_holed(self, holed: bool) -> None:
        self.holed = holed
        if not holed:
            for writer in list(self._damaged):
                writer.close()
            self._damaged.clear()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._client, self.host, self.port)
        self._ready.set()
        await self._stopping.wait()
        server.close()
        for writer in list(self._open):
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            while self.holed:  # accepted, never answered
                self._damaged.add(writer)
                if await reader.read(65536) == b"":
                    return
            up_reader, up_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            writer.close()
            return
        self._open.add(up_writer)
        pair = (writer, up_writer)
        await asyncio.gather(
            self._pump(reader, up_writer, pair), self._pump(up_reader, writer, pair)
        )

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.holed:
                    self._damaged.update(pair)
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for end in pair:
                end.close()
                self._open.discard(end)
