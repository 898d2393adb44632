"""``ember serve``: a REST endpoint for an exported model, on a standard ASGI stack.

FastAPI + uvicorn (``pip install ember[serve]``). Endpoints:

- ``POST /predict`` — JSON ``{"inputs": [item, ...]}`` → ``{"predictions": [...]}``; an item is
  what the model's data kind accepts in JSON (a string for text, an object of column → value
  for a tabular row, a base64 string for an image, a list of numbers for a signal). An optional
  ``"options"`` object holds keyword options for ``predict_batch``: ``{"probs": true}`` makes
  each prediction of a classifier ``{"value": ..., "probabilities": {class: p, ...}}``,
  ``{"threshold": 0.3}`` makes a multi-label classifier predict each class whose probability
  passes 0.3 (instead of 0.5), ``{"beam": 5}`` decodes a seq2seq model by beam search. Images
  and texts may also be sent as multipart files to ``POST /predict/files`` (options as a form
  field holding a JSON object; each file is read by :meth:`ember.Data.from_upload`, and a bad
  one is refused by its name).
- ``GET /health``, ``GET /metadata`` (classes, target kind, input schema, the options the model
  takes with their defaults and the limits on costly ones), OpenAPI at ``/docs``.

Requests are validated (4xx with a reason: malformed JSON, a body not UTF-8, too many items,
a bad item, an unknown option, an option's value of the wrong JSON type (checked strictly:
``"yes"`` is no boolean, ``true`` no integer) or over its limit), costly options are
capped (:meth:`ember.Data.option_limits`: a seq2seq model's ``beam`` and ``max_len``, a
language model's ``n_words``; the operator moves a limit with ``--option-limit NAME=VALUE``),
bodies are capped (413, by
:class:`BodyCap`: the declared length, or counted as a chunked body streams in), an error the
server does not anticipate (a bug in a plugin's ``predict_batch``) is a JSON 500 that tells the
client nothing of it while its traceback goes to the ``ember.serve`` logger
(:class:`InternalErrors`), and concurrent
requests are micro-batched: requests arriving within ``max_wait_ms`` of each other, with the same
options, are predicted together, up to ``max_batch`` items (``/metadata`` counts the batches
run).
Access-log lines are off unless asked for (``--access-log``): they cost time per request.

Example:
    >>> # $ ember serve model.ember --host 127.0.0.1 --port 8000
    >>> # $ curl -X POST localhost:8000/predict -d '{"inputs": ["A delight."]}'
    >>> #   (the body of /predict is read as JSON whatever its declared content type)
    >>> # $ curl -X POST localhost:8000/predict \\
    >>> #     -d '{"inputs": ["A delight."], "options": {"probs": true}}'
"""


# no `from __future__ import annotations`: FastAPI reads the endpoint annotations at runtime
import asyncio
import codecs
import dataclasses
import functools
import json
import logging
import math
import numbers
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ember.data import Data
from ember.errors import DataError
from ember.export import Predictor
from ember.utils import is_whole

__all__ = ["BodyCap", "InternalErrors", "JSONBody", "MicroBatcher", "create_app", "serve"]

#: where the server logs what it cannot answer with a reason (the traceback of an internal error)
_log = logging.getLogger("ember.serve")


@dataclass
class _Pending:
    items: list[Any]
    future: asyncio.Future[list[Any]] = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The options in canonical form: only requests with equal keys share a batch."""
        return json.dumps(self.options, sort_keys=True, default=repr)


class MicroBatcher:
    """Collects concurrent requests for up to ``max_wait_ms`` (or ``max_batch`` items) and
    predicts them in one batch on a worker thread, one batch per set of options (requests with
    different options never share one). A bad item fails only its own request.

    Example:
        >>> # batcher = MicroBatcher(predictor); await batcher.predict(["text"])
        >>> # await batcher.predict(["text"], {"probs": True})  # batched apart from the first
    """

    def __init__(self, predictor: Predictor, max_batch: int = 64, max_wait_ms: float = 5.0
                 ) -> None:
        self.predictor, self.max_batch, self.max_wait = predictor, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue[_Pending] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.batches_run = self.items_run = 0

    async def predict(self, items: list[Any], options: dict[str, Any] | None = None
                      ) -> list[Any]:
        """Predictions for one request's items, with keyword ``options`` for the predictor's
        ``predict_batch``.

        Example:
            >>> # await batcher.predict(["quarante-deux"], {"beam": 5}) -> ['42']
        """
        loop = asyncio.get_running_loop()
        if self.queue is None or self.loop is not loop:  # one worker per event loop
            self.queue, self.loop = asyncio.Queue(), loop
            self._task = loop.create_task(self._worker(self.queue))
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(items, future, dict(options or {})))
        return await future

    async def _worker(self, queue: asyncio.Queue[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await queue.get()]
            size = len(pending[0].items)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    request = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
                pending.append(request)
                size += len(request.items)
            groups: dict[str, list[_Pending]] = {}
            for request in pending:  # one batch per set of options
                groups.setdefault(request.key, []).append(request)
            for group in groups.values():
                try:
                    await self._run(group)
                except Exception as error:  # never let the worker die with requests waiting
                    for request in group:
                        if not request.future.done():
                            request.future.set_exception(error)

    async def _run(self, pending: list[_Pending]) -> None:
        """Predict the items of requests that share their options in one batch."""
        loop = asyncio.get_running_loop()
        items = [item for request in pending for item in request.items]
        self.batches_run += 1
        self.items_run += len(items)
        predict = functools.partial(self.predictor.predict_batch, items, **pending[0].options)
        try:
            results = await loop.run_in_executor(None, predict)
        except Exception:
            if len(pending) == 1:
                await self._run_alone(pending[0])
                return
            for request in pending:  # isolate the request with the bad item
                await self._run_alone(request)
            return
        start = 0
        for request in pending:
            _settle(request.future, result=results[start:start + len(request.items)])
            start += len(request.items)

    async def _run_alone(self, request: _Pending) -> None:
        loop = asyncio.get_running_loop()
        predict = functools.partial(self.predictor.predict_batch, request.items,
                                    **request.options)
        try:
            result = await loop.run_in_executor(None, predict)
        except Exception as error:
            _settle(request.future, error=error)
        else:
            _settle(request.future, result=result)


def _settle(future: asyncio.Future[list[Any]], result: Any = None,
            error: BaseException | None = None) -> None:
    """Give a request its result or error, unless it is already settled: a client that hung
    up mid-batch leaves a cancelled future, and setting it would raise in the worker and fail
    the other requests of its batch."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class BodyCap:
    """ASGI middleware that refuses request bodies over ``max_bytes`` with a 413: at once when
    the declared ``content-length`` is over, else while the body streams in (chunked uploads).
    A plain ASGI class, so it costs next to nothing per request.

    Example:
        >>> # app.add_middleware(BodyCap, max_bytes=16 * 1024 * 1024)
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _refusal(self, size: str) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse(status_code=413, content={
            "detail": f"request body of {size} bytes is over the limit of {self.max_bytes}; "
                      f"send fewer or smaller items"})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refusal(value.decode())(scope, receive, send)
                return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                from starlette.exceptions import HTTPException

                raise HTTPException(status_code=413, detail=(
                    f"request body of over {self.max_bytes} bytes is over the limit; send "
                    f"fewer or smaller items"))
            return message

        await self.app(scope, counted, send)


class JSONBody:
    """ASGI middleware that reads the body of ``POST /predict`` as JSON whatever content type
    the client declares: ``curl -d '{"inputs": [...]}'`` sends
    ``application/x-www-form-urlencoded`` and many clients send ``text/plain`` or none, and
    FastAPI reads a body of those types as a string (a 422 "Input should be a valid
    dictionary" for a body that is fine). The endpoint takes nothing but JSON, so the type
    is set to ``application/json``; a body that is not JSON is then a 422 that says so.

    A body that is not UTF-8 (JSON's encoding between systems, RFC 8259) is a 400 naming the
    first bad byte, checked as the body streams in: FastAPI answered it with a 400 "There
    was an error parsing the body" and no reason. A body that starts as UTF-16 or UTF-32 JSON
    does (a byte-order mark, or a zero byte among the first four) is left to the JSON reader,
    which reads those too.

    Example:
        >>> # app.add_middleware(JSONBody, paths={"/predict"})
    """

    def __init__(self, app: Any, paths: set[str]) -> None:
        self.app, self.paths = app, paths

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            kept = [(name, value) for name, value in scope["headers"]
                    if name != b"content-type"]
            scope = dict(scope, headers=[*kept, (b"content-type", b"application/json")])
            receive = _utf8_checked(receive)
        await self.app(scope, receive, send)


def _utf8_checked(receive: Any) -> Any:
    """``receive`` that raises a 400 naming the first byte of the request body that is not
    UTF-8 (see :class:`JSONBody`), decoding each chunk as it arrives (a character split
    between chunks is whole once the next one comes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    read, checking = 0, True

    async def checked() -> Any:
        nonlocal read, checking
        message = await receive()
        body = message.get("body", b"")
        if checking and message["type"] == "http.request":
            if read == 0 and (body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body[:4]):
                checking = False  # UTF-16 or UTF-32 JSON: the JSON reader takes it
            else:
                try:
                    decoder.decode(body, final=not message.get("more_body", False))
                except UnicodeDecodeError as error:
                    from starlette.exceptions import HTTPException

                    at = max(read + error.start, 0)
                    raise HTTPException(status_code=400, detail=(
                        f"the request body is not UTF-8 (byte {at} is "
                        f"{error.object[error.start:error.start + 1]!r}); send the JSON "
                        f"encoded as UTF-8 (a text's characters as they are, or as \\u "
                        f"escapes)")) from None
        read += len(body)
        return message

    return checked


class InternalErrors:
    """ASGI middleware that answers an error the app does not anticipate (a bug in a plugin's
    ``predict_batch``, say) with a JSON 500 ``{"detail": ...}`` like every other error, in
    place of Starlette's plain-text "Internal Server Error". The client learns nothing of the
    error (its text may hold paths or data); its traceback goes to the ``ember.serve``
    logger, with the request's method and path. Errors the app answers itself (a 4xx with a
    reason) never reach it. An error after the response has begun cannot be answered: it is
    raised on to the ASGI server, which logs it and closes the connection.

    Example:
        >>> # app.add_middleware(InternalErrors)
    """

    detail = "internal error while predicting; the server log has the traceback"

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if started:
                raise
            _log.exception("internal error while answering %s %s", scope["method"],
                           scope["path"])
            from starlette.responses import JSONResponse

            await JSONResponse(status_code=500, content={"detail": self.detail})(
                scope, receive, send)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "_asdict"):  # a named tuple (ember.Prediction): an object
        return _jsonable(value._asdict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # seq2seq Translation
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist"):  # NumPy and torch values; only floats can be NaN
        dtype = getattr(value, "dtype", None)
        floating = getattr(dtype, "kind", "") in ("f", "c") or getattr(
            dtype, "is_floating_point", False)
        return _jsonable(value.tolist()) if floating else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity: a model output that is not finite is null
    return value


#: what a client must send for each JSON type of an option's schema
_JSON_TYPES = {"boolean": "a JSON boolean (true or false)",
               "integer": "a JSON integer (a whole number)", "number": "a finite JSON number",
               "string": "a JSON string", "array": "a JSON array", "object": "a JSON object",
               "null": "null"}


@dataclass(frozen=True)
class _OptionType:
    """How a request's value of one option is checked: a strict pydantic ``TypeAdapter`` of
    its annotation, and what to send, in JSON words, for the error (``None`` when the schema
    is not a plain JSON type; pydantic's own message is given then)."""

    adapter: Any
    expected: str | None


def _expected(adapter: Any) -> str | None:
    """The JSON type(s) ``adapter`` takes, in words: ``'a JSON integer (a whole number) or
    null'`` for ``int | None``; ``None`` for a schema other than plain types (a ``Literal``,
    an array with a shape of items: pydantic's message says what is wrong with one)."""
    try:
        schema = adapter.json_schema()
    except Exception:  # a type pydantic checks but cannot describe
        return None
    words = []
    for form in schema.get("anyOf", [schema]):
        word = _JSON_TYPES.get(form.get("type"))
        if word is None or set(form) - {"type", "title", "description"}:
            return None
        words.append(word)
    return " or ".join(words) or None


def _option_types(data: Data) -> dict[str, _OptionType | None]:
    """Each prediction option of ``data`` (:meth:`Data.prediction_options`) with the check of
    its annotation in ``predict_batch``: strict, since JSON has real types (``"yes"``, ``1``
    and ``"true"`` are no boolean, ``true``, ``"5"`` and ``5.5`` no integer), with two
    leniencies for whole numbers, which JSON writes either way: a whole number for a float
    option (``1`` becomes ``1.0``: JavaScript writes ``1.0`` as ``1``) and a finite whole
    float for an integer option (``5.0`` becomes ``5``: Python's ``json.dumps`` writes the
    float ``5.0`` so), and no NaN or infinity (Python's ``json`` reads them). Values are
    checked as the JSON they came in (:func:`_checked`), so an array is a tuple or a set and
    a string an enum member where the annotation asks for one. ``None`` where the annotation
    cannot be resolved, and ``predict_batch`` checks the value alone.

    The published schemas stay truthful: ``/openapi.json`` describes ``options`` as a JSON
    object of any values (each option's type is the model's, listed by ``/metadata``), and
    where a type is called ``"integer"`` (the words of a 422, a schema a client writes from
    them) JSON Schema's own meaning takes ``5.0``: since draft 6, and so in OpenAPI 3.1,
    which FastAPI writes, an integer is any number whose fractional part is zero."""
    from pydantic import ConfigDict, PydanticSchemaGenerationError, TypeAdapter

    try:
        hints = typing.get_type_hints(type(data).predict_batch)
    except (NameError, TypeError, AttributeError):  # an annotation that names nothing here
        hints = {}
    config = ConfigDict(strict=True, allow_inf_nan=False)
    types: dict[str, _OptionType | None] = {}
    for name in data.prediction_options():
        try:
            adapter = TypeAdapter(hints[name], config=config)
        except (KeyError, PydanticSchemaGenerationError):
            types[name] = None
        else:
            types[name] = _OptionType(adapter, _expected(adapter))
    return types


def _checked(option_type: _OptionType, value: Any) -> Any:
    """``value``, decoded from a request's JSON, checked and converted by ``option_type`` in
    pydantic's strict JSON mode: in its Python mode a list is no tuple and a string no enum
    member, so every value of such an option would be refused. A value refused as it is is
    checked again with its finite whole floats as integers (``5.0`` → ``5``, also inside
    arrays and objects), so an integer option takes ``5.0`` while a float option keeps its
    ``5.0`` (taken the first time); if that is refused too, the first refusal is raised."""
    from pydantic import ValidationError

    adapter, text = option_type.adapter, json.dumps(value)
    try:
        return adapter.validate_json(text)
    except ValidationError as refusal:
        as_integers = json.dumps(_whole_floats_as_integers(value))
        if as_integers == text:
            raise
        try:
            return adapter.validate_json(as_integers)
        except ValidationError:
            raise refusal from None


def _whole_floats_as_integers(value: Any) -> Any:
    """``value`` with each finite float that is a whole number made an ``int`` (``5.0`` →
    ``5``), in lists and dict values too; ``5.5``, NaN, infinity and booleans stay as they
    are."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole_floats_as_integers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_floats_as_integers(item) for key, item in value.items()}
    return value


def _upload_name(filename: str | None, position: int) -> str:
    """How errors name the upload at ``position`` of ``/predict/files``: by the form's file
    name and its place, ``"file 'cat.png' (files[1])"``, or by its place alone."""
    if not filename:
        return f"files[{position}]"
    return f"file {repr(filename)[:100]} (files[{position}])"


def _limits(data: Data, overrides: Mapping[str, int | None] | None) -> dict[str, int]:
    """The limits a server applies: the data's :meth:`~ember.Data.option_limits` with the
    operator's ``overrides`` over them (``None`` lifts a limit). An override naming an option
    the model does not take is a :class:`DataError` (a typo must not leave a limit unset)."""
    limits: dict[str, int | None] = dict(data.option_limits())
    options = data.prediction_options()
    for name, limit in (overrides or {}).items():
        if name not in options:
            takes = ", ".join(options) or "no options"
            raise DataError(f"option limit for {name!r}, but this {data.kind} model has no option "
                            f"{name!r}; it takes {takes}")
        if limit is not None and not is_whole(limit):
            raise DataError(f"the limit for option {name!r} must be a whole number, 0 or more, "
                            f"or None for no limit; got {limit!r}")
        limits[name] = limit
    return {name: limit for name, limit in limits.items() if limit is not None}


def _require_serving() -> None:
    """Refuse, with an ``ImportError`` that says what to install, a server whose stack is
    missing: FastAPI, uvicorn and python-multipart come with ``pip install 'ember[serve]'``
    (it was ``No module named 'fastapi'`` from inside :func:`create_app`, or, without
    python-multipart, FastAPI's error about form data)."""
    import importlib.util

    wanted = (("fastapi", ("fastapi",)), ("uvicorn", ("uvicorn",)),
              ("python-multipart", ("python_multipart", "multipart")))
    missing = [package for package, modules in wanted
               if not any(importlib.util.find_spec(module) for module in modules)]
    if missing:
        raise ImportError(f"serving a model needs {', '.join(missing)}: pip install "
                          f"'ember[serve]' (or pip install {' '.join(missing)})")


def _check_serving_limits(max_batch: Any, max_wait_ms: Any, max_items: Any,
                          max_body_bytes: Any) -> None:
    """Refuse, with a :class:`DataError` naming the setting, a serving limit out of range:
    ``max_items=0`` built an app that refused every request with a 422 ("List should have at
    most 0 items"), ``max_body_bytes=0`` one that refused every body with a 413, and a NaN
    ``max_wait_ms`` one whose batches never waited. ``ember serve`` checks its options the
    same way before this runs."""
    for name, value, what in (("max_batch", max_batch, "items one micro-batch holds"),
                              ("max_items", max_items, "items one request may hold"),
                              ("max_body_bytes", max_body_bytes, "bytes a request body holds")):
        if not is_whole(value, least=1):
            raise DataError(f"{name}={value!r}: {name} must be a whole number of at least 1 "
                            f"(the most {what})")
    if isinstance(max_wait_ms, bool) or not (
            isinstance(max_wait_ms, numbers.Real) and math.isfinite(max_wait_ms)
            and max_wait_ms >= 0):
        raise DataError(f"max_wait_ms={max_wait_ms!r}: max_wait_ms must be a number of "
                        f"milliseconds, 0 or more (0: no waiting for more requests)")


def create_app(predictor: Predictor | str | os.PathLike[str], max_batch: int = 64,
               max_wait_ms: float = 5.0,
               max_items: int = 1024, max_body_bytes: int = 16 * 1024 * 1024,
               option_limits: Mapping[str, int | None] | None = None) -> Any:
    """The FastAPI application serving ``predictor``: what :func:`ember.load` returns, or the
    path of an exported file, which is loaded on the CPU.

    A request holds at most ``max_items`` items (more is a 422) and a body of at most
    ``max_body_bytes`` bytes (more is a 413); ``max_batch`` and ``max_wait_ms`` set the
    micro-batching (:class:`MicroBatcher`). A value out of range is a :class:`DataError`
    naming the setting. A request's costly options are capped by the data's
    :meth:`~ember.Data.option_limits` (a value over its limit is a 422 naming the option, the
    value and the limit); ``option_limits`` moves them, option name → the largest value
    allowed, or ``None`` for no limit. ``/metadata`` lists the limits in force.

    Example:
        >>> # app = create_app(ember.load("model.ember")); uvicorn.run(app)
        >>> # create_app(ember.load("numbers.ember"), option_limits={"beam": 4})
        >>> # create_app("model.ember", max_items=64, max_body_bytes=1024 * 1024)
    """
    _require_serving()
    from fastapi import FastAPI, File, Form, HTTPException, UploadFile
    from pydantic import BaseModel, Field, ValidationError

    _check_serving_limits(max_batch, max_wait_ms, max_items, max_body_bytes)

    if isinstance(predictor, (str, os.PathLike)):
        from ember.export import load

        predictor = load(predictor, device="cpu")
    if not isinstance(predictor, Predictor):
        raise TypeError(f"create_app serves an exported model: give it ember.load(path) or the "
                        f"path itself, not a {type(predictor).__name__} (a Learner exports "
                        f"first: learn.export(path))")
    manifest = predictor.manifest
    kind = manifest["data"]["kind"]
    batcher = MicroBatcher(predictor, max_batch, max_wait_ms)
    app = FastAPI(title=f"Ember model: {manifest['model']['name']} ({kind})",
                  version=str(manifest.get("plugin_version") or manifest["ember_version"]),
                  description="Predictions from a model exported with ember.")
    app.state.batcher = batcher

    option_types = _option_types(predictor.data)
    limits = _limits(predictor.data, option_limits)

    item_schema = predictor.data.input_schema()

    class PredictRequest(BaseModel):
        # the data's schema of one item documents the endpoint (OpenAPI, /docs); the items
        # are checked by the data itself (from_json, encode), which names a bad one
        inputs: list[Any] = Field(..., min_length=1, max_length=max_items,
                                  description="raw items: text, row objects, base64 images…",
                                  json_schema_extra={"items": item_schema})
        options: dict[str, Any] = Field(
            default_factory=dict, description='keyword options for predict_batch, e.g. '
            '{"probs": true} for class probabilities; GET /metadata lists them')

    class PredictResponse(BaseModel):
        predictions: list[Any]

    app.add_middleware(InternalErrors)  # innermost: the answered errors never reach it
    app.add_middleware(JSONBody, paths={"/predict"})
    app.add_middleware(BodyCap, max_bytes=max_body_bytes)

    def checked_options(options: dict[str, Any]) -> dict[str, Any]:
        """The request's options, each known to the model and of its type (else a 422)."""
        checked = {}
        for name, value in options.items():
            if name not in option_types:
                reason = (predictor.data.why_no_probabilities() if name == "probs" else
                          predictor.data.why_no_threshold() if name == "threshold" else None)
                takes = ", ".join(option_types) or "no options"
                raise HTTPException(status_code=422, detail=(
                    f"option {name!r} is not available: {reason}" if reason else
                    f"unknown option {name!r}: this {kind} model takes {takes}"))
            option_type = option_types[name]
            if option_type is not None:
                try:
                    value = _checked(option_type, value)
                except ValidationError as error:
                    reason = (f"it takes {option_type.expected}" if option_type.expected
                              else error.errors()[0]["msg"])
                    raise HTTPException(status_code=422, detail=(
                        f"option {name!r} cannot be {repr(value)[:100]}: {reason}")) from None
            limit = limits.get(name)
            if (limit is not None and isinstance(value, (int, float))
                    and not isinstance(value, bool) and value > limit):
                raise HTTPException(status_code=422, detail=(
                    f"option {name!r} is {value}, over this server's limit of {limit}; ask for "
                    f"at most {limit} (the operator sets it with --option-limit "
                    f"{name}=VALUE)"))
            checked[name] = value
        return checked

    async def predict_items(items: list[Any], options: dict[str, Any]) -> list[Any]:
        """Predictions of raw items (decoded from JSON or read from uploads) with checked
        options; an item the data refuses (a :class:`DataError`) is a 422 with the data's
        reason. The options were checked (:func:`checked_options`), so any other error
        (a ``KeyError``, a ``TypeError``) is a bug of the data's ``predict_batch``: a 500
        that tells the client nothing of it (:class:`InternalErrors`)."""
        try:
            return _jsonable(await batcher.predict(items, options))
        except DataError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None

    @app.post("/predict", response_model=PredictResponse)
    async def predict(body: PredictRequest) -> dict[str, Any]:
        options = checked_options(body.options)
        try:
            items = [predictor.data.from_json(item, i) for i, item in enumerate(body.inputs)]
        except DataError as error:  # anything else is a bug of the data's from_json: a 500
            raise HTTPException(status_code=422, detail=str(error)) from None
        return {"predictions": await predict_items(items, options)}

    @app.post("/predict/files", response_model=PredictResponse)
    async def predict_files(files: list[UploadFile] = File(...),  # noqa: B008
                            options: str = Form("{}", description=(
                                'the options of /predict as a JSON object, e.g. '
                                '{"probs": true}'))) -> dict[str, Any]:
        if len(files) > max_items:
            raise HTTPException(status_code=422, detail=f"at most {max_items} files a request")
        try:
            parsed = json.loads(options)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise HTTPException(status_code=422, detail=(
                f"the options field must hold a JSON object, e.g. {{\"probs\": true}}; got "
                f"{options[:100]!r}"))
        checked = checked_options(parsed)  # the checks of /predict, before any file is read
        items = []
        for position, upload in enumerate(files):  # each file checked by its name
            name = _upload_name(upload.filename, position)
            try:
                items.append(predictor.data.from_upload(await upload.read(), name))
            except DataError as error:  # anything else is a bug of the data's from_upload
                raise HTTPException(status_code=422, detail=str(error)) from None
        return {"predictions": await predict_items(items, checked)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> dict[str, Any]:
        return {
            "model": manifest["model"]["name"],
            "data_kind": kind,
            "plugin": manifest.get("plugin"),
            "plugin_version": manifest.get("plugin_version"),
            "ember_version": manifest.get("ember_version"),
            "target_kind": predictor.data.target_kind,
            "classes": predictor.classes,
            "input_schema": item_schema,
            "options": _jsonable(predictor.data.prediction_options()),
            "option_limits": limits,
            "max_items": max_items,
            "max_body_bytes": max_body_bytes,
            "batching": {"max_batch": batcher.max_batch, "max_wait_ms": batcher.max_wait * 1000,
                         "batches_run": batcher.batches_run, "items_run": batcher.items_run},
        }

    return app


def serve(path: str, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 64,
          max_wait_ms: float = 5.0, access_log: bool = False,
          option_limits: Mapping[str, int | None] | None = None, max_items: int = 1024,
          max_body_bytes: int = 16 * 1024 * 1024) -> None:
    """Load an exported model and serve it until interrupted (``ember serve``). Per-request
    access-log lines cost time on the hot path, so they are off unless ``access_log``.
    ``option_limits`` moves the limits on costly options, ``max_items`` and
    ``max_body_bytes`` cap each request (see :func:`create_app`).

    Example:
        >>> # serve("model.ember", port=8000)
        >>> # serve("numbers.ember", option_limits={"beam": 32, "max_len": None})
        >>> # serve("model.ember", max_items=64, max_body_bytes=1024 * 1024)
    """
    _require_serving()  # before loading the model
    _check_serving_limits(max_batch, max_wait_ms, max_items, max_body_bytes)
    import uvicorn

    from ember.export import load

    app = create_app(load(path, device="cpu"), max_batch=max_batch, max_wait_ms=max_wait_ms,
                     max_items=max_items, max_body_bytes=max_body_bytes,
                     option_limits=option_limits)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)
