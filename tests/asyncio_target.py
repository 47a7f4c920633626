"""A plain asyncio HTTP target with a fixed service time, for open-model tests.

    python tests/asyncio_target.py PORT SERVICE_MS TIMES_FILE

Answers every request `200 ok` after SERVICE_MS (an asyncio sleep: requests overlap, as
on a server with spare capacity). On SIGTERM it writes the arrival time (epoch seconds)
of every request it received to TIMES_FILE, one per line, and exits: the target's own
record of when load arrived, for rate and inter-arrival checks. SIGSTOP/SIGCONT pause it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

ARRIVALS: list[float] = []


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, service_s: float) -> None:
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            arrived = time.time()
            while await reader.readline() not in (b"\r\n", b"\n", b""):
                pass  # headers; GET requests only: no body
            ARRIVALS.append(arrived)
            await asyncio.sleep(service_s)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int, service_ms: float, times_file: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await asyncio.start_server(lambda r, w: handle(r, w, service_ms / 1000), "127.0.0.1", port)
    async with server:
        await stop.wait()
    with open(times_file, "w") as handle_out:
        handle_out.write("".join(f"{t:.6f}\n" for t in ARRIVALS))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]))
