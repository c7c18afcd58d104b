"""``run.py CPU --mode serve`` as a process on loopback: SIGTERM with requests in flight answers them all
and exits 0; a full queue answers 503 with Retry-After, then recovers. Bad options are one error line.

The requests are held in the gathering wait (``--batch_wait_ms``), not by a slow model, so that
they are in flight when the signal comes on any machine; the tests wait on the server's own
gauges (``/metrics``) rather than on time.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

import httpx
import pytest

from modelzoo.cli.main import main
from tests.run_fixtures import REPO_ROOT, subprocess_env
from tests.test_serve import metric_values

TEXTS = ["Peter Blackburn went to London .", "EU rejects German call to boycott British lamb .", "Japan", "Nadim Ladki",
         "AL-AIN , United Arab Emirates 1996-12-06", "Germany 's representative", "Fischler proposed EU-wide measures",
         "Spanish Farm Minister Loyola de Palacio"]


class Server:
    """``run.py CPU --mode serve --model_dir RUN --port 0 OPTIONS``, its port read off uvicorn's start line."""

    def __init__(self, run: Path, *options: str) -> None:
        command = [sys.executable, str(REPO_ROOT / "run.py"), "CPU", "--mode", "serve", "--model_dir", str(run),
                   "--port", "0", *options]
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=subprocess_env(), stderr=subprocess.PIPE, text=True)
        self.log: List[str] = []
        for line in self.process.stderr:
            self.log.append(line)
            started = re.search(r"Uvicorn running on (http://[\d.]+:\d+)", line)
            if started:
                self.url = started.group(1)
                break
        else:
            raise AssertionError("server did not start:\n" + "".join(self.log))
        self._drain = threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True)
        self._drain.start()

    def metrics(self) -> dict:
        return metric_values(httpx.get(self.url + "/metrics").text)

    def wait_for(self, name: str, value: float) -> None:
        for _ in range(1200):
            if self.metrics().get(name) == value:
                return
            time.sleep(0.05)
        raise AssertionError(f"{name} never reached {value}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self._drain.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def server_on(ner_run):
    servers: List[Server] = []

    def start(*options: str) -> Server:
        servers.append(Server(ner_run, *options))
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


def post(url: str, inputs) -> httpx.Response:
    return httpx.post(url + "/predict", json={"inputs": inputs}, timeout=60)


def test_sigterm_answers_the_requests_in_flight_then_exits_0(server_on):
    server = server_on("--batch_wait_ms", "4000")
    assert server.url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
    httpx.get(server.url + "/ready")
    calm = [post(server.url, text).json() for text in TEXTS]
    with ThreadPoolExecutor(len(TEXTS)) as pool:
        answers = [pool.submit(post, server.url, text) for text in TEXTS]
        server.wait_for("modelzoo_requests_in_flight", len(TEXTS))  # all read, held in the gathering wait
        code = server.stop()
        responses = [answer.result() for answer in answers]
    assert [r.status_code for r in responses] == [200] * len(TEXTS)
    assert [r.json() for r in responses] == calm
    assert code == 0, "".join(server.log)
    assert not any("Traceback" in line for line in server.log)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health")


def test_a_full_queue_answers_503_with_retry_after_then_recovers(server_on):
    server = server_on("--batch_wait_ms", "4000", "--max_queue", "4", "--max_inputs", "4")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, server.url, TEXTS[:4])
        server.wait_for("modelzoo_queue_texts", 4)
        refused = [post(server.url, [text]) for text in TEXTS[4:]]
        assert first.result().status_code == 200
    assert {(r.status_code, r.headers.get("retry-after")) for r in refused} == {(503, "1")}
    assert [post(server.url, [text]).status_code for text in TEXTS[4:]] == [200] * 4
    assert server.metrics()['modelzoo_requests_total{status="503"}'] == 4
    assert server.stop() == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (("--max_inputs", "0"), "error: --max_inputs 0: at least 1"),
        (("--max_queue", "8"), "error: --max_queue 8 is below --max_inputs 64: a full-size request could never be queued"),
        (("--request_timeout", "0"), "error: --request_timeout 0.0: seconds, above 0"),
        (("--port", "70000"), "error: --port 70000: 0 to 65535"),
        (("--input", "x.txt"), "error: --input: only for --mode predict"),
        (("--pretokenized",), "error: --pretokenized: only for --mode predict"),
    ],
)
def test_bad_serve_options_are_one_error_line(ner_run, capsys, options, error):
    assert main(["CPU", "--mode", "serve", "--model_dir", str(ner_run), *options]) == 2
    assert capsys.readouterr().err.strip() == error


def test_serve_options_belong_to_serve(ner_run, capsys):
    assert main(["CPU", "--mode", "eval", "--model_dir", str(ner_run), "--port", "9000", "--max_queue", "3"]) == 2
    assert capsys.readouterr().err.strip() == "error: --port, --max_queue: only for --mode serve"
