"""``run.py CPU|GPU --mode serve``: load the model, then serve it with uvicorn until SIGTERM or Ctrl-C.

The model is loaded before the server listens, so a wrong path or params file is the usual one
``error:`` line and exit code 2. On SIGTERM (or SIGINT) uvicorn stops accepting connections, lets
the requests in flight finish (each is bounded by ``--request_timeout``), stops the model thread and
returns; the process then exits 0. (Uvicorn re-raises the signal after its graceful shutdown so that
the default action would kill the process; the no-op handlers installed here take that re-raise.)
"""

from __future__ import annotations

import math
import signal
import sys
from typing import Optional

import torch
import uvicorn

from modelzoo.params.params import Params
from modelzoo.serve.app import create_app
from modelzoo.serve.limits import ServeLimits
from modelzoo.serve.model import load_served_model
from modelzoo.serve.options import ServeOptions

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_server(
    params: Params, options: ServeOptions, device: torch.device, strict: bool, quantize: Optional[str], engine: str
) -> None:
    model, report = load_served_model(params, device, strict, quantize, engine)
    for line in report:
        print(line, file=sys.stderr)
    print(f"serving a {model.head} model: POST /predict, GET /health /ready /metrics /docs", file=sys.stderr)
    serve_app(create_app(model, options.limits), options.host, options.port, options.limits)


def serve_app(app, host: str, port: int, limits: ServeLimits) -> None:
    """Serve ``app`` until a stop signal, then return once the requests in flight are answered."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=False,  # a line per request costs throughput; /metrics counts them
        log_level="info",
        # shutdown waits for the requests in flight, each bounded by the request timeout
        timeout_graceful_shutdown=math.ceil(limits.request_timeout_s) + 1,
    )
    previous = {sig: signal.signal(sig, _stopped) for sig in STOP_SIGNALS}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped(_signal: int, _frame) -> None:
    """Takes the signal uvicorn re-raises after its graceful shutdown: the shutdown is the stop."""
