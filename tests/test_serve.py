"""``run.py --mode serve``'s app in process (Starlette's TestClient): answers equal to ``--mode predict``,
every bad input and limit refused with a one-line JSON error, dynamic batching, the queue bound and
the timeout. The tiny models are the export tests' (tests/export_runs.py); the server process itself
(SIGTERM, the full queue end to end) is tests/test_serve_process.py.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from modelzoo.cli.main import build_parser, main, resolve_params
from modelzoo.serve.app import create_app
from modelzoo.serve.limits import ServeLimits
from modelzoo.serve.model import TextOptions, load_served_model
from tests.export_runs import DATA, export_checkpoint, raw_sentences, tiny_classifier_run


def served_model(run: Path, *options: str):
    """The model ``run.py CPU --mode serve --model_dir RUN OPTIONS`` serves."""
    args = build_parser().parse_args(["CPU", "--mode", "serve", "--model_dir", str(run), *options])
    model, _ = load_served_model(resolve_params(args), torch.device("cpu"), True, args.quantize, args.engine)
    return model


@pytest.fixture(scope="module")
def ner_model(ner_run):
    return served_model(ner_run)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    return tiny_classifier_run(tmp_path_factory)


@pytest.fixture(scope="module")
def client(ner_model):
    with TestClient(create_app(ner_model, ServeLimits(max_inputs=8, max_queue=64, max_chars=400, max_body_bytes=20_000))) as c:
        yield c


def predict_jsonl(run: Path, lines: list[str], tmp_path: Path, capsys, *options: str) -> list[dict]:
    """The records of ``run.py CPU --mode predict --model_dir RUN`` on ``lines``."""
    source = tmp_path / "input.txt"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    capsys.readouterr()
    assert main(["CPU", "--mode", "predict", "--model_dir", str(run), "--input", str(source), *options]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def as_entity_groups(record: dict) -> list[dict]:
    return [
        {"entity_group": e["type"], "score": e["score"], "word": e["text"], "start": e["start"], "end": e["end"]}
        for e in record["entities"]
    ]


def post_all(client: TestClient, texts: list[str], parameters: dict, per_request: int) -> list:
    answers = []
    for start in range(0, len(texts), per_request):
        response = client.post("/predict", json={"inputs": texts[start : start + per_request], "parameters": parameters})
        assert response.status_code == 200, response.text
        answers.extend(response.json())
    return answers


@pytest.mark.parametrize("options", [(), ("--pretokenized",), ("--min_entity_score", "0.6")])
def test_entities_equal_run_py_predict(client, ner_run, tmp_path, capsys, options):
    lines = raw_sentences(DATA / "ner" / "test.tsv") + ["Peter Blackburn ( London ) , 4-3 .", "  ünïcode  naïve Zürich  "]
    parameters = {"pretokenized": "--pretokenized" in options}
    if "--min_entity_score" in options:
        parameters["min_entity_score"] = float(options[-1])
    expected = [as_entity_groups(record) for record in predict_jsonl(ner_run, lines, tmp_path, capsys, *options)]
    assert sum(len(entities) for entities in expected) > 10  # the tiny model finds entities to compare
    assert post_all(client, lines, parameters, per_request=7) == expected
    single = client.post("/predict", json={"inputs": lines[0], "parameters": parameters})
    assert single.json() == expected[0]  # one text: its list of entities, not a list of lists


@pytest.mark.parametrize("engine", ["int8", "onnxruntime int8"])
def test_int8_and_onnxruntime_serve_what_they_predict(ner_run, tmp_path, capsys, engine):
    """All texts in one request, so in the batches predict makes: int8 quantizes each batch's activations
    with one scale, so a text's scores move a little with the texts it shares a batch with."""
    options = ["--quantize", "int8"]
    if engine.startswith("onnxruntime"):
        options += ["--engine", "onnxruntime", "--checkpoint_path", str(export_checkpoint(ner_run, "onnx", tmp_path / "onnx"))]
    lines = raw_sentences(DATA / "ner" / "test.tsv")
    expected = [as_entity_groups(record) for record in predict_jsonl(ner_run, lines, tmp_path, capsys, *options)]
    with TestClient(create_app(served_model(ner_run, *options), ServeLimits())) as client:
        assert post_all(client, lines, {}, per_request=len(lines)) == expected


def test_word_is_the_text_at_the_offsets(client):
    text = "  Peter   Blackburn went to London ."
    entities = [e for es in post_all(client, [text] * 3, {}, per_request=8) for e in es]
    assert entities and all(text[e["start"] : e["end"]] == e["word"] for e in entities)


def test_labels_equal_run_py_predict(classifier_run, tmp_path, capsys):
    lines = [line.split("\t")[0] for line in (DATA / "classifier" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    expected = [{key: r[key] for key in ("label", "score", "scores")} for r in predict_jsonl(classifier_run, lines, tmp_path, capsys)]
    assert len(expected) == len(lines) > 10
    with TestClient(create_app(served_model(classifier_run), ServeLimits(max_inputs=16))) as c:
        assert post_all(c, lines, {}, per_request=16) == expected
        assert c.post("/predict", json={"inputs": lines[0]}).json() == expected[0]
        refused = c.post("/predict", json={"inputs": "good", "parameters": {"min_entity_score": 0.5}})
        assert (refused.status_code, refused.json()) == (
            422, {"error": "parameters.min_entity_score: means nothing to a sequence_classification model"}
        )


BAD_REQUESTS = {
    "malformed JSON": ({"content": b'{"inputs": "Peter",'}, 400, "malformed JSON: "),
    "invalid UTF-8": ({"content": b'{"inputs": "\xff\xfe"}'}, 400, "body"),
    "too deep": ({"content": b"[" * 15_000}, 400, "body"),
    "not an object": ({"json": ["Peter"]}, 422, "body: Input should be a valid dictionary"),
    "null": ({"content": b"null"}, 422, "body"),
    "no inputs": ({"json": {"parameters": {}}}, 422, "inputs: Field required"),
    "inputs a number": ({"json": {"inputs": 5}}, 422, "inputs: a string or a list of strings"),
    "inputs an object": ({"json": {"inputs": {"text": "Peter"}}}, 422, "inputs: a string or a list of strings"),
    "a number in the list": ({"json": {"inputs": ["Peter", 5]}}, 422, "inputs[1]: Input should be a valid string"),
    "unknown key": ({"json": {"inputs": "Peter", "option": {}}}, 422, "option: unknown key (known: inputs, parameters)"),
    "unknown parameter": (
        {"json": {"inputs": "Peter", "parameters": {"top_k": 3}}}, 422,
        "parameters.top_k: unknown key (known: aggregation_strategy, min_entity_score, pretokenized)",
    ),
    "pretokenized a string": (
        {"json": {"inputs": "Peter", "parameters": {"pretokenized": "yes"}}}, 422, "parameters.pretokenized: Input should be a valid boolean",
    ),
    "score above 1": (
        {"json": {"inputs": "Peter", "parameters": {"min_entity_score": 2}}}, 422, "parameters.min_entity_score: Input should be less than or equal to 1",
    ),
    "score a string": (
        {"json": {"inputs": "Peter", "parameters": {"min_entity_score": "0.5"}}}, 422, "parameters.min_entity_score: Input should be a valid number",
    ),
    "score NaN": (
        {"content": b'{"inputs": "Peter", "parameters": {"min_entity_score": NaN}}'}, 422, "parameters.min_entity_score: Input should be a finite number",
    ),
    "other aggregation": (
        {"json": {"inputs": "Peter", "parameters": {"aggregation_strategy": "simple"}}}, 422,
        "parameters.aggregation_strategy: 'simple' is not supported (supported: first)",
    ),
    "empty text": ({"json": {"inputs": ""}}, 422, "inputs: no words to predict"),
    "blank text": ({"json": {"inputs": " \t\n "}}, 422, "inputs: no words to predict"),
    "blank text in a list": ({"json": {"inputs": ["Peter", "London", "  "]}}, 422, "inputs[2]: no words to predict"),
    "empty list": ({"json": {"inputs": []}}, 422, "inputs: an empty list"),
    "too many texts": ({"json": {"inputs": ["Peter"] * 9}}, 422, "inputs: 9 texts; at most 8 a request (--max_inputs)"),
    "too long a text": ({"json": {"inputs": ["Peter", "x " * 201]}}, 422, "inputs[1]: 402 characters; at most 400 a text (--max_chars)"),
    "body too large": ({"json": {"inputs": ["Peter " * 60] * 70}}, 413, "at most 20000 (--max_body_bytes)"),
    "body too large, no length": (
        {"content": (b'{"inputs": "Peter",' + b" " * 5000 for _ in range(5))}, 413, "body above 20000 bytes (--max_body_bytes)"
    ),
    "not JSON": ({"content": b"inputs=Peter", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
                 "Content-Type application/x-www-form-urlencoded: send JSON"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_requests_get_a_4xx_and_one_line_of_json(client, name):
    request, status, message = BAD_REQUESTS[name]
    if "content" in request and "headers" not in request:
        request = {**request, "headers": {"Content-Type": "application/json"}}
    response = client.post("/predict", **request)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert "\n" not in response.text and list(response.json()) == ["error"]
    assert message in response.json()["error"]
    assert client.post("/predict", json={"inputs": "Peter went to London ."}).status_code == 200  # the model lives on


@pytest.mark.parametrize("text", ["\x00\x01 Peter \u200b\ufeff", "Zoë 🙂 の 東京 ﷽", "a" * 400, "\u0301\u0301 \u0301"])
def test_odd_texts_are_answered(client, text):
    response = client.post("/predict", json={"inputs": [text, "Peter"]})
    assert response.status_code == 200, response.text
    assert all(text[e["start"] : e["end"]] == e["word"] for e in response.json()[0])


def test_a_lone_surrogate_is_refused(client):
    body = json.dumps({"inputs": ["Peter", "\ud800 Peter"]}).encode("ascii")  # valid JSON, not valid text
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (422, {"error": "inputs[1]: a lone surrogate at character 0, not text"})


def test_unknown_routes_and_methods_are_json_errors(client):
    for response, status in ((client.get("/predict"), 405), (client.get("/nowhere"), 404)):
        assert (response.status_code, list(response.json())) == (status, ["error"])


def test_health_ready_metrics_and_openapi(client):
    assert client.get("/health").json() == {"status": "alive"}
    assert wait_ready(client) == {"status": "ready"}
    client.post("/predict", json={"inputs": ["Peter", "London"]})
    page = client.get("/metrics")
    assert page.headers["content-type"].startswith("text/plain")
    values = metric_values(page.text)
    assert values['modelzoo_requests_total{status="200"}'] >= 1
    assert values["modelzoo_sentences_total"] >= 2
    assert values["modelzoo_queue_texts"] == 0 and values["modelzoo_requests_in_flight"] == 0
    for family in ("modelzoo_batch_texts", "modelzoo_request_seconds"):
        assert values[f"{family}_count"] >= 1
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    request_schema = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert request_schema["examples"][0]["inputs"].startswith("George Washington")
    assert {"422", "413", "503"} <= set(schema["paths"]["/predict"]["post"]["responses"])


def wait_ready(client) -> dict:
    """/ready's answer once the model is warm (it warms up on its own thread as the app starts)."""
    for _ in range(600):
        response = client.get("/ready")
        if response.status_code == 200:
            return response.json()
        assert response.json() == {"error": "model warming up"}
        time.sleep(0.05)
    raise AssertionError("not ready after 30 s")


def metric_values(page: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line and line[0] != "#"}


def wait_for_metric(client, name: str, value: float) -> None:
    for _ in range(600):
        if metric_values(client.get("/metrics").text).get(name) == value:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never reached {value}")


def test_concurrent_requests_share_one_model_call(ner_model):
    """Three requests within the gathering wait go through the model together, each answer to its caller."""
    texts = ["Peter went to London .", "EU rejects German call", "Blackburn"]
    alone = [ner_model.predict([(text, TextOptions())])[0] for text in texts]
    with TestClient(create_app(ner_model, ServeLimits(batch_wait_ms=5000))) as client:
        wait_ready(client)
        with ThreadPoolExecutor(3) as pool:
            together = list(pool.map(lambda text: client.post("/predict", json={"inputs": text}).json(), texts))
        values = metric_values(client.get("/metrics").text)
    assert together == alone
    assert (values["modelzoo_batch_texts_count"], values["modelzoo_batch_texts_sum"]) == (1, 3)


def test_full_queue_refuses_with_retry_after_then_recovers(ner_model):
    with TestClient(create_app(ner_model, ServeLimits(max_queue=2, max_inputs=2, batch_wait_ms=5000))) as client:
        wait_ready(client)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(client.post, "/predict", json={"inputs": ["Peter", "London"]})
            wait_for_metric(client, "modelzoo_queue_texts", 2)
            refused = client.post("/predict", json={"inputs": "Blackburn"})
            assert first.result().status_code == 200
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json() == {"error": "queue full: 2 texts waiting, 1 more would pass --max_queue 2; retry later"}
        assert client.post("/predict", json={"inputs": "Blackburn"}).status_code == 200
        assert metric_values(client.get("/metrics").text)['modelzoo_requests_total{status="503"}'] == 1


def test_a_request_past_its_timeout_gets_a_504_and_leaves_the_queue(ner_model):
    with TestClient(create_app(ner_model, ServeLimits(request_timeout_s=0.2, batch_wait_ms=60_000))) as client:
        wait_ready(client)
        response = client.post("/predict", json={"inputs": ["Peter", "London"]})
        assert (response.status_code, response.json()) == (504, {"error": "not answered within 0.2 s (--request_timeout)"})
        assert metric_values(client.get("/metrics").text)["modelzoo_queue_texts"] == 0


def test_a_model_failure_fails_only_its_own_request(ner_model, monkeypatch):
    """Fault injection: the model raises on one text; the requests sharing its model call are answered."""
    predict = ner_model.predict

    def failing_predict(items):
        if any(text == "poison" for text, _ in items):
            raise RuntimeError("injected")
        return predict(items)

    monkeypatch.setattr(ner_model, "predict", failing_predict)
    with TestClient(create_app(ner_model, ServeLimits(batch_wait_ms=2000))) as client:
        wait_ready(client)
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda text: client.post("/predict", json={"inputs": text}), ["Peter", "poison", "London"]))
        assert [a.status_code for a in answers] == [200, 500, 200]
        assert answers[1].json() == {"error": "the model failed on this request: RuntimeError: injected"}
        assert client.post("/predict", json={"inputs": "Peter"}).status_code == 200


def test_a_model_call_takes_requests_up_to_one_token_budget(ner_model, monkeypatch):
    """Budget 16 tokens, texts of 4 words (6 tokens estimated): two requests a call, then the third alone."""
    monkeypatch.setattr(ner_model, "token_budget", 16)
    texts = ["Peter went to London", "EU rejects German call", "Blackburn went to Lisbon"]
    with TestClient(create_app(ner_model, ServeLimits(batch_wait_ms=5000))) as client:
        wait_ready(client)
        with ThreadPoolExecutor(2) as pool:
            pool.submit(client.post, "/predict", json={"inputs": texts[0]})
            wait_for_metric(client, "modelzoo_queue_texts", 1)
            pool.submit(client.post, "/predict", json={"inputs": texts[1]})
            wait_for_metric(client, "modelzoo_queue_texts", 2)
            assert client.post("/predict", json={"inputs": texts[2]}).status_code == 200
        values = metric_values(client.get("/metrics").text)
    assert (values["modelzoo_batch_texts_count"], values["modelzoo_batch_texts_sum"]) == (2, 3)
