"""ember serve: REST predictions equal the predictor's, validation, body cap, micro-batching."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

import ember
from ember.export import Predictor
from ember.serve import MicroBatcher, _jsonable, create_app

from .helpers import blob_data, tag_data


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    ember.seed(0)
    folder = tmp_path_factory.mktemp("serve")
    learn = ember.learner(blob_data(), quiet=True, path=folder)
    learn.fit_one_cycle(1, 1e-2)
    x, _ = learn.data.valid_dl.dataset.tensors
    items = [row.tolist() for row in x[:10]]
    return ember.load(learn.export("model")), items


def test_predict_health_metadata_and_docs(exported):
    predictor, items = exported
    client = TestClient(create_app(predictor))
    response = client.post("/predict", json={"inputs": items})
    assert response.status_code == 200
    assert response.json() == {"predictions": predictor.predict_batch(items)}
    assert client.get("/health").json() == {"status": "ok"}
    metadata = client.get("/metadata").json()
    assert metadata["data_kind"] == "tensor" and metadata["model"] == "mlp"
    assert "input_schema" in metadata
    assert "/predict" in client.get("/openapi.json").json()["paths"]


def test_the_openapi_schema_describes_each_item_as_the_data_does(exported):
    # before, /openapi.json (and /docs) said only that inputs is a list of anything: a client
    # generated from it knew nothing of what an item is; /metadata alone carried the schema
    predictor, _ = exported
    schema = TestClient(create_app(predictor)).get("/openapi.json").json()
    request = schema["components"]["schemas"]["PredictRequest"]["properties"]["inputs"]
    assert request["items"] == predictor.data.input_schema()
    assert request["type"] == "array" and request["minItems"] == 1


def test_bad_requests_get_4xx_with_a_reason(exported):
    predictor, items = exported
    client = TestClient(create_app(predictor, max_items=5, max_body_bytes=2000))
    assert client.post("/predict", json={"inputs": []}).status_code == 422
    assert client.post("/predict", json={"wrong": items}).status_code == 422
    too_many = client.post("/predict", json={"inputs": items[:6]})
    assert too_many.status_code == 422
    ragged = client.post("/predict", json={"inputs": [[1.0, 2.0], items[0]]})
    assert ragged.status_code == 422 and "detail" in ragged.json()
    short = client.post("/predict", json={"inputs": [[1.0, 2.0]]})  # well formed, too short
    assert short.status_code == 422
    assert short.json()["detail"].startswith("item 0 has shape (2,), but the model was "
                                             "trained on items of shape (8,)")
    large = client.post("/predict", content=b"x" * 5000,
                        headers={"content-type": "application/json"})
    assert large.status_code == 413 and "over the limit" in large.json()["detail"]


def test_concurrent_requests_are_micro_batched(exported):
    predictor, items = exported
    app = create_app(predictor, max_batch=64, max_wait_ms=50)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*[
                client.post("/predict", json={"inputs": [item]}) for item in items])

    responses = asyncio.run(run())
    assert [r.json()["predictions"][0] for r in responses] == predictor.predict_batch(items)
    assert app.state.batcher.batches_run < len(items)


def test_a_streamed_body_over_the_cap_is_refused_while_it_arrives(exported):
    predictor, items = exported
    app = create_app(predictor, max_body_bytes=2000)

    async def chunks():
        yield b'{"inputs": ['
        for _ in range(100):
            yield b'[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],'  # no content-length: chunked
        yield b"[0]]}"

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/predict", content=chunks(),
                                     headers={"content-type": "application/json"})

    response = asyncio.run(run())
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]
    client = TestClient(app)
    assert client.post("/predict", json={"inputs": items[:2]}).status_code == 200
    batching = client.get("/metadata").json()["batching"]
    assert batching["batches_run"] >= 1 and batching["items_run"] >= 2


def test_whole_numbers_in_json_reach_a_float_model_as_floats(exported):
    predictor, items = exported
    client = TestClient(create_app(predictor))
    whole = [[round(value) for value in item] for item in items[:3]]  # JSON.stringify(1.0) == "1"
    response = client.post("/predict", json={"inputs": whole})
    assert response.status_code == 200, response.text
    floats = [[float(value) for value in item] for item in whole]
    assert response.json()["predictions"] == predictor.predict_batch(floats)
    assert predictor.manifest["data"]["state"]["input_dtype"] == "float32"


def test_probs_option_gives_each_class_probability(exported):
    predictor, items = exported
    client = TestClient(create_app(predictor))
    response = client.post("/predict", json={"inputs": items[:4], "options": {"probs": True}})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    expected = predictor.predict_batch(items[:4], probs=True)
    for got, prediction in zip(predictions, expected):
        assert set(got) == {"value", "probabilities"} and got["value"] == prediction.value
        assert list(got["probabilities"]) == ["0", "1", "2"]  # JSON keys are strings
        assert list(got["probabilities"].values()) == list(prediction.probabilities.values())
        assert sum(got["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    plain = client.post("/predict", json={"inputs": items[:4], "options": {}})
    assert plain.json()["predictions"] == predictor.predict_batch(items[:4])
    assert client.get("/metadata").json()["options"] == {"probs": False}


def test_an_unknown_option_or_a_bad_value_is_a_422_naming_it(exported):
    predictor, items = exported
    client = TestClient(create_app(predictor))
    unknown = client.post("/predict", json={"inputs": items[:1], "options": {"beam": 5}})
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "unknown option 'beam': this tensor model takes probs"
    bad = client.post("/predict", json={"inputs": items[:1], "options": {"probs": "maybe"}})
    assert bad.status_code == 422 and bad.json()["detail"].startswith(
        "option 'probs' cannot be 'maybe'")
    assert client.post("/predict", json={"inputs": items[:1], "options": [1]}).status_code == 422


class _Echo:
    """A predictor that records the calls it gets and answers each item with the options."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, dict]] = []

    def predict_batch(self, items, **options):
        self.calls.append((list(items), options))
        return [(item, options.get("probs", False)) for item in items]


def test_requests_with_different_options_never_share_a_batch():
    echo = _Echo()
    batcher = MicroBatcher(echo, max_batch=64, max_wait_ms=200)

    async def run():
        return await asyncio.gather(*[
            batcher.predict([index], {"probs": True} if index % 2 else {})
            for index in range(10)])

    results = asyncio.run(run())
    assert results == [[(index, bool(index % 2))] for index in range(10)]
    assert sorted((sorted(items), options) for items, options in echo.calls) == [
        ([0, 2, 4, 6, 8], {}), ([1, 3, 5, 7, 9], {"probs": True})]
    assert batcher.batches_run == 2


def test_a_request_whose_client_hung_up_does_not_fail_the_others_in_its_batch():
    # its cancelled future made set_result raise in the worker, which then failed every other
    # request of the batch with InvalidStateError
    batcher = MicroBatcher(_Echo(), max_batch=64, max_wait_ms=100)

    async def run():
        gone = asyncio.ensure_future(batcher.predict([0]))
        kept = asyncio.ensure_future(batcher.predict([1]))
        await asyncio.sleep(0.01)  # both wait in the batch
        gone.cancel()
        return await kept

    assert asyncio.run(run()) == [(1, False)]


def test_values_json_cannot_hold_are_null_in_responses():
    import math

    import numpy as np
    import torch

    from ember.serve import _jsonable

    assert _jsonable([math.nan, 1.5, math.inf]) == [None, 1.5, None]
    assert _jsonable(np.array([[np.nan, 2.0]], np.float32)) == [[None, 2.0]]
    assert _jsonable(torch.tensor([-math.inf, 0.5])) == [None, 0.5]
    assert _jsonable(np.float64(np.nan)) is None
    assert _jsonable(np.array([3, 4])) == [3, 4]
    assert _jsonable(ember.Prediction("a", {"a": math.nan})) == {
        "value": "a", "probabilities": {"a": None}}


def test_a_model_without_costly_options_has_no_limits(exported):
    predictor, _ = exported
    assert predictor.data.option_limits() == {}
    assert TestClient(create_app(predictor)).get("/metadata").json()["option_limits"] == {}


@pytest.mark.parametrize("setting, value", [
    ("max_items", 0), ("max_items", 2.5), ("max_items", True), ("max_body_bytes", 0),
    ("max_body_bytes", "16MiB"), ("max_batch", 0), ("max_wait_ms", -1.0),
    ("max_wait_ms", float("nan"))])
def test_create_app_refuses_a_serving_limit_out_of_range_naming_it(exported, setting, value):
    # before, max_items=0 built an app whose every request was a 422 ("List should have at
    # most 0 items"), max_body_bytes=0 one that refused every body with a 413, and
    # max_wait_ms=nan one whose batches never waited; the CLI checked these, Python did not
    predictor, _ = exported
    with pytest.raises(ember.DataError, match=rf"^{setting}=.*must be"):
        create_app(predictor, **{setting: value})


def test_create_app_takes_the_exported_file_too(tmp_path):
    # create_app("model.ember") used to fail with "'str' object has no attribute 'manifest'"
    ember.seed(0)
    learn = ember.learner(blob_data(), quiet=True, path=tmp_path)
    learn.fit_one_cycle(1, 1e-2)
    path = learn.export("model")
    items = [row.tolist() for row in learn.data.valid_dl.dataset.tensors[0][:3]]
    for given in (path, str(path)):
        response = TestClient(create_app(given)).post("/predict", json={"inputs": items})
        assert response.json() == {"predictions": ember.load(path).predict_batch(items)}
    with pytest.raises(TypeError, match=r"ember\.load"):
        create_app(learn)


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, [True]])
def test_a_bool_option_takes_only_a_json_boolean(exported, value):
    # "yes", "true" and 1 were read as true by pydantic's lax mode (and 0 as false)
    predictor, items = exported
    client = TestClient(create_app(predictor))
    response = client.post("/predict", json={"inputs": items[:1], "options": {"probs": value}})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"option 'probs' cannot be {value!r}: it takes a JSON boolean (true or false)")
    for given in (True, False):
        response = client.post("/predict", json={"inputs": items[:1],
                                                 "options": {"probs": given}})
        expected = _jsonable(predictor.predict_batch(items[:1], probs=given))
        assert response.json()["predictions"] == expected


def test_the_options_form_field_of_uploads_is_checked_as_strictly(exported):
    predictor, _ = exported
    client = TestClient(create_app(predictor))
    files = [("files", ("row.bin", b"\x00", "application/octet-stream"))]
    for options in ('{"probs": "yes"}', '{"probs": 1}'):
        response = client.post("/predict/files", files=files, data={"options": options})
        assert response.status_code == 422
        assert response.json()["detail"].endswith("it takes a JSON boolean (true or false)")


class _CroppingData(ember.Data):
    """Tensor data whose predict_batch takes options that JSON sends as arrays and strings."""

    def predict_batch(self, model, items, device=None, bs: int = 256, *,
                      window: tuple[int, int] = (0, 8), tags: frozenset[str] = frozenset(),
                      probs: bool = False, **options):
        start, end = window
        items = [torch.as_tensor(item)[start:end] for item in items]
        predictions = super().predict_batch(model, items, device, bs, probs=probs, **options)
        return [[prediction, sorted(tags)] for prediction in predictions]


def test_an_option_json_sends_as_an_array_is_taken(exported):
    # options were checked in pydantic's strict Python mode, where a JSON array is no tuple
    # (nor a set): every value of a tuple[int, int] option was refused
    predictor, items = exported
    data = _CroppingData.from_state(predictor.data.state())
    client = TestClient(create_app(Predictor(predictor.model, data, predictor.manifest,
                                             predictor.device)))
    response = client.post("/predict", json={"inputs": items[:2],
                                             "options": {"window": [0, 8], "tags": ["a"]}})
    assert response.status_code == 200, response.json()
    assert response.json()["predictions"] == [[value, ["a"]]
                                              for value in predictor.predict_batch(items[:2])]
    for bad in ([0, 8.5], "0:8", [0]):
        response = client.post("/predict", json={"inputs": items[:1],
                                                 "options": {"window": bad}})
        assert response.status_code == 422
        assert response.json()["detail"].startswith(f"option 'window' cannot be {bad!r}")
    response = client.post("/predict", json={"inputs": items[:1], "options": {"probs": "yes"}})
    assert response.json()["detail"].endswith("it takes a JSON boolean (true or false)")


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded",
                                          "text/plain"])
def test_a_json_body_is_read_whatever_its_content_type(exported, content_type):
    # before, `curl -d '{"inputs": ...}'` (which sends a form content type), a client that set
    # none, or text/plain got a 422 "Input should be a valid dictionary": the body is JSON
    predictor, items = exported
    client = TestClient(create_app(predictor))
    headers = {"content-type": content_type} if content_type else {}
    body = json.dumps({"inputs": items[:2]})
    response = client.post("/predict", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"predictions": predictor.predict_batch(items[:2])}
    bad = client.post("/predict", content="inputs=1", headers=headers)
    assert bad.status_code == 422 and "JSON" in json.dumps(bad.json()["detail"])


@pytest.mark.parametrize("bad", [[1, "a", 0, 0, 0, 0, 0, 0], [10**400] + [0] * 7,
                                 [[0.5] * 8], [0.5] * 3, {"a": 1}])
def test_a_bad_item_in_a_batch_is_a_422_naming_its_index(exported, bad):
    # before, a number too large for a float was a 500, and the others a 422 that said only
    # "cannot turn the items into one tensor batch" (which of 3?), or (an item of another
    # shape alone) a prediction of garbage; then an item of another shape alone was still
    # predicted: nothing knew the training items' shape
    predictor, items = exported
    client = TestClient(create_app(predictor))
    response = client.post("/predict", json={"inputs": [items[0], items[1], bad]})
    assert response.status_code == 422
    assert "item 2" in response.json()["detail"], response.json()
    alone = client.post("/predict", json={"inputs": [bad]})
    assert alone.status_code == 422, alone.json()
    assert re.search(r"items? 0", alone.json()["detail"]), alone.json()


def test_a_bad_item_past_the_first_chunk_of_a_large_request_is_named_by_its_index(exported):
    # before, predict_batch encoded 256 items at a time and each chunk counted from 0: the
    # 300th item of a request was "item 43"
    predictor, items = exported
    client = TestClient(create_app(predictor))
    inputs = [items[0]] * 299 + [[1, "a", 0, 0, 0, 0, 0, 0]]
    response = client.post("/predict", json={"inputs": inputs})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("cannot turn item 299 of the items"), \
        response.json()


def test_an_item_of_another_shape_is_a_422_naming_it_and_the_training_shape(exported):
    # before, 7 features were a 422 quoting torch ("mat1 and mat2 shapes cannot be
    # multiplied") that named no shape to send, and 8 features as 2 rows of 4 were predicted
    predictor, items = exported
    client = TestClient(create_app(predictor))
    for bad, shape in ((items[0][:7], r"\(7,\)"), ([items[0][:4], items[0][4:]], r"\(2, 4\)")):
        response = client.post("/predict", json={"inputs": [bad]})
        assert response.status_code == 422, response.json()
        assert re.match(rf"item 0 has shape {shape}, but the model was trained on items of "
                        rf"shape \(8,\)", response.json()["detail"]), response.json()
        response = client.post("/predict", json={"inputs": [items[0], bad]})
        assert response.json()["detail"].startswith("item 1 has shape"), response.json()


def test_a_multi_label_model_takes_a_threshold_option(tmp_path):
    ember.seed(0)
    learn = ember.learner(tag_data(), quiet=True, path=tmp_path)
    predictor = ember.load(learn.export("tags"))
    items = [row.tolist() for row in learn.data.valid_dl.dataset.tensors[0][:8]]
    client = TestClient(create_app(predictor))
    assert client.get("/metadata").json()["options"] == {"probs": False, "threshold": 0.5}
    for threshold in (0.3, 0.7):
        response = client.post("/predict", json={"inputs": items,
                                                 "options": {"threshold": threshold}})
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == predictor.predict_batch(items,
                                                                         threshold=threshold)
    assert (predictor.predict_batch(items, threshold=0.3)
            != predictor.predict_batch(items, threshold=0.7))  # the option decides
    for bad, says in ((1, "threshold= must be a number between 0 and 1"),
                      (0.0, "threshold= must be a number between 0 and 1"),
                      ("0.3", "option 'threshold' cannot be '0.3': it takes a finite JSON "
                              "number or null")):
        refused = client.post("/predict", json={"inputs": items[:1],
                                                "options": {"threshold": bad}})
        assert refused.status_code == 422 and says in refused.json()["detail"], refused.text


def test_a_threshold_option_is_refused_by_a_single_label_model_saying_why(exported):
    predictor, items = exported
    client = TestClient(create_app(predictor))
    refused = client.post("/predict", json={"inputs": items[:1], "options": {"threshold": 0.3}})
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith(
        "option 'threshold' is not available: tensor data with a single_label target predicts "
        "the most likely class")


class _Broken(ember.Data):
    """Data whose prediction fails the way a plugin's bug would."""

    def predict_batch(self, model, items, device=None, bs=256, *, probs=False, threshold=None,
                      **options):
        raise RuntimeError("secret detail of a plugin bug")


class _RaisingData(ember.Data):
    """Data whose prediction raises ``error`` (a plugin's bug, or its refusal of an item)."""

    error: Exception

    def predict_batch(self, model, items, device=None, bs=256, *, probs=False, threshold=None,
                      **options):
        raise self.error


@pytest.mark.parametrize("error", [KeyError("plugin secret"), TypeError("plugin secret"),
                                   ValueError("plugin secret")])
def test_a_non_data_error_of_predict_batch_is_a_500_not_the_clients_mistake(exported, error,
                                                                             caplog):
    # before, a KeyError, TypeError or ValueError inside a plugin's predict_batch was a 422
    # carrying its text: the client read a plugin's bug as their mistake, and internal text
    predictor, items = exported
    data = _RaisingData(None, None, target_kind="single_label", n_out=3)
    data.error = error
    client = TestClient(create_app(Predictor(predictor.model, data, predictor.manifest,
                                             predictor.device)), raise_server_exceptions=False)
    with caplog.at_level("ERROR", logger="ember.serve"):
        response = client.post("/predict", json={"inputs": items[:2]})
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.json() == {
        "detail": "internal error while predicting; the server log has the traceback"}
    (record,) = [record for record in caplog.records if record.name == "ember.serve"]
    assert record.exc_info is not None and record.exc_info[1] is error


def test_a_data_error_of_predict_batch_is_a_422_naming_the_item(exported):
    predictor, items = exported
    data = _RaisingData(None, None, target_kind="single_label", n_out=3)
    data.error = ember.DataError("item 1 is not what this model reads")
    client = TestClient(create_app(Predictor(predictor.model, data, predictor.manifest,
                                             predictor.device)))
    response = client.post("/predict", json={"inputs": items[:2]})
    assert response.status_code == 422
    assert response.json() == {"detail": "item 1 is not what this model reads"}


def test_an_unexpected_error_is_a_json_500_and_its_traceback_is_logged(exported, caplog):
    # before, Starlette answered a plain-text "Internal Server Error" where every other error
    # is JSON {"detail": ...}, and nothing of it was logged but by the ASGI server
    predictor, items = exported
    broken = Predictor(predictor.model, _Broken(None, None, target_kind="single_label", n_out=3),
                       predictor.manifest, predictor.device)
    client = TestClient(create_app(broken), raise_server_exceptions=False)
    with caplog.at_level("ERROR", logger="ember.serve"):
        response = client.post("/predict", json={"inputs": items[:2]})
    assert response.status_code == 500
    assert response.json() == {
        "detail": "internal error while predicting; the server log has the traceback"}
    assert "secret" not in response.text
    (record,) = [record for record in caplog.records if record.name == "ember.serve"]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "POST /predict" in record.getMessage()
    assert client.get("/health").json() == {"status": "ok"}  # the server keeps serving


def test_a_body_that_is_not_utf8_is_a_400_naming_the_byte(exported):
    # before, FastAPI answered 400 "There was an error parsing the body", with no reason
    predictor, items = exported
    client = TestClient(create_app(predictor))
    body = json.dumps({"inputs": items[:1]}).encode()
    bad = body[:-2] + b"\xff" + body[-2:]
    refused = client.post("/predict", content=bad)
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        f"the request body is not UTF-8 (byte {len(body) - 2} is b'\\xff'); send the JSON "
        f"encoded as UTF-8 (a text's characters as they are, or as \\u escapes)")
    expected = {"predictions": predictor.predict_batch(items[:1])}
    for good in (body, body.decode().encode("utf-16"), b"\xef\xbb\xbf" + body):
        answer = client.post("/predict", content=good)  # UTF-16 JSON is still read
        assert answer.status_code == 200 and answer.json() == expected, answer.text
    # streamed in chunks (no declared length), one character split between two of them
    noted = json.dumps({"inputs": items[:1], "note": "caf\u00e9"}, ensure_ascii=False).encode()
    cut = noted.index(b"\xc3") + 1
    answer = client.post("/predict", content=iter([noted[:cut], noted[cut:]]))
    assert answer.status_code == 200 and answer.json() == expected, answer.text
