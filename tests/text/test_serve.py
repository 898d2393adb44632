"""ember serve with text models: a request's options reach generation and decoding (a language
model's n_words and temperature, a seq2seq model's max_len and attention); probs is refused
with the reason, and /metadata lists the options each model takes. A costly option is capped
(a seq2seq model's beam and max_len, a language model's n_words): a value over its limit is a
422 naming it, the operator can move a limit, and /metadata lists the limits."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

import ember
from ember.serve import create_app
from ember_text.data import LanguageModelData
from ember_text.seq2seq import Seq2SeqData, load_sample
from ember_text.ulmfit import language_model


def test_a_language_models_options_reach_generation(tmp_path) -> None:
    ember.seed(0)
    data = LanguageModelData.from_texts(["one two three four five six"] * 40, bs=4, bptt=8,
                                        min_freq=1)
    learn = ember.learner(data, model=language_model(data, emb_size=8, hidden_size=16,
                                                     n_layers=1), quiet=True)
    predictor = ember.load(learn.export(tmp_path / "lm.ember"))
    client = TestClient(create_app(predictor))
    options = {"n_words": 3, "temperature": 0, "seed": 1}  # JSON's 0 for a float option
    response = client.post("/predict", json={"inputs": ["one two"], "options": options})
    assert response.status_code == 200, response.text
    expected = predictor.predict_batch(["one two"], n_words=3, temperature=0.0, seed=1)
    assert response.json()["predictions"] == expected
    assert expected != predictor.predict_batch(["one two"], n_words=5, temperature=0.0)
    assert client.get("/metadata").json()["options"] == {
        "n_words": 20, "temperature": 1.0, "top_k": None, "seed": None, "no_unk": True}
    refused = client.post("/predict", json={"inputs": ["one"], "options": {"probs": True}})
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith(
        "option 'probs' is not available: a language model predicts text")
    bad = client.post("/predict", json={"inputs": ["one"], "options": {"n_words": "many"}})
    assert bad.status_code == 422 and bad.json()["detail"].startswith(
        "option 'n_words' cannot be 'many'")


def test_a_seq2seq_models_options_reach_decoding(tmp_path) -> None:
    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:60], bs=16)
    predictor = ember.load(ember.learner(data, quiet=True).export(tmp_path / "numbers.ember"))
    client = TestClient(create_app(predictor))
    options = {"beam": 2, "max_len": 2}
    response = client.post("/predict", json={"inputs": ["deux", "trois"], "options": options})
    assert response.status_code == 200, response.text
    expected = predictor.predict_batch(["deux", "trois"], beam=2, max_len=2)
    assert response.json()["predictions"] == expected and all(len(t) <= 2 for t in expected)
    attention = client.post("/predict", json={"inputs": ["deux"],
                                              "options": {"max_len": 2, "with_attention": True}})
    assert attention.status_code == 200, attention.text
    (translation,) = attention.json()["predictions"]
    reference = predictor.predict("deux", max_len=2, with_attention=True)
    assert translation["text"] == reference.text and translation["tokens"] == reference.tokens
    assert np.allclose(translation["attention"], reference.attention)
    zero = client.post("/predict", json={"inputs": ["deux"], "options": {"beam": 0}})
    assert zero.status_code == 422
    assert zero.json()["detail"].endswith(
        "beam (hypotheses kept; 1 decodes greedily) must be a whole number of at least 1, got 0")
    unknown = client.post("/predict", json={"inputs": ["deux"], "options": {"n_words": 3}})
    assert unknown.status_code == 422 and unknown.json()["detail"] == (
        "unknown option 'n_words': this seq2seq model takes beam, max_len, length_penalty, "
        "with_attention")


@pytest.fixture(scope="module")
def language_model_export(tmp_path_factory):
    ember.seed(0)
    data = LanguageModelData.from_texts(["one two three four five six"] * 40, bs=4, bptt=8,
                                        min_freq=1)
    learn = ember.learner(data, model=language_model(data, emb_size=8, hidden_size=16,
                                                     n_layers=1), quiet=True)
    return ember.load(learn.export(tmp_path_factory.mktemp("lm") / "lm.ember"))


@pytest.fixture(scope="module")
def seq2seq_export(tmp_path_factory):
    ember.seed(0)
    data = Seq2SeqData.from_pairs(load_sample("fr_numbers")[:60], bs=16)
    folder = tmp_path_factory.mktemp("seq2seq")
    return ember.load(ember.learner(data, quiet=True).export(folder / "numbers.ember"))


def post(client: TestClient, inputs: list[str], **options: object):
    return client.post("/predict", json={"inputs": inputs, "options": options})


def test_a_seq2seq_models_beam_and_max_len_are_capped(seq2seq_export) -> None:
    predictor = seq2seq_export
    max_len = 4 * predictor.data.default_max_len()
    client = TestClient(create_app(predictor))
    assert client.get("/metadata").json()["option_limits"] == {"beam": 16, "max_len": max_len}
    at_limit = post(client, ["deux"], max_len=max_len)
    assert at_limit.status_code == 200, at_limit.text
    assert at_limit.json()["predictions"] == predictor.predict_batch(["deux"], max_len=max_len)
    assert post(client, ["deux"], beam=16, max_len=2).status_code == 200
    over = post(client, ["deux"], max_len=100_000_000)
    assert over.status_code == 422
    assert over.json()["detail"].startswith(
        f"option 'max_len' is 100000000, over this server's limit of {max_len}")
    wide = post(client, ["deux"], beam=17, max_len=2)
    assert wide.status_code == 422
    assert wide.json()["detail"].startswith("option 'beam' is 17, over this server's limit of 16")
    # a direct call is the user's own: no limit
    assert len(predictor.predict_batch(["deux"], max_len=max_len + 1)) == 1


def test_the_operator_moves_a_limit_and_metadata_shows_it(seq2seq_export) -> None:
    predictor = seq2seq_export
    lowered = TestClient(create_app(predictor, option_limits={"beam": 2}))
    assert post(lowered, ["deux"], beam=2, max_len=2).status_code == 200
    refused = post(lowered, ["deux"], beam=3, max_len=2)
    assert refused.status_code == 422 and "limit of 2" in refused.json()["detail"]
    limits = lowered.get("/metadata").json()["option_limits"]
    assert limits == {"beam": 2, "max_len": 4 * predictor.data.default_max_len()}
    raised = TestClient(create_app(predictor, option_limits={"beam": 32, "max_len": None}))
    assert post(raised, ["deux"], beam=17, max_len=2).status_code == 200
    assert raised.get("/metadata").json()["option_limits"] == {"beam": 32}  # max_len: none
    with pytest.raises(ember.DataError, match=r"no option 'n_words'.*beam, max_len"):
        create_app(predictor, option_limits={"n_words": 10})


def test_a_language_models_n_words_is_capped(language_model_export) -> None:
    client = TestClient(create_app(language_model_export))
    assert client.get("/metadata").json()["option_limits"] == {"n_words": 1000}
    at_limit = post(client, ["one two"], n_words=1000, temperature=0)
    assert at_limit.status_code == 200, at_limit.text
    over = post(client, ["one two"], n_words=10_000_000)
    assert over.status_code == 422
    assert over.json()["detail"].startswith(
        "option 'n_words' is 10000000, over this server's limit of 1000")
    lowered = TestClient(create_app(language_model_export, option_limits={"n_words": 5}))
    assert post(lowered, ["one two"], n_words=5).status_code == 200
    assert post(lowered, ["one two"], n_words=6).status_code == 422


INTEGER = "a JSON integer (a whole number)"


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("n_words", 5.5, INTEGER),
    ("n_words", True, INTEGER),
    ("top_k", True, f"{INTEGER} or null"),
    ("temperature", "hot", "a finite JSON number"),
    ("no_unk", "false", "a JSON boolean (true or false)"),
])
def test_option_values_must_have_the_json_type_of_the_option(language_model_export, name,
                                                             value, expected) -> None:
    # True was taken as 1 word, and a boolean as an int is a mistake, not a number
    response = post(TestClient(create_app(language_model_export)), ["one two"],
                    **{name: value})
    assert response.status_code == 422
    assert response.json()["detail"] == f"option {name!r} cannot be {value!r}: it takes {expected}"


def test_a_float_option_refuses_nan_and_infinity(language_model_export) -> None:
    # Python's json module reads NaN and Infinity, and a NaN temperature reached sampling
    client = TestClient(create_app(language_model_export))
    for token in ("NaN", "Infinity", "-Infinity"):
        body = '{"inputs": ["one two"], "options": {"temperature": ' + token + "}}"
        response = client.post("/predict", content=body,
                               headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["detail"].endswith("it takes a finite JSON number"), token
    assert post(client, ["one two"], temperature=0, n_words=2).status_code == 200


def test_a_seq2seq_beam_must_be_a_json_integer(seq2seq_export) -> None:
    client = TestClient(create_app(seq2seq_export))
    for beam in (5.5, True, "5"):
        response = post(client, ["deux"], beam=beam, max_len=2)
        assert response.status_code == 422
        assert response.json()["detail"] == (
            f"option 'beam' cannot be {beam!r}: it takes a JSON integer (a whole number)")
    assert post(client, ["deux"], beam=2, max_len=2).status_code == 200


@pytest.fixture(scope="module")
def classifier_export(tmp_path_factory):
    from ember_text import TextData

    ember.seed(0)
    data = TextData.from_texts(["a good film", "a bad film"] * 10, ["fresh", "rotten"] * 10,
                               min_freq=1)
    folder = tmp_path_factory.mktemp("classifier")
    return ember.load(ember.learner(data, quiet=True).export(folder / "reviews.ember"))


@pytest.mark.parametrize(("content", "reason"), [
    ("café".encode("latin-1"), "is not valid UTF-8 text"),
    (b"", "is empty"),
    (b"  \n", "is empty"),
])
def test_a_bad_text_upload_is_named_by_its_file_name_and_position(classifier_export, content,
                                                                   reason) -> None:
    # the 422 said "item #1 is not valid UTF-8 text": no file name
    client = TestClient(create_app(classifier_export))
    files = [("files", ("good.txt", b"a good film", "text/plain")),
             ("files", ("review.txt", content, "text/plain"))]
    response = client.post("/predict/files", files=files)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"file 'review.txt' (files[1]) {reason}")
    good = client.post("/predict/files", files=[files[0], files[0]])
    assert good.status_code == 200, good.text
    assert good.json()["predictions"] == classifier_export.predict_batch(["a good film"] * 2)


def test_a_whole_number_float_is_taken_for_an_integer_option(seq2seq_export,
                                                             language_model_export) -> None:
    # Python's json.dumps writes the float 5.0 as 5.0, and many clients send it: it was a 422
    client = TestClient(create_app(seq2seq_export))
    response = post(client, ["deux", "trois"], beam=2.0, max_len=2.0)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == seq2seq_export.predict_batch(
        ["deux", "trois"], beam=2, max_len=2)
    over = post(client, ["deux"], beam=17.0, max_len=2)  # converted first, then limited
    assert over.status_code == 422
    assert over.json()["detail"].startswith("option 'beam' is 17, over this server's limit of 16")
    language_model = TestClient(create_app(language_model_export))
    taken = post(language_model, ["one two"], n_words=3.0, top_k=2.0, temperature=0, seed=1.0)
    assert taken.status_code == 200, taken.text
    assert taken.json()["predictions"] == language_model_export.predict_batch(
        ["one two"], n_words=3, top_k=2, temperature=0.0, seed=1)


@pytest.mark.parametrize("beam", [5.5, -0.5, True, False, "5", "5.0"])
def test_an_integer_option_still_refuses_what_is_no_whole_number(seq2seq_export, beam) -> None:
    response = post(TestClient(create_app(seq2seq_export)), ["deux"], beam=beam, max_len=2)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"option 'beam' cannot be {beam!r}: it takes a JSON integer (a whole number)")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_an_integer_option_refuses_nan_and_infinity(seq2seq_export, token) -> None:
    body = '{"inputs": ["deux"], "options": {"beam": ' + token + "}}"
    response = TestClient(create_app(seq2seq_export)).post(
        "/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].endswith("it takes a JSON integer (a whole number)")


def test_a_seed_out_of_range_is_a_422_naming_the_option(language_model_export) -> None:
    # before, seed 2**70 was a 422 saying only "Overflow when unpacking long long"
    client = TestClient(create_app(language_model_export))
    for seed in (2**70, -(2**63) - 1):
        response = post(client, ["one"], seed=seed, n_words=2)
        assert response.status_code == 422
        assert response.json()["detail"].startswith("seed must be a whole number from"), \
            response.json()
    for seed in (2**64 - 1, -(2**63)):  # the ends of the range are taken
        assert post(client, ["one"], seed=seed, n_words=2).status_code == 200
    with pytest.raises(ember.DataError, match="seed must be a whole number"):
        language_model_export.predict("one", seed=2**64)
