"""``ember serve``: a REST endpoint for an exported model, on a standard ASGI stack.

FastAPI + uvicorn (``pip install ember[serve]``). Endpoints:

- ``POST /predict`` — JSON ``{"inputs": [item, ...]}`` → ``{"predictions": [...]}``; an item is
  what the model's data kind accepts in JSON (a string for text, an object of column → value
  for a tabular row, a base64 string for an image, a list of numbers for a signal). Images may
  also be sent as multipart files to ``POST /predict/files``.
- ``GET /health``, ``GET /metadata`` (classes, target kind, input schema), OpenAPI at ``/docs``.

Requests are validated (4xx with a reason: malformed JSON, too many items, a bad item), bodies
are capped (413, by :class:`BodyCap`: the declared length, or counted as a chunked body streams
in), and concurrent requests are micro-batched: requests arriving within ``max_wait_ms`` of each
other are predicted together, up to ``max_batch`` items (``/metadata`` counts the batches run).
Access-log lines are off unless asked for (``--access-log``): they cost time per request.

Example:
    >>> # $ ember serve model.ember --host 127.0.0.1 --port 8000
    >>> # $ curl -X POST localhost:8000/predict -d '{"inputs": ["A delight."]}'
"""


# no `from __future__ import annotations`: FastAPI reads the endpoint annotations at runtime
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ember.errors import DataError
from ember.export import Predictor

__all__ = ["BodyCap", "MicroBatcher", "create_app", "serve"]


@dataclass
class _Pending:
    items: list[Any]
    future: asyncio.Future[list[Any]] = field(repr=False)


class MicroBatcher:
    """Collects concurrent requests for up to ``max_wait_ms`` (or ``max_batch`` items) and
    predicts them in one batch on a worker thread. A bad item fails only its own request.

    Example:
        >>> # batcher = MicroBatcher(predictor); await batcher.predict(["text"])
    """

    def __init__(self, predictor: Predictor, max_batch: int = 64, max_wait_ms: float = 5.0
                 ) -> None:
        self.predictor, self.max_batch, self.max_wait = predictor, max_batch, max_wait_ms / 1000
        self.queue: asyncio.Queue[_Pending] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.batches_run = self.items_run = 0

    async def predict(self, items: list[Any]) -> list[Any]:
        """Predictions for one request's items."""
        loop = asyncio.get_running_loop()
        if self.queue is None or self.loop is not loop:  # one worker per event loop
            self.queue, self.loop = asyncio.Queue(), loop
            self._task = loop.create_task(self._worker(self.queue))
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(items, future))
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
            try:
                await self._run(pending)
            except Exception as error:  # never let the worker die with requests waiting
                for request in pending:
                    if not request.future.done():
                        request.future.set_exception(error)

    async def _run(self, pending: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        items = [item for request in pending for item in request.items]
        self.batches_run += 1
        self.items_run += len(items)
        try:
            results = await loop.run_in_executor(None, self.predictor.predict_batch, items)
        except Exception:
            if len(pending) == 1:
                await self._run_alone(pending[0])
                return
            for request in pending:  # isolate the request with the bad item
                await self._run_alone(request)
            return
        start = 0
        for request in pending:
            request.future.set_result(results[start:start + len(request.items)])
            start += len(request.items)

    async def _run_alone(self, request: _Pending) -> None:
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(None, self.predictor.predict_batch,
                                                request.items)
        except Exception as error:
            request.future.set_exception(error)
        else:
            request.future.set_result(result)


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def create_app(predictor: Predictor, max_batch: int = 64, max_wait_ms: float = 5.0,
               max_items: int = 1024, max_body_bytes: int = 16 * 1024 * 1024) -> Any:
    """The FastAPI application serving ``predictor``.

    Example:
        >>> # app = create_app(ember.load("model.ember")); uvicorn.run(app)
    """
    from fastapi import FastAPI, File, HTTPException, UploadFile
    from pydantic import BaseModel, Field

    manifest = predictor.manifest
    kind = manifest["data"]["kind"]
    batcher = MicroBatcher(predictor, max_batch, max_wait_ms)
    app = FastAPI(title=f"Ember model: {manifest['model']['name']} ({kind})",
                  version=str(manifest.get("plugin_version") or manifest["ember_version"]),
                  description="Predictions from a model exported with ember.")
    app.state.batcher = batcher

    class PredictRequest(BaseModel):
        inputs: list[Any] = Field(..., min_length=1, max_length=max_items,
                                  description="raw items: text, row objects, base64 images…")

    class PredictResponse(BaseModel):
        predictions: list[Any]

    app.add_middleware(BodyCap, max_bytes=max_body_bytes)

    async def predict_items(items: Sequence[Any]) -> list[Any]:
        try:
            decoded = [predictor.data.from_json(item, i) for i, item in enumerate(items)]
            return _jsonable(await batcher.predict(decoded))
        except (DataError, ValueError, TypeError, KeyError) as error:
            raise HTTPException(status_code=422, detail=str(error)) from None

    @app.post("/predict", response_model=PredictResponse)
    async def predict(body: PredictRequest) -> dict[str, Any]:
        return {"predictions": await predict_items(body.inputs)}

    @app.post("/predict/files", response_model=PredictResponse)
    async def predict_files(files: list[UploadFile] = File(...)) -> dict[str, Any]:  # noqa: B008
        if len(files) > max_items:
            raise HTTPException(status_code=422, detail=f"at most {max_items} files a request")
        return {"predictions": await predict_items([await f.read() for f in files])}

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
            "input_schema": predictor.data.input_schema(),
            "max_items": max_items,
            "batching": {"max_batch": batcher.max_batch, "max_wait_ms": batcher.max_wait * 1000,
                         "batches_run": batcher.batches_run, "items_run": batcher.items_run},
        }

    return app


def serve(path: str, host: str = "127.0.0.1", port: int = 8000, max_batch: int = 64,
          max_wait_ms: float = 5.0, access_log: bool = False) -> None:
    """Load an exported model and serve it until interrupted (``ember serve``). Per-request
    access-log lines cost time on the hot path, so they are off unless ``access_log``.

    Example:
        >>> # serve("model.ember", port=8000)
    """
    import uvicorn

    from ember.export import load

    app = create_app(load(path, device="cpu"), max_batch=max_batch, max_wait_ms=max_wait_ms)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)
