"""A TCP relay that delays every byte by a fixed time in each direction, keeping the stream's pipelining.

    python tests/delay_relay.py LISTEN_HOST LISTEN_PORT TO_HOST TO_PORT DELAY_MS

Stands in for `tc netem delay` between a Locust master and its workers on a kernel built
without netem (CONFIG_NET_SCH_NETEM not set): a chunk read at t is written at t + DELAY_MS,
so the link has that latency but not a lower throughput. Stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await chunks.get()
            if not data:
                break
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            chunks.put_nowait((loop.time() + delay_s, data))
    except ConnectionError:
        pass
    chunks.put_nowait((0.0, b""))
    try:
        await sender
    except ConnectionError:
        pass


async def main(host: str, port: int, to_host: str, to_port: int, delay_ms: float) -> None:
    delay_s = delay_ms / 1000

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(to_host, to_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer, delay_s), pipe(up_reader, writer, delay_s))

    server = await asyncio.start_server(handle, host, port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
