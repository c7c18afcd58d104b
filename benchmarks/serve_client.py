"""The loopback side of the serving scripts: start a server process, and clients that post single texts.

The clients speak HTTP/1.1 over asyncio streams directly, one keep-alive connection each: the load
generator shares the machine's cores with the server, and a client library's per-request work
(request objects, header models, connection pools) would be CPU taken from the server under test.
The load generator's own CPU time is printed with every result for that reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
START_LINE = re.compile(r"Uvicorn running on http://([\d.]+):(\d+)")


class ServerProcess:
    """A server command (it must print uvicorn's start line, ``--port 0``), run until :meth:`stop`."""

    def __init__(self, command: list[str], threads: int) -> None:
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=self.environment(threads), stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        for line in self.process.stderr:
            self.log.append(line)
            started = START_LINE.search(line)
            if started:
                self.host, self.port = started.group(1), int(started.group(2))
                break
        else:
            raise RuntimeError("the server did not start:\n" + "".join(self.log))
        threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True).start()
        self.url = f"http://{self.host}:{self.port}"
        self.wait_ready()

    @staticmethod
    def environment(threads: int) -> dict[str, str]:
        """This environment (``OMP_WAIT_POLICY`` included, if set) with ``threads`` torch threads and the repository importable."""
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        return {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}

    def wait_ready(self, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/ready") as response:
                    if response.status == 200:
                        return
            except OSError:  # 503 while warming up (urllib raises it as HTTPError)
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not get ready")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


@dataclass
class Answer:
    status: int
    body: object
    seconds: float


async def _client(host: str, port: int, texts: list[str], parameters: dict, answers: list, indices: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for index in indices:
            body = json.dumps({"inputs": texts[index], "parameters": parameters}).encode("utf-8")
            request = (f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode("ascii") + body
            started = time.perf_counter()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            answers[index] = Answer(status, json.loads(payload), time.perf_counter() - started)
    finally:
        writer.close()


def post_each(url_host: str, port: int, texts: list[str], clients: int, parameters: dict | None = None) -> list[Answer]:
    """Every text posted alone, by ``clients`` concurrent clients (client k sends texts k, k + clients, ...)."""
    answers: list = [None] * len(texts)

    async def run() -> None:
        await asyncio.gather(*(
            _client(url_host, port, texts, parameters or {}, answers, list(range(k, len(texts), clients)))
            for k in range(clients)
        ))

    asyncio.run(run())
    return answers
