"""The ASGI app: ``POST /predict``, ``GET /health``, ``/ready``, ``/metrics``, and FastAPI's ``/openapi.json`` and ``/docs``.

Every refusal is a status and one line of JSON, ``{"error": "..."}`` (the Hugging Face inference
API's shape): 400 malformed JSON, 413 body too large, 415 not JSON, 422 a wrong type, an empty
input or a limit passed (the limit and its option named), 503 queue full (with ``Retry-After``),
504 timed out. Requests that come while the model warms up wait in the queue (``/ready`` tells when
it is warm). What clients send cannot cause a 500: inputs are checked before
they reach the model, and a model error fails only its own request (:mod:`modelzoo.serve.batcher`).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any, Dict, List, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelzoo.serve.batcher import Batcher, ModelFailed, QueueFull
from modelzoo.serve.limits import ServeLimits
from modelzoo.serve.metrics import ServeMetrics
from modelzoo.serve.model import Item, ServedModel, TextOptions
from modelzoo.serve.schema import (
    AGGREGATION_STRATEGIES,
    REQUEST_PARAMETERS,
    ErrorMessage,
    Parameters,
    PredictRequest,
    PredictResponse,
    describe_errors,
)

PREDICT_PATH = "/predict"
RETRY_AFTER_S = 1
_REFUSALS = {
    status: {"model": ErrorMessage, "description": description}
    for status, description in (
        (400, "malformed JSON"),
        (413, "body above --max_body_bytes"),
        (415, "not application/json"),
        (422, "a wrong type, an empty input, or a limit passed"),
        (503, "queue full (Retry-After)"),
        (504, "not answered within --request_timeout"),
    )
}


class Refused(Exception):
    """A request the server answers with ``status`` and one line saying why."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def _error(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(model: ServedModel, limits: ServeLimits, gather: bool = True) -> FastAPI:
    """The app serving ``model`` within ``limits`` (``gather=False``: one request per model call)."""
    metrics = ServeMetrics()
    batcher = Batcher(model.predict, model.token_budget, limits.max_queue, limits.batch_wait_ms / 1000, metrics, gather)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        batcher.start(model.warm_up)
        yield
        await batcher.stop()

    app = FastAPI(
        title="modelzoo serve",
        summary=f"A trained {model.head} model: POST /predict in the Hugging Face inference shape.",
        version="1",
        lifespan=lifespan,
        strict_content_type=False,  # no Content-Type: read as JSON (a wrong one is refused, _RequestGuard)
    )

    @app.post(PREDICT_PATH, response_model=PredictResponse, responses=_REFUSALS)
    async def predict(request: PredictRequest) -> JSONResponse:
        """Entities (token classifier) or labels (sequence classifier) of one text or a list of texts."""
        items = _checked_items(request, model, limits)
        try:
            results = await batcher.submit(items, limits.request_timeout_s)
        except QueueFull as full:
            raise Refused(
                503, f"queue full: {full.waiting} texts waiting, {len(items)} more would pass --max_queue "
                f"{limits.max_queue}; retry later", {"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        except asyncio.TimeoutError:
            raise Refused(504, f"not answered within {limits.request_timeout_s:g} s (--request_timeout)") from None
        except ModelFailed as error:
            raise Refused(500, f"the model failed on this request: {error}") from None
        return JSONResponse(results[0] if isinstance(request.inputs, str) else results)

    @app.get("/health")
    async def health() -> Dict[str, str]:
        """The server is up (the model may still be warming up: see /ready)."""
        return {"status": "alive"}

    @app.get("/ready", responses={503: {"model": ErrorMessage, "description": "not ready yet"}})
    async def ready() -> Any:
        """The model is loaded and warmed up: requests are answered at full speed."""
        if batcher.ready.is_set():
            return {"status": "ready"}
        return _error(503, "model warming up")

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Requests, texts, batch sizes, latency and queue depth in the Prometheus text format."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.exception_handler(Refused)
    async def refused(_request: Request, error: Refused) -> JSONResponse:
        return _error(error.status, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        if errors and errors[0]["type"] == "json_invalid":
            return _error(400, f"malformed JSON: {errors[0]['ctx']['error']} at character {errors[0]['loc'][-1]}")
        return _error(422, describe_errors(errors))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail), error.headers)

    app.add_middleware(_RequestGuard, max_body_bytes=limits.max_body_bytes, metrics=metrics)
    return app


def _checked_items(request: PredictRequest, model: ServedModel, limits: ServeLimits) -> List[Item]:
    """The request's texts with their options, or :class:`Refused` (422) naming what is wrong."""
    texts = [request.inputs] if isinstance(request.inputs, str) else request.inputs
    parameters = request.parameters or Parameters()
    if not texts:
        raise Refused(422, "inputs: an empty list")
    if len(texts) > limits.max_inputs:
        raise Refused(422, f"inputs: {len(texts)} texts; at most {limits.max_inputs} a request (--max_inputs)")
    given = [name for name in REQUEST_PARAMETERS if name in parameters.model_fields_set]
    refused = [name for name in given if name not in model.request_parameters]
    if refused:
        raise Refused(422, f"parameters.{refused[0]}: means nothing to a {model.head} model")
    if parameters.aggregation_strategy not in AGGREGATION_STRATEGIES:
        raise Refused(
            422, f"parameters.aggregation_strategy: {parameters.aggregation_strategy!r} is not supported "
            f"(supported: {', '.join(AGGREGATION_STRATEGIES)})",
        )
    options = TextOptions(parameters.pretokenized, parameters.min_entity_score)
    for index, text in enumerate(texts):
        where = "inputs" if isinstance(request.inputs, str) else f"inputs[{index}]"
        if len(text) > limits.max_chars:
            raise Refused(422, f"{where}: {len(text)} characters; at most {limits.max_chars} a text (--max_chars)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:  # JSON's \ud800 escapes can name what no text holds
            raise Refused(422, f"{where}: a lone surrogate at character {error.start}, not text") from None
        if not model.holds_text(text, options):
            raise Refused(422, f"{where}: no words to predict")
    return [(text, options) for text in texts]


class _RequestGuard:
    """Around ``POST /predict``: refuses a body above ``max_body_bytes`` before reading it when its
    length is declared (413), stops reading one that grows past it otherwise, refuses a body that is
    not JSON (415), and counts every answer by status and its latency."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: ServeMetrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_counted)
            else:
                await self.app(scope, self._bounded(receive), send_counted)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(str(status[0])).inc()
            self.metrics.latency.observe(time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> Optional[JSONResponse]:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            return _error(415, f"Content-Type {content_type}: send JSON (Content-Type: application/json)")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return _error(413, f"body of {declared} bytes; at most {self.max_body_bytes} (--max_body_bytes)")
        return None

    def _bounded(self, receive: Receive) -> Receive:
        read = [0]

        async def bounded_receive() -> Message:
            message = await receive()
            read[0] += len(message.get("body", b""))
            if read[0] > self.max_body_bytes:
                raise HTTPException(413, f"body above {self.max_body_bytes} bytes (--max_body_bytes)")
            return message

        return bounded_receive
