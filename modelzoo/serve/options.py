"""The command line of ``run.py --mode serve``: where to listen and the limits (defaults: :class:`ServeLimits`)."""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass, fields

from modelzoo.common.errors import ParamsError, UserError
from modelzoo.serve.limits import ServeLimits

DEFAULT_HOST = "127.0.0.1"  # this machine only: exposing the model is a choice (--host 0.0.0.0)
DEFAULT_PORT = 8080
# option -> (ServeLimits field, type, metavar, help)
LIMIT_OPTIONS = {
    "max_body_bytes": ("max_body_bytes", int, "BYTES", "request bodies above this size get a 413"),
    "max_inputs": ("max_inputs", int, "N", "texts a request may hold (422 above)"),
    "max_chars": ("max_chars", int, "N", "characters a text may hold (422 above)"),
    "max_queue": ("max_queue", int, "N",
                  "texts that may wait for the model; a request that does not fit gets a 503 with Retry-After"),
    "request_timeout": ("request_timeout_s", float, "SECONDS", "how long a request may take before it gets a 504"),
    "batch_wait_ms": ("batch_wait_ms", float, "MS", "how long the first request may wait for others to share "
                      "its model call when the model is idle"),
}
SERVE_OPTIONS = ("host", "port", *LIMIT_OPTIONS)
SERVER_PACKAGES = ("fastapi", "uvicorn", "prometheus_client")


class ServerPackagesMissingError(UserError):
    """--mode serve without the server's packages (an environment set up for training only)."""


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    limits: ServeLimits


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--mode serve", "serve a trained model over HTTP (docs/SERVE.md); also "
                                      "--checkpoint_path, --quantize, --engine")
    group.add_argument("--host", help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    group.add_argument("--port", type=int, help=f"port to listen on (default {DEFAULT_PORT}; 0: any free port)")
    defaults = {field.name: field.default for field in fields(ServeLimits)}
    for option, (name, kind, metavar, text) in LIMIT_OPTIONS.items():
        group.add_argument(f"--{option}", type=kind, metavar=metavar, help=f"{text} (default {defaults[name]})")


def serve_options(args: argparse.Namespace) -> ServeOptions:
    """The options given, the defaults for the rest; an impossible limit is one error line."""
    given = {name: getattr(args, option) for option, (name, *_) in LIMIT_OPTIONS.items() if getattr(args, option) is not None}
    limits = ServeLimits(**given)
    limits.check()
    port = DEFAULT_PORT if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ParamsError(f"--port {port}: 0 to 65535")
    return ServeOptions(args.host or DEFAULT_HOST, port, limits)


def require_server_packages() -> None:
    missing = [name for name in SERVER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ServerPackagesMissingError(
            f"--mode serve needs {', '.join(missing)}, not installed: pip install -r requirements.txt"
        )
