"""ember serve with an image model: base64 JSON and multipart uploads give the predictor's
predictions; a corrupt image is a 422 that names it."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import ember
from ember.serve import create_app
from ember_vision import FASHION_MNIST_CLASSES, ImageData
from ember_vision.datasets import fashion_mnist


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_over_rest(tmp_path):
    ember.seed(0)
    (images, labels), _ = fashion_mnist(sample=True)
    data = ImageData.from_arrays(images[:300], labels[:300], classes=FASHION_MNIST_CLASSES,
                                 bs=32)
    learn = ember.learner(data, quiet=True, path=tmp_path)
    learn.fit_one_cycle(1)
    predictor = ember.load(learn.export("fashion"))
    client = TestClient(create_app(predictor))
    items = list(images[300:306])
    expected = predictor.predict_batch(items)
    encoded = [base64.b64encode(png(image)).decode() for image in items]
    response = client.post("/predict", json={"inputs": encoded})
    assert response.status_code == 200 and response.json()["predictions"] == expected
    files = [("files", (f"{i}.png", png(image), "image/png")) for i, image in enumerate(items)]
    assert client.post("/predict/files", files=files).json()["predictions"] == expected
    assert client.get("/metadata").json()["classes"] == FASHION_MNIST_CLASSES
    bad = client.post("/predict", json={"inputs": [base64.b64encode(b"not an image").decode()]})
    assert bad.status_code == 422 and bad.json()["detail"] == (
        "image inputs[0] cannot be read (corrupt, truncated or not an image); send it again as "
        "a PNG, JPEG or other image file, or leave it out")
    assert client.post("/predict", json={"inputs": ["%%%"]}).status_code == 422


@pytest.mark.parametrize(("item", "kind"), [(3, "a JSON number"), (None, "null"),
                                            (True, "a JSON boolean"),
                                            ({"image": "x"}, "a JSON object")])
def test_an_item_that_is_neither_base64_nor_pixels_is_named_in_json_words(tmp_path, item,
                                                                          kind):
    # before, "item 0 is a int; give an image path, a PIL image, a NumPy array (H, W[, C]) or
    # a tensor ([C,] H, W)": Python types a JSON client cannot send (and no path is read)
    _, _, client = _untrained_server(tmp_path)
    response = client.post("/predict", json={"inputs": [item]})
    assert response.status_code == 422 and response.json()["detail"] == (
        f"inputs[0] is {kind}, not an image: send the encoded file (PNG, JPEG…) as a base64 "
        f"string, or pixels as nested lists of numbers (height, width[, channels])")


def _untrained_server(folder):
    """The bundled Fashion-MNIST sample's images, an untrained exported model of them, and a
    test client of its server."""
    (images, labels), _ = fashion_mnist(sample=True)
    data = ImageData.from_arrays(images[:64], labels[:64], classes=FASHION_MNIST_CLASSES,
                                 bs=32)
    predictor = ember.load(ember.learner(data, quiet=True, path=folder).export("untrained"))
    return images, predictor, TestClient(create_app(predictor))


def test_images_as_nested_lists_as_the_metadata_describes(tmp_path):
    images, predictor, client = _untrained_server(tmp_path)
    schema = client.get("/metadata").json()["input_schema"]
    assert [form["type"] for form in schema["oneOf"]] == ["string", "array"]
    items = list(images[300:304])
    expected = predictor.predict_batch(items)
    response = client.post("/predict", json={"inputs": [image.tolist() for image in items]})
    assert response.status_code == 200 and response.json()["predictions"] == expected
    scaled = [(image / 255).tolist() for image in items[:1]]
    assert client.post("/predict", json={"inputs": scaled}).json()["predictions"] == expected[:1]
    ragged = client.post("/predict", json={"inputs": [[[1, 2], [3]]]})
    assert ragged.status_code == 422 and "inputs[0] is not an image" in ragged.json()["detail"]


def test_an_image_sent_as_a_browser_data_uri_is_read(tmp_path):
    images, predictor, client = _untrained_server(tmp_path)
    items = list(images[300:303])
    uris = [f"data:image/png;base64,{base64.b64encode(png(image)).decode()}" for image in items]
    response = client.post("/predict", json={"inputs": uris})  # FileReader.readAsDataURL
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == predictor.predict_batch(items)
    plain = client.post("/predict", json={"inputs": ["data:image/png,%89PNG"]})
    assert plain.status_code == 422 and "without ';base64'" in plain.json()["detail"]
    wrapped = base64.encodebytes(png(items[0])).decode()  # lines of 76, as `base64` writes
    assert "\n" in wrapped  # it was refused as "not valid base64 image data"
    response = client.post("/predict", json={"inputs": [wrapped]})
    assert response.status_code == 200 and response.json()["predictions"] == [
        predictor.predict(items[0])]


def test_uploaded_files_take_options_as_a_form_field(tmp_path):
    images, predictor, client = _untrained_server(tmp_path)
    items = list(images[300:302])
    files = [("files", (f"{i}.png", png(image), "image/png")) for i, image in enumerate(items)]
    response = client.post("/predict/files", files=files, data={"options": '{"probs": true}'})
    assert response.status_code == 200, response.text
    expected = predictor.predict_batch(items, probs=True)
    assert [p["value"] for p in response.json()["predictions"]] == [p.value for p in expected]
    assert [list(p["probabilities"]) for p in response.json()["predictions"]] == [
        FASHION_MNIST_CLASSES] * 2
    bad = client.post("/predict/files", files=files, data={"options": "probs"})
    assert bad.status_code == 422 and "must hold a JSON object" in bad.json()["detail"]


def test_a_bad_upload_among_several_is_named_by_its_file_name_and_position(tmp_path):
    # the 422 said "image item 1 (encoded image bytes) cannot be read": no file name
    images, predictor, client = _untrained_server(tmp_path)
    good = png(images[300])
    for content in (b"hello, not an image", good[: len(good) // 2], b""):
        files = [("files", ("shirt.png", good, "image/png")),
                 ("files", ("cat.png", content, "image/png")),
                 ("files", ("shoe.png", good, "image/png"))]
        response = client.post("/predict/files", files=files)
        assert response.status_code == 422
        assert response.json()["detail"] == (
            "image file 'cat.png' (files[1]) cannot be read (corrupt, truncated or not an "
            "image); send it again as a PNG, JPEG or other image file, or leave it out")
    rgb = np.stack([images[301]] * 3, axis=-1)  # a colour upload to a greyscale model
    files = [("files", ("a.png", good, "image/png")), ("files", ("b.png", png(rgb), "image/png"))]
    response = client.post("/predict/files", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == predictor.predict_batch([images[300], rgb])


def test_an_image_over_pils_pixel_limit_is_a_422_that_names_it(tmp_path, monkeypatch):
    # PIL's DecompressionBombError is no OSError: it went through as a 500 Internal Server
    # Error, uploaded or sent as base64
    images, _, client = _untrained_server(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL refuses over 200: 28x28 is
    files = [("files", ("ok.png", png(images[0][:10, :10]), "image/png")),
             ("files", ("huge.png", png(images[1]), "image/png"))]
    response = client.post("/predict/files", files=files)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "image file 'huge.png' (files[1]) is too large to decode safely")
    encoded = base64.b64encode(png(images[1])).decode()
    response = client.post("/predict", json={"inputs": [encoded]})
    assert response.status_code == 422 and "too large to decode safely" in response.text
