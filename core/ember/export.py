"""Exported models and checkpoints: safe to load, self-describing, no pickle.

An exported model is one safetensors file. Its header carries a JSON manifest (format version,
Ember and plugin versions, the data kind and its preprocessing state, the architecture name and
config, a SHA-256 digest of the weights) and, beside it, a SHA-256 digest of the manifest's
text; its body carries the weights. Loading it parses JSON and raw tensors only, so a crafted
file cannot run code, and refuses a file that was cut short, extended or changed after export
(its length, its weights' digest or its manifest's digest no longer match). Checkpoints
(``Learner.save``) are read with ``torch.load(weights_only=True)``, which refuses anything but
tensors and plain containers.

Example:
    >>> # learn.export("model.ember"); predictor = ember.load("model.ember")
    >>> # predictor.predict_batch(items) == learn.predict_batch(items)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_file

from ember.distributed import write_on_rank_zero
from ember.errors import ExportError, PluginError, TrainingError
from ember.model import evaluating
from ember.utils import (
    atomic_write,
    check_file_path,
    default_device,
    is_safetensors,
    plain,
    unwritable_folder,
)

if TYPE_CHECKING:
    from ember.data import Data
    from ember.learner import Learner

__all__ = ["FORMAT_VERSION", "Predictor", "check_onnx", "export_learner", "export_onnx", "load",
           "manifest_digest", "read_checkpoint", "read_manifest", "weights_digest"]

#: Version of the exported-model format this Ember writes and reads. The weights' digest
#: (``weights_sha256``) did not change it: readers ignore manifest keys they do not know, so an
#: older Ember loads a file that has one (without checking it), and this one loads files
#: without one (unchecked). Nor did the manifest's digest (``ember_manifest_sha256``, see
#: :data:`MANIFEST_DIGEST_KEY`), for the same reason.
FORMAT_VERSION = 1
MANIFEST_KEY = "ember_manifest"
#: The manifest key of the weights' SHA-256 digest (see :func:`weights_digest`).
DIGEST_KEY = "weights_sha256"
#: The metadata key, beside :data:`MANIFEST_KEY`, of the SHA-256 (hex) of the manifest's exact
#: stored text: the UTF-8 bytes of the string under ``ember_manifest``, weights' digest
#: included (see :func:`manifest_digest`). It did not change FORMAT_VERSION either: an older
#: Ember reads only ``ember_manifest`` and safetensors ignores metadata it does not use, so it
#: loads a file that has one (without checking it), and this one loads files without one
#: (unchecked, as before).
MANIFEST_DIGEST_KEY = "ember_manifest_sha256"
#: What to do about a damaged file, the end of every message that says so.
_DAMAGED_FIX = ("Do not use it: export the model again, or copy the file again from where it "
                "was exported")
#: Files larger than this are refused unless ``max_bytes`` says otherwise (4 GiB).
MAX_BYTES = 4 * 1024**3


def _ember_version() -> str:
    from ember import __version__

    return __version__


def export_learner(learn: Learner, path: Path) -> Path:
    """Write ``learn``'s model and preprocessing to ``path`` (see :meth:`Learner.export`).

    Example:
        >>> # export_learner(learn, Path("model.ember"))
    """
    from ember.learner import _uncompiled
    from ember.plugins import get_registry, plugin_infos

    # the module torch.compile wrapped, when the user gave the learner a compiled model: its
    # weights are stored under their own names, which ember.load's rebuilt model has (the
    # wrapper's names start with _orig_mod., and the file could not be loaded)
    model = _uncompiled(learn.model)
    config = getattr(model, "ember_config", None)
    if not isinstance(config, dict) or "name" not in config:
        raise ExportError(
            f"the model ({type(model).__name__}) was not built with ember.create_model, so a "
            f"file cannot say how to rebuild it. Build it with ember.create_model(name, ...), or "
            f"set model.ember_config = {{'name': ..., 'config': {{...}}}} and implement the "
            f"ember_rebuild_model hook in a plugin"
        )
    data = learn.data
    registry = get_registry()
    if data.kind not in registry.data_kinds:  # ember.load could not rebuild its preprocessing
        raise ExportError(
            f"the data kind {data.kind!r} ({type(data).__name__}) is registered by no loaded "
            f"plugin, so ember.load could not rebuild its preprocessing. Register it in a "
            f"plugin: @ember.hookimpl def ember_data_kinds(register): "
            f"register({data.kind!r}, {type(data).__name__}), then load that plugin with "
            f"ember.register_plugin(module, name=...) (a notebook, a plugin in development) or "
            f"install it with an entry point in the group 'ember'; see docs/plugins.md and "
            f"`ember plugins`"
        )
    _check_registered_class(data, registry.data_kinds[data.kind])
    plugin = registry.owner.get(("ember_data_kinds", data.kind), "builtin")
    infos = {info.name: info for info in plugin_infos()}
    info = infos.get(plugin)
    manifest = {
        "format": "ember-model",
        "format_version": FORMAT_VERSION,
        "ember_version": _ember_version(),
        "plugin": plugin,
        "plugin_package": info.package if info else "",
        # where a plugin given to ember.register_plugin came from (it has no package to name)
        "plugin_module": info.module if info else "",
        "plugin_version": info.version if info else "",
        "data": {"kind": data.kind, "state": data.state()},
        "model": {"name": config["name"], "config": config.get("config", {}),
                  "plugin": config.get("plugin", plugin)},
    }
    try:  # serialised once, before anything is written; written with the weights' digest
        text = json.dumps(manifest, default=_json_plain)
    except (TypeError, ValueError):  # name the part that holds the value
        for part, value in (("preprocessing state", manifest["data"]),
                            ("model config", manifest["model"])):
            try:
                json.dumps(value, default=_json_plain)
            except (TypeError, ValueError) as error:
                where = _unjsonable_key(data, manifest["data"]["state"]) if part.startswith(
                    "preprocessing") else ""
                raise ExportError(f"the {part}{where} is not JSON-able ({error}); give it plain "
                                  f"numbers, strings, lists and dicts") from None
        raise
    written = json.loads(text)  # the manifest as ember.load reads it, in load's order:
    _check_model_rebuilds(written)  # the model rebuilt first, then the data
    _check_rebuilds(registry.data_kinds[data.kind], written["data"]["state"])

    def write(tmp: Path) -> None:
        # a failed write (disk full) leaves the learner as it was, ready to train on
        with evaluating(model):
            cpu_model = model if learn.device.type == "cpu" else _cpu_copy(model)
            tensors, aliases = _stored_tensors(cpu_model)
            # the digest is of the very tensors written: it goes in the header, before them
            stored_text = _with_digest(text, weights_digest(tensors))
            # and the manifest's own digest, of the very text written, beside it
            metadata = {**aliases, MANIFEST_KEY: stored_text,
                        MANIFEST_DIGEST_KEY: manifest_digest(stored_text)}
            save_file(tensors, str(tmp), metadata=metadata)

    # rank 0 writes; the others wait for it, so no rank reads the file before it is complete
    return write_on_rank_zero(learn.distributed, lambda: atomic_write(path, write), path)


def _with_digest(text: str, digest: str) -> str:
    """``text``, a JSON object as ``json.dumps`` writes it (default separators), with the
    weights' digest added as its last key: the text ``json.dumps`` gives for the object with
    that key added, without serialising the manifest a second time.

    Example:
        >>> _with_digest('{"format": "ember-model"}', "ab")
        '{"format": "ember-model", "weights_sha256": "ab"}'
    """
    # the key and a hexadecimal digest need no escaping; an empty object takes no comma
    return f'{text[:-1]}{", " if text != "{}" else ""}"{DIGEST_KEY}": "{digest}"}}'


#: What a Data subclass may override and still export as the class registered for its kind:
#: the training side only (loaders, batches, plots, constructors), which ember.load never runs.
#: Everything else (encode, decode, predict_one, state, from_state, the item checks, a plugin's
#: own helpers such as ImageData.read_images, ...) may change what a loaded model predicts.
_TRAINING_SIDE = frozenset({
    "__init__", "__repr__", "__str__", "__init_subclass__", "__module__", "__qualname__",
    "__doc__", "__dict__", "__weakref__", "__annotations__", "__annotate__", "__firstlineno__",
    "__static_attributes__", "__orig_bases__", "__parameters__", "__slots__", "loaders",
    "loader", "one_batch", "test_labelled", "loader_labelled", "show_batch", "show_results",
    "show_images", "feature_importance", "describe",
})


def _inference_overrides(data_class: type, registered: type) -> list[str]:
    """The names ``data_class`` defines in place of ``registered``'s that :func:`load`'s
    predictor would not run: what inference uses (anything but :data:`_TRAINING_SIDE` and
    constructors, the class methods other than ``from_state``), sorted.

    :func:`load` rebuilds the data kind a file names with the class registered for it, so a
    subclass of that class which changes any of these would predict one way in the learner and
    another once loaded. A name that only ``data_class`` has (a new helper) is not counted:
    the registered class never calls it.

    Example:
        >>> from ember.data import Data
        >>> class Flipped(Data):
        ...     def encode(self, items):
        ...         return tuple(-x for x in super().encode(items))
        ...     @classmethod
        ...     def from_numbers(cls, numbers): ...
        >>> _inference_overrides(Flipped, Data)
        ['encode']
    """
    skip = set(registered.__mro__)
    names: set[str] = set()
    for owner in data_class.__mro__:
        if owner in skip:
            continue
        for name, value in vars(owner).items():
            if name in _TRAINING_SIDE or name in names:
                continue
            if isinstance(value, classmethod) and name != "from_state":
                continue  # a constructor: from_arrays, from_folder, ...
            try:
                original = inspect.getattr_static(registered, name)
            except AttributeError:
                continue  # new: only the subclass's own methods call it
            if value is original:
                continue
            if not callable(value) and not isinstance(value, (property, staticmethod)):
                try:
                    if value == original:  # kind = "image" again, a constant set the same
                        continue
                except Exception:  # an array: comparing is no answer
                    pass
            names.add(name)
    return sorted(names)


def _check_registered_class(data: Data, registered: type[Data]) -> None:
    """Refuse to export ``data`` when it is a class other than the one registered for its
    kind and changes what inference runs: :func:`load` would rebuild it as ``registered``
    (a file never names code to import), so the loaded model would predict differently."""
    data_class = type(data)
    if data_class is registered:
        return
    changed = _inference_overrides(data_class, registered)
    if not changed:
        return  # only constructors, plots or loaders of its own: it loads as the registered one
    name = data_class.__name__
    new_kind = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    raise ExportError(
        f"{name} overrides {', '.join(changed)} of {registered.__name__}, the class registered "
        f"for the data kind {data.kind!r}; ember.load rebuilds {data.kind!r} data as "
        f"{registered.__name__} (an exported file never names code to import), so the loaded "
        f"model would predict differently from this learner. Either register {name} as a data "
        f"kind of its own: set kind = {new_kind!r} on it, extend state()/from_state with what "
        f"it needs, and register it from a plugin (@ember.hookimpl def ember_data_kinds("
        f"register): register({new_kind!r}, {name}), loaded with ember.register_plugin(module, "
        f"name=...) in a notebook, or an installed plugin; see docs/plugins.md); or move the "
        f"custom step into the model (a torch.nn.Module in front of it), so the file carries "
        f"it as weights")


def _stored_tensors(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors an export writes, by name, and the tied names it leaves out (name → the
    stored name it shares its weights with, recorded in the file's metadata).

    Ember chooses them itself, rather than leaving it to ``safetensors.torch.save_model``, so
    that the digest is taken over exactly the tensors written. Tied weights (a language
    model's decoder and embedding: one tensor under two names) are stored once, under the
    first name in sorted order, as ``save_model`` does; the rebuilt model ties them again and
    ``load_model`` fills both from the one. So is any entry that lies in the memory of an
    entry covering all of it (a buffer that is a slice or a reshape of a parameter): it is
    left out, under the first such name in sorted order, as ``save_model`` does, since
    ``load_model`` leaves it out of the names it fills (the rebuilt model's view is filled
    through the tensor it is part of). An entry that shares memory with others none of which
    covers all of it is stored as a copy of its own.

    Example:
        >>> tied = torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False),
        ...                            torch.nn.Linear(2, 2, bias=False))
        >>> tied[1].weight = tied[0].weight
        >>> tensors, aliases = _stored_tensors(tied)
        >>> sorted(tensors), aliases
        (['0.weight'], {'1.weight': '0.weight'})
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    entries = [(name, tensor.detach().cpu())
               for name, tensor in sorted(model.state_dict().items())]
    whole: dict[int, str] = {}  # storage → the first entry that covers all of it
    for name, tensor in entries:
        memory = tensor.untyped_storage()
        if (tensor.numel() and tensor.data_ptr() == memory.data_ptr()
                and tensor.numel() * tensor.element_size() == memory.nbytes()):
            whole.setdefault(memory.data_ptr(), name)
    for name, tensor in entries:
        storage = tensor.untyped_storage().data_ptr()
        if tensor.numel() and whole.get(storage, name) != name:
            aliases[name] = whole[storage]  # load_model fills it through that one
            continue
        view = (storage, tensor.storage_offset(), tensor.dtype, tuple(tensor.shape),
                tensor.stride())
        if tensor.numel() and view in views:
            aliases[name] = views[view]
            continue
        if tensor.numel() and storage in storages:
            tensor = tensor.clone()  # part of another entry's memory: its own copy
        else:
            views[view] = name
            storages.add(storage)
        tensors[name] = tensor.contiguous()
    return tensors, aliases


def weights_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of tensors exactly as an export stores them: for each name in sorted
    order, a JSON line ``[name, dtype, shape]`` and then the tensor's raw bytes, little-endian.

    An export records this digest of the tensors it writes in the manifest (``weights_sha256``)
    and :func:`load` recomputes it from the file, so a file whose weights changed after export
    (a flipped bit on a disk, a damaged download) is refused instead of predicting garbage.

    Why over the tensors, not the file's data section in one piece: the manifest that holds
    the digest sits in the header, in front of that data, so the digest must be known before
    the file is written, from the tensors themselves, without reproducing the order in which
    safetensors lays them out (an internal of the library). At load it costs one more read of
    the weights, at the speed of SHA-256 (about 0.1 s for 100 MB here), with no copy of them
    in memory (the file is mapped and read one tensor at a time). Names, dtypes and shapes are
    in it too, so a tensor renamed, reshaped or retyped in the header does not pass. The bytes
    are read as bytes (``tensor.view(torch.uint8)``), so dtypes NumPy lacks (bfloat16, float8)
    hash like any other; on a big-endian machine they are put in the file's little-endian
    order first.

    Example:
        >>> weights_digest({"w": torch.zeros(2, dtype=torch.bfloat16)})[:16]
        '384f89e609c95264'
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        shape = list(tensor.shape)
        digest.update(json.dumps([name, str(tensor.dtype).removeprefix("torch."), shape]
                                 ).encode() + b"\n")
        if not tensor.numel():
            continue
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        width = tensor.element_size() // (2 if tensor.is_complex() else 1)
        if sys.byteorder == "big" and width > 1:  # safetensors stores little-endian
            raw = raw.view(-1, width).flip(1).reshape(-1)
        digest.update(raw.numpy())
    return digest.hexdigest()


def manifest_digest(text: str) -> str:
    """SHA-256 (hex) of a manifest's stored text: the UTF-8 bytes of the very string written
    under ``ember_manifest`` in the file's metadata.

    An export records it beside the manifest (``ember_manifest_sha256``) and
    :func:`read_manifest` recomputes it, so a manifest changed after export is refused even
    when it still parses: a digit of a normalisation mean, a class name or a vocabulary entry
    changed by a damaged disk or copy, or by an edit, would otherwise load without a word and
    predict wrongly. It is over the text, not over the parsed JSON, so there is nothing to
    canonicalise: the string in the file is the one that was hashed, and any change to it, a
    space included, fails. The manifest holds the weights' digest (:func:`weights_digest`), so
    the two together cover the whole file.

    Example:
        >>> manifest_digest('{"format": "ember-model"}')[:16]
        'd720e7dd862e6752'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_plain(value: Any) -> Any:
    """``json.dumps``'s fallback: NumPy scalars (``np.unique``'s labels, a size read off an
    array) as the Python numbers they equal, so they write to JSON and read back equal."""
    converted = plain(value)
    if converted is value:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable: "
                        f"{value!r}")
    return converted


def _cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).cpu()


def read_manifest(path: str | Path, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Read and check the manifest of an exported model without loading weights.

    Checks what the header alone can tell: that the file is as long as its header says (a
    copy cut short, or one with bytes appended, is refused as damaged), that the manifest's
    text matches the digest the export recorded beside it (:func:`manifest_digest`; a file
    exported before Ember recorded one is read unchecked), that it is an Ember export in a
    format this Ember reads, and that the manifest has the fields a load needs. The weights'
    digest is checked by :func:`load`, which reads the weights anyway.

    Example:
        >>> # read_manifest("model.ember")["data"]["kind"] -> 'image'
    """
    with _open_export(path, max_bytes) as (_, manifest):
        return manifest


@contextmanager
def _open_export(path: str | Path, max_bytes: int = MAX_BYTES
                 ) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The open safetensors file at ``path`` and its checked manifest (see
    :func:`read_manifest`, which is this without the file): its header is read once, and
    :func:`load` checks the weights' digest and shapes through the same handle.

    Example:
        >>> # with _open_export("model.ember") as (handle, manifest): handle.keys()
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ExportError(f"no model file at {file}")
    size = file.stat().st_size
    if size > max_bytes:
        raise ExportError(f"{file} is {size} bytes, over the limit of {max_bytes}; pass "
                          f"max_bytes= if you trust it")
    try:
        handle = safe_open(str(file), framework="pt")
        metadata = handle.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for any bad header
        # safetensors refuses any file whose length is not the one its header describes;
        # _check_length says which way (cut short, or bytes appended) and what to do
        _check_length(file, size)
        if _is_onnx_file(file):  # learn.export_onnx's file: not corrupt, another kind
            raise ExportError(
                f"{file} is an ONNX model (learn.export_onnx), not an Ember export; run it with "
                f"onnxruntime (onnxruntime.InferenceSession), feeding it what "
                f"learn.data.encode(items) returns. ember.load reads only files written by "
                f"learn.export (model.ember)") from None
        if _is_torch_file(file):  # learn.save's checkpoint, say: not corrupt, another kind
            raise ExportError(
                f"{file} is a PyTorch file (torch.save: a checkpoint written by learn.save, or "
                f"a state dict), not an exported model; ember.load reads only files written by "
                f"learn.export, and never unpickles. To export a checkpoint, build its learner "
                f"as in training, learn.load({str(file)!r}), then learn.export(\"model.ember\")"
            ) from None
        raise ExportError(
            f"{file} is not a readable Ember model file (truncated, corrupt, or another "
            f"format): {error}"
        ) from None
    with handle:
        yield handle, _checked_manifest(file, metadata)


def _checked_manifest(file: Path, metadata: dict[str, str]) -> dict[str, Any]:
    """The manifest in ``file``'s header ``metadata``, checked against its digest, its format
    and the fields a load needs (see :func:`read_manifest`)."""
    if MANIFEST_KEY not in metadata:
        raise ExportError(f"{file} is a safetensors file but not an Ember export (no manifest)")
    expected = metadata.get(MANIFEST_DIGEST_KEY)  # files exported before it have none
    if expected is not None and manifest_digest(metadata[MANIFEST_KEY]) != expected:
        raise ExportError(
            f"{file} is damaged: its manifest (the preprocessing state, class names and model "
            f"config in its header) does not match the SHA-256 digest recorded when it was "
            f"exported, so it was changed after export (a damaged download, copy or disk, or "
            f"an edit). Do not use it, and do not edit the manifest by hand: export the model "
            f"again (load its checkpoint with learn.load and call learn.export, or run the "
            f"training script again), or copy the file again from where it was exported")
    try:
        manifest = json.loads(metadata[MANIFEST_KEY])
    except json.JSONDecodeError as error:
        raise ExportError(f"{file} has a corrupt manifest: {error}") from None
    if manifest.get("format") != "ember-model":
        raise ExportError(f"{file} is not an Ember model file")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ExportError(
            f"{file} was written in model format {version!r} by ember "
            f"{manifest.get('ember_version')}; this ember {_ember_version()} reads format "
            f"{FORMAT_VERSION} and older. Upgrade ember: pip install -U ember"
        )
    data, model = manifest.get("data"), manifest.get("model")
    if not (isinstance(data, dict) and isinstance(data.get("kind"), str)
            and isinstance(data.get("state"), dict) and isinstance(model, dict)
            and isinstance(model.get("name"), str)
            and isinstance(model.get("config", {}), dict)):
        raise ExportError(f"{file} has a corrupt manifest: it needs data.kind (a string), "
                          f"data.state (an object), model.name (a string) and model.config "
                          f"(an object)")
    digest = manifest.get(DIGEST_KEY, "")  # files exported before Ember recorded it have none
    if not (isinstance(digest, str) and len(digest) in (0, 64)
            and all(c in "0123456789abcdef" for c in digest)):
        raise ExportError(f"{file} has a corrupt manifest: {DIGEST_KEY} must be a SHA-256 "
                          f"digest (64 hexadecimal digits), not {digest!r}")
    return manifest


def _is_torch_file(file: Path) -> bool:
    """Whether ``file`` is what ``torch.save`` writes (a checkpoint of :meth:`Learner.save`):
    a zip archive holding a ``data.pkl``, told from its list of names alone (nothing is
    unpickled).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     torch.save({"w": torch.zeros(1)}, Path(folder) / "stage1.pt")
        ...     _is_torch_file(Path(folder) / "stage1.pt")
        True
    """
    try:
        with open(file, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                return False
        with zipfile.ZipFile(file) as archive:
            return any(name.rpartition("/")[2] == "data.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


#: The first field numbers an ONNX ModelProto may have after its ``ir_version`` (field 1), as
#: protobuf tags: producer_name, producer_version, domain, model_version, doc_string, graph,
#: opset_import, metadata_props, training_info, functions.
_ONNX_TAGS = frozenset(b"\x12\x1a\x22\x28\x32\x3a\x42\x72\x7a\x82")


def _is_onnx_file(file: Path) -> bool:
    """Whether ``file`` starts as an ONNX model does (what :func:`export_onnx` writes), told
    from its first bytes (nothing is parsed): the tag of ``ir_version`` (``0x08``), a small
    version number, then the tag of another field of a ModelProto.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     (Path(folder) / "m.onnx").write_bytes(bytes([8, 10, 18]) + b"pytorch")
        ...     _is_onnx_file(Path(folder) / "m.onnx")
        10
        True
    """
    try:
        with open(file, "rb") as handle:
            start = handle.read(3)
    except OSError:
        return False
    return len(start) == 3 and start[0] == 0x08 and 1 <= start[1] < 0x80 and (
        start[2] in _ONNX_TAGS)


def _checkpoint_reason(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in words that fit a checkpoint:
    the object it would have had to unpickle (``GLOBAL posix.system``), or the first sentence
    of torch's message. Never torch's advice to load again with ``weights_only=False``: that
    runs whatever code the file holds.

    Example:
        >>> _checkpoint_reason(RuntimeError("failed finding central directory. This is ..."))
        'failed finding central directory'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        found = next((line for line in lines[1:] if "GLOBAL" in line), None)
        if found is not None:
            after = found.split("GLOBAL", 1)[1].split()
            name = after[0] if after else "object"
            return f"it holds a pickled {name}, not only tensors and plain containers"
        return "it is not what torch.save writes of tensors and plain containers"
    return lines[0].split(". ")[0].rstrip(".") if lines else type(error).__name__


def _check_length(file: Path, size: int) -> None:
    """Refuse a file whose length is not the one its safetensors header describes: 8 bytes
    of header length, the JSON header, then the tensors up to the last one's end offset.

    A copy cut short and one with bytes appended (two files joined) both fail in safetensors
    with "incomplete metadata, file not fully covered"; once safetensors has refused a file,
    this says which, and what to do. A start that is not a readable safetensors header is left
    to safetensors' own message.

    Example:
        >>> # _check_length(Path("model.ember"), 1000) -> ExportError: ... is damaged: ...
    """
    with open(file, "rb") as handle:
        start = handle.read(9)
        if len(start) < 9 or start[8:9] != b"{":
            return
        length = int.from_bytes(start[:8], "little")
        if length > 100_000_000:  # no plausible header; safetensors refuses these too
            return
        if 8 + length > size:
            raise ExportError(f"{file} is damaged: it is {size} bytes long but its header alone "
                              f"is {8 + length}, so the copy was cut short (truncated) after "
                              f"export. {_DAMAGED_FIX}")
        handle.seek(8)
        try:
            header = json.loads(handle.read(length))
            ends = [entry["data_offsets"][1] for key, entry in header.items()
                    if key != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return  # a corrupt header: safetensors' check names it
    if not all(isinstance(end, int) and not isinstance(end, bool) for end in ends):
        return
    expected = 8 + length + max(ends, default=0)
    if size != expected:
        what = ("the copy was cut short (truncated) after export" if size < expected else
                f"{size - expected} bytes follow its weights (appended after export, or two "
                f"files joined)")
        raise ExportError(f"{file} is damaged: it is {size} bytes long but its header describes "
                          f"{expected}; {what}. {_DAMAGED_FIX}")


class _FileTensors(Mapping[str, torch.Tensor]):
    """The tensors of an open safetensors file, read one at a time as they are asked for, so
    hashing a file's weights holds one tensor in memory, not all of them.

    Example:
        >>> # weights_digest(_FileTensors(safe_open("model.ember", framework="pt")))
    """

    def __init__(self, handle: Any) -> None:
        self.handle, self.names = handle, list(handle.keys())

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.handle.get_tensor(name)

    def __iter__(self) -> Any:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def _check_digest(file: Path, manifest: dict[str, Any], handle: Any) -> None:
    """Recompute :func:`weights_digest` over the weights of ``file``, open as ``handle``, and
    refuse the file when it differs from the manifest's. A file exported before Ember recorded
    a digest passes unchecked (it has nothing to compare with).

    Example:
        >>> # with _open_export("model.ember") as (handle, manifest):
        >>> #     _check_digest(Path("model.ember"), manifest, handle)
    """
    expected = manifest.get(DIGEST_KEY)
    if not expected:
        return
    try:
        digest = weights_digest(_FileTensors(handle))
    except Exception as error:  # safetensors raises its own error types for a bad header
        raise ExportError(f"{file} is damaged: its weights cannot be read ({error}). "
                          f"{_DAMAGED_FIX}") from None
    if digest != expected:
        raise ExportError(
            f"{file} is damaged: its weights do not match the SHA-256 digest recorded when it "
            f"was exported, so they were changed after export (a damaged download, copy or "
            f"disk, or an edit). {_DAMAGED_FIX}")


class Predictor:
    """A rebuilt model with its preprocessing: ``predict(item)``, ``predict_batch(items)``.

    Example:
        >>> # predictor = ember.load("model.ember"); predictor.predict(item)
    """

    def __init__(self, model: torch.nn.Module, data: Data, manifest: dict[str, Any],
                 device: torch.device) -> None:
        self.model, self.data, self.manifest, self.device = model, data, manifest, device

    @property
    def classes(self) -> list[Any] | None:
        """Class names of a classifier (``None`` otherwise)."""
        return self.data.classes

    def predict(self, item: Any, **options: Any) -> Any:
        """Decoded prediction for one raw item, with the options of :meth:`Learner.predict`
        (``probs=True``: a :class:`~ember.Prediction` with every class's probability).

        Example:
            >>> # predictor.predict(image, probs=True).probabilities -> {'bag': 0.9, …}
        """
        return self.data.predict_one(self.model, item, device=self.device, **options)

    def predict_batch(self, items: list[Any], **options: Any) -> list[Any]:
        """Decoded predictions for raw items, exactly as the Learner gives them.

        Example:
            >>> # predictor.predict_batch(images, probs=True) -> [Prediction(...), ...]
        """
        from ember.data import check_items

        check_items(items, options)
        return self.data.predict_batch(self.model, items, device=self.device, **options)

    def __repr__(self) -> str:
        return (f"Predictor({self.manifest['model']['name']}, {self.data.kind}, "
                f"device={self.device})")


def _check_rebuilds(data_class: type[Data], state: dict[str, Any]) -> None:
    """Rebuild the inference-side data from ``state`` (as read back from the manifest's JSON)
    as :func:`load` will, so a plugin whose ``from_state`` cannot read its own ``state()``
    fails at export, naming the class, not later at load as a file that looks corrupt."""
    try:
        data_class.from_state(state)
    except Exception as error:
        name = data_class.__name__
        raise ExportError(
            f"{name}.from_state cannot rebuild the {data_class.kind!r} data from its state() "
            f"({type(error).__name__}: {error}), so ember.load could not read the file. A Data "
            f"subclass whose __init__ takes arguments of its own must override "
            f"from_state(state) to call it, and extend state() with everything from_state "
            f"reads (see docs/plugins.md, ember_data_kinds)") from None


def _check_model_rebuilds(manifest: dict[str, Any]) -> None:
    """Find, as :func:`load` will, what rebuilds the model ``manifest`` names: the registered
    architecture, else a plugin's ``ember_rebuild_model`` (asked on the meta device, so nothing
    is allocated). A model that neither rebuilds (an ``ember_config`` set by hand that no hook
    claims) fails at export, naming what to add, not at load with advice to install a plugin
    that is loaded already."""
    from ember.plugins import call_first, get_registry

    name = manifest["model"]["name"]
    if name in get_registry().architectures:
        return
    with torch.device("meta"):
        model = call_first("ember_rebuild_model", manifest=manifest)
    if model is None and (raised := _rebuild_raised()):
        raise ExportError(
            f"the model's ember_config names {name!r}, which is no registered architecture, and "
            f"{raised}, so ember.load could not rebuild it; fix that hook (it gets the "
            f"manifest, with manifest['model'] = {manifest['model']!r})")
    if model is None:
        raise ExportError(
            f"the model's ember_config names {name!r}, which is no registered architecture, "
            f"and no loaded plugin's ember_rebuild_model returns a model for it, so ember.load "
            f"could not rebuild it. Register a builder under that name (ember_architectures) "
            f"and build the model with ember.create_model({name!r}, ...), or implement "
            f"ember_rebuild_model in a plugin to return the model when manifest['model']"
            f"['name'] == {name!r} (see docs/plugins.md)")


def _rebuild_raised() -> str:
    """``plugin 'x' raised in ember_rebuild_model (KeyError: ...)`` for each plugin whose
    ``ember_rebuild_model`` raised (and was listed as broken, then skipped), or ``""``."""
    from ember.plugins import plugin_infos

    prefix = "ember_rebuild_model raised "
    return ", and ".join(f"plugin {info.name!r} raised in ember_rebuild_model "
                         f"({info.reason.removeprefix(prefix)})" for info in plugin_infos()
                         if info.status == "broken" and info.reason.startswith(prefix))


def _unjsonable_key(data: Data, state: dict[str, Any]) -> str:
    """`` (TheData.state()['key'])`` for the first entry of ``state`` JSON cannot write, so a
    plugin author sees which value to turn into plain numbers, or ``""``."""
    for key, value in state.items():
        try:
            json.dumps(value, default=_json_plain)
        except (TypeError, ValueError):
            return f" ({type(data).__name__}.state()[{key!r}])"
    return ""


def _install_hint(manifest: dict[str, Any]) -> str:
    """How to get the plugin that wrote ``manifest``: ``pip install`` its package, or, for one
    that was given to :func:`ember.register_plugin` and has no package, register its module
    again (its plugin name is no package: ``pip install`` would fetch someone else's)."""
    if manifest.get("plugin_package"):
        return f"install it: pip install {manifest['plugin_package']}"
    if "plugin_package" in manifest and manifest.get("plugin") != "builtin":
        module = manifest.get("plugin_module") or "its module"
        where = f"module {module!r}" if manifest.get("plugin_module") else "its module"
        return (f"it was registered with ember.register_plugin from {where}, not installed "
                f"from a package, so register it again before ember.load: "
                f"ember.register_plugin(module, name={manifest.get('plugin')!r}), or install "
                f"it with its entry point in the group 'ember'")
    return f"install it: pip install {manifest.get('plugin')}"  # files written before 0.1


def load(path: str | Path, device: str | torch.device = "cpu", max_bytes: int = MAX_BYTES
         ) -> Predictor:
    """Rebuild a predictor from a file written by :meth:`ember.Learner.export`.

    The plugin named in the file rebuilds the preprocessing and the model; a missing plugin is
    reported with the package to install. Before anything is rebuilt, the manifest and the
    weights are checked against the SHA-256 digests the export recorded
    (:func:`manifest_digest`, :func:`weights_digest`): a file damaged after export raises
    :class:`ember.ExportError` and is never used to predict.

    Example:
        >>> # ember.load("fashion.ember").predict(image)
    """
    path = Path(path).expanduser()  # "~/m.ember" is in the home folder, as in a shell
    target = default_device(device, ExportError)  # before the file is read: said at once
    with _open_export(path, max_bytes) as (handle, manifest):  # the header, read once
        _check_digest(path, manifest, handle)
        data = _rebuild_data(path, manifest)
        # first on the meta device (shapes, no memory): a file whose config was edited to
        # build a far larger model than its weights is refused before anything of that size
        # is made
        try:
            with torch.device("meta"):
                skeleton = _rebuild_model(path, manifest)
        except PluginError:
            raise
        except Exception:  # an architecture that cannot be built on meta (regnet_y_400mf
            skeleton = None  # reads a tensor's value), or a bad config: the real build says
        if skeleton is not None:
            _check_weights_fit(path, skeleton, handle)
    # built again for real: a model built on meta and materialised (to_empty) would hold
    # garbage in what the file does not store (non-persistent buffers such as a
    # normalisation's mean and std, tensors kept as plain attributes)
    model = _rebuild_model(path, manifest)
    try:  # safetensors' own load ties shared weights again (see _stored_tensors)
        missing, unexpected = load_model(model, str(path), strict=False, device="cpu")
    except Exception as error:
        raise ExportError(f"{path}: the weights do not fit the rebuilt model: {error}") from None
    if missing or unexpected:
        raise ExportError(
            f"{path}: the weights do not fit the rebuilt model (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); was it written by another version?"
        )
    model.to(target).eval()
    return Predictor(model, data, manifest, target)


def _rebuild_data(path: Path, manifest: dict[str, Any]) -> Data:
    """The inference-side data (the preprocessing) the manifest of the file at ``path``
    describes, rebuilt by the plugin that registered its kind (a missing plugin is a
    :class:`ember.PluginError` that says what to install)."""
    from ember.plugins import get_registry

    registry = get_registry()
    kind = manifest["data"]["kind"]
    install = _install_hint(manifest)
    if kind not in registry.data_kinds:
        raise PluginError(
            f"{path} holds a {kind!r} model from plugin {manifest.get('plugin')!r}, which is not "
            f"installed (or is broken: see `ember plugins`); {install}"
        )
    try:
        data = registry.data_kinds[kind].from_state(manifest["data"]["state"])
        if (threshold := manifest["data"]["state"].get("threshold")) is not None:
            data.threshold = threshold  # core's key: a plugin's from_state need not read it
        if data.target_std is None and manifest["data"]["state"].get("target_std") is not None:
            data.target_std = list(manifest["data"]["state"]["target_std"])  # core's key too
        from ember.data import _shape_from_state, _shapes_from_state

        if data.input_shapes is None:  # core's key too (absent from older files: unchecked)
            data.input_shapes = _shapes_from_state(manifest["data"]["state"])
        if (target_shape := _shape_from_state(manifest["data"]["state"])) is not None:
            data.target_shape = target_shape  # core's key too (older files: unknown)
    except (KeyError, TypeError, ValueError) as error:
        raise ExportError(f"{path}: its preprocessing state does not fit the {kind!r} data of "
                          f"the installed plugin ({type(error).__name__}: {error}); the file "
                          f"is corrupt or from another version") from None
    return data


def _rebuild_model(path: Path, manifest: dict[str, Any]) -> torch.nn.Module:
    """The untrained model the manifest describes: a plugin's ``ember_rebuild_model``, else
    the named architecture built from the manifest's config (a missing architecture is a
    :class:`ember.PluginError` that says what to install, a config it refuses an
    :class:`ember.ExportError`)."""
    from ember.plugins import call_first, create_model, get_registry

    model = call_first("ember_rebuild_model", manifest=manifest)
    if model is not None:
        return model
    name = manifest["model"]["name"]
    if name not in get_registry().architectures:
        owner = manifest["model"].get("plugin") or manifest.get("plugin")
        fix = ("upgrade ember, which provided it: pip install -U ember" if owner == "builtin"
               else _install_hint(manifest) if owner == manifest.get("plugin")
               else f"install the plugin {owner!r}, which provided it (see `ember plugins`)")
        raised = _rebuild_raised()
        raise PluginError(
            f"{path} needs the architecture {name!r}, which no installed plugin provides; "
            f"{fix}" + (f" ({raised})" if raised else ""))
    try:
        return create_model(name, **manifest["model"].get("config", {}))
    except (TypeError, ValueError, TrainingError) as error:
        raise ExportError(f"{path}: the architecture {name!r} cannot be built from the "
                          f"file's model config ({type(error).__name__}: {error}); the "
                          f"file is corrupt or from another version") from None


def _check_weights_fit(path: Path, skeleton: torch.nn.Module, handle: Any) -> None:
    """Refuse the file at ``path`` when ``skeleton`` (the model its config builds, on the meta
    device) does not fit the weights it holds: a weight whose shape differs, a name on one side
    only (a name sharing its memory with a stored one, tied weights, counts as stored), or,
    whatever the names, more parameters and buffers than the file's size can account for.
    Reads only the header of the file (open as ``handle``), so a config edited to build a huge
    model is refused before that model is made.

    Example:
        >>> # _check_weights_fit(Path("m.ember"), skeleton, handle)  # ExportError if not
    """
    from ember.learner import _state_differences

    stored: dict[str, Any] = {name: torch.empty(handle.get_slice(name).get_shape(),
                                                device="meta")
                              for name in handle.keys()}  # noqa: SIM118
    metadata = handle.metadata() or {}
    model_state = skeleton.state_dict(keep_vars=True)

    def memory(tensor: torch.Tensor) -> int:  # the same for tied weights and views of one
        return id(tensor if tensor._base is None else tensor._base)

    stored_memory = {memory(model_state[name]) for name in stored if name in model_state}
    for name, tensor in model_state.items():
        tied = metadata.get(name) in stored or memory(tensor) in stored_memory
        if name not in stored and tied:
            stored[name] = None  # filled through the stored name it shares memory with
    differences = _state_differences(model_state, stored, strict=True, source="file")
    if differences:
        raise ExportError(f"{path}: the model its config builds does not fit its weights "
                          f"({differences}); the file was edited or is corrupt, or was "
                          f"written by another version")
    tensors = {id(tensor): tensor for tensor in (*skeleton.parameters(), *skeleton.buffers())}
    size = sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())
    limit = 2 * path.stat().st_size + 64 * 1024**2
    if size > limit:
        raise ExportError(f"{path}: the model its config builds holds {size} bytes of weights, "
                          f"more than a file of {path.stat().st_size} bytes accounts for; the "
                          f"file was edited or is corrupt")


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu",
                    mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint written by :meth:`ember.Learner.save`, refusing anything that is not
    plain tensors and containers (no code runs while loading). With ``mmap`` the tensors are
    mapped from the file, not read, until used (to look at a checkpoint's run or epoch).

    Example:
        >>> # state = read_checkpoint("models/stage1.pt")
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ExportError(f"no checkpoint at {file}")
    if is_safetensors(file):  # torch.load's own error for it is a page about weights_only
        raise ExportError(
            f"{file} is an exported model (learn.export), not a checkpoint (learn.save): "
            f"ember.load({str(file)!r}) rebuilds it for prediction; to put its weights in this "
            f"learner, learn.model.load_state_dict(ember.load(path).model.state_dict())")
    if _is_onnx_file(file):  # torch.load's own error for it is a page about weights_only
        raise ExportError(
            f"{file} is an ONNX model (learn.export_onnx), not a checkpoint (learn.save); run it "
            f"with onnxruntime. learn.load reads the files learn.save writes (models/NAME.pt)")
    try:
        state = torch.load(file, map_location=device, weights_only=True, mmap=mmap)
    except Exception as error:
        # torch's message begins with advice to load it again with weights_only=False, which
        # runs any code the file holds: never passed on
        raise ExportError(
            f"{file} could not be read as an Ember checkpoint ({_checkpoint_reason(error)}); it "
            f"may be truncated or damaged, or not a checkpoint learn.save wrote. Ember never "
            f"unpickles other objects (that could run code): save again with learn.save"
        ) from None
    if not isinstance(state, dict) or state.get("format") != "ember-checkpoint":
        raise ExportError(f"{file} is not an Ember checkpoint (no ember-checkpoint marker)")
    from ember.learner import CHECKPOINT_VERSION

    if state.get("version", 0) > CHECKPOINT_VERSION:
        raise ExportError(
            f"{file} was written by a newer ember (checkpoint version {state.get('version')}); "
            f"upgrade ember"
        )
    return state


class _Positional(torch.nn.Module):
    """Gives a model with ``forward(*inputs)`` named positional inputs for the ONNX exporter."""

    def __init__(self, model: torch.nn.Module, n_inputs: int) -> None:
        super().__init__()
        self.model, self.n_inputs = model, n_inputs

    def forward(self, input0: Any, input1: Any = None, input2: Any = None, input3: Any = None
                ) -> Any:
        return self.model(*(input0, input1, input2, input3)[: self.n_inputs])


def export_onnx(learn: Learner, path: Path, check: bool = True, atol: float = 1e-4,
                rtol: float = 1e-5) -> Path:
    """Export ``learn.model`` to ONNX and, with ``check``, verify it with onnxruntime on real
    validation inputs at two batch sizes (each output within ``atol + rtol * |expected|``, as
    :func:`numpy.allclose` checks: a regression's prices in the thousands differ by a float32
    rounding step of 2.4e-4 there, and that is no failure).

    The data says what the model takes (:meth:`ember.Data.example_inputs` gives real inputs to
    trace with, :meth:`ember.Data.input_specs` their names and the dimensions that vary: the
    batch always, the length of a text batch too), so models with several inputs (a table's
    categories and numbers) export the same way as one-input models. The preprocessing stays
    in Python: feed the ONNX model what ``learn.data.encode(items)`` returns, by those names.
    The file is self-contained (weights inside) unless the weights pass 1.5 GB, when they go
    to ``<path>.data`` beside it (protobuf's 2 GB limit). Models whose forward pass decodes
    step by step (sequence-to-sequence greedy or beam search) or takes data-dependent Python
    branches cannot be traced; their export fails with an :class:`ember.ExportError` that
    names the model and the tracer's reason. A failed export (tracing or the check) leaves
    the file that was at ``path`` before. Under ``torchrun`` rank 0 exports and checks; the
    other ranks return once the file is complete (and raise when rank 0's export fails).

    Example:
        >>> # learn.export_onnx("model.onnx")  # inputs named by learn.data.input_specs()
    """
    # rank 0 writes; the others wait for it, so no rank reads the file before it is complete
    return write_on_rank_zero(
        learn.distributed, lambda: _write_onnx(learn, path, check, atol, rtol), path)


def _write_onnx(learn: Learner, path: Path, check: bool, atol: float, rtol: float) -> Path:
    """Trace, check and move into place: :func:`export_onnx` in one process."""
    check_file_path(path)  # a folder, or a path under a file: said now, not after tracing
    data = learn.data
    inputs = data.example_inputs(4)
    if not 1 <= len(inputs) <= 4:
        raise ExportError(f"ONNX export handles models of one to four inputs; a {data.kind} "
                          f"batch has {len(inputs)}")
    specs = data.input_specs(len(inputs))
    if len(specs) != len(inputs):
        raise ExportError(f"{type(data).__name__}.input_specs gives {len(specs)} inputs for a "
                          f"model that takes {len(inputs)}")
    model = _cpu_copy(learn.model).eval()
    # traced, and checked batch by batch, on copies that share its weights: a model that
    # carries a state from one call to the next (a language model's recurrent state) is then
    # compared with the graph from the state it was traced in, for every batch (the graph
    # keeps no state), not from the state the previous check batch left
    wrapper = _Positional(_with_own_state(model), len(inputs)).eval()
    axes: dict[str, Any] = {}  # one symbolic size per axis name, shared between inputs
    dynamic_shapes = {
        f"input{i}": {dim: axes.setdefault(axis, torch.export.Dim(axis, min=1))
                      for dim, axis in spec.dynamic.items()}
        for i, spec in enumerate(specs)
    }
    # written and checked in a folder beside the target, then moved over it: an export that
    # fails (tracing or the check) leaves the file that was there before, not a bad one. The
    # folder is made before tracing, so a folder that cannot be written is said at once,
    # naming the user's path; the name is cut short, as a name near the system's limit (255)
    # must not fail for the folder's
    with unwritable_folder(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = tempfile.TemporaryDirectory(prefix=f".{path.name[:200]}.", dir=path.parent)
    # one self-contained file; protobuf caps a file at 2 GB, so larger weights go beside it
    large = sum(p.numel() * p.element_size() for p in model.parameters()) > 1_500_000_000
    with temporary as folder:
        written = Path(folder) / path.name  # the same name: a .data file refers to it
        _trace_onnx(learn, wrapper, inputs, specs, dynamic_shapes, written, large)
        if check:  # a few items, then a whole second batch (another size; for text, length)
            try:
                for n, index in ((3, 0), (1_000_000, 1)):
                    check_onnx(written, _with_own_state(model),
                               data.example_inputs(n, index=index), atol, rtol)
            except ExportError as error:
                raise ExportError(f"{str(error).replace(str(written), str(path))}; {path} was "
                                  f"not written") from None
        beside = written.with_name(written.name + ".data")
        if large and beside.exists():  # (a name of 251 to 255 characters has no .data one)
            os.replace(beside, path.with_name(path.name + ".data"))
        os.replace(written, path)
    return path


def _with_own_state(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` that shares its parameters and buffers (no memory for weights) and
    has its own copy of everything else, so what a forward pass keeps on the modules (a
    language model's recurrent state) leaves ``model`` as it was.

    Example:
        >>> model = torch.nn.Linear(2, 2)
        >>> _with_own_state(model).weight is model.weight
        True
    """
    import copy

    shared = {id(tensor): tensor for tensor in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo=shared)


def _trace_onnx(learn: Learner, wrapper: torch.nn.Module, inputs: tuple[Any, ...],
                specs: list[Any], dynamic_shapes: dict[str, Any], path: Path, large: bool
                ) -> None:
    """Trace ``wrapper`` into ``path``, turning the tracer's failure into an ExportError."""
    _forget_rnn_kernels()  # else a second export of an LSTM fixes the length (see there)
    try:
        with warnings.catch_warnings():  # the tracer's internal notes; the check below counts
            warnings.simplefilter("ignore")
            # optimize=False: torch's graph optimiser folds the sequence length of stacked
            # LSTMs into a constant (text of another length then fails); onnxruntime optimises
            # the graph itself when it loads it.
            torch.onnx.export(wrapper, inputs, str(path), dynamo=True, optimize=False,
                              input_names=[spec.name for spec in specs],
                              output_names=["output"], dynamic_shapes=dynamic_shapes,
                              external_data=large, verbose=False)
    except Exception as error:
        cause = error
        while cause.__cause__ is not None:  # the tracer's own reason, not the exporter's steps
            cause = cause.__cause__
        lines = [line for line in str(cause).strip().splitlines() if line.strip()]
        raise ExportError(
            f"{type(learn.model).__name__} cannot be exported to ONNX ({type(cause).__name__}: "
            f"{lines[0][:300] if lines else 'no message'}). Models that decode step by step or "
            f"branch on the data cannot be traced; use learn.export() (safetensors) for this "
            f"model"
        ) from None


def _forget_rnn_kernels() -> None:
    """Clear the cached Python kernels of the LSTM and GRU operators, so the next ONNX trace
    picks the one the exporter registers for it.

    With dynamic shapes, ``torch.onnx.export`` registers a ``while_loop`` decomposition of
    ``aten.lstm``/``aten.gru`` for the length of the trace (it traces any length), writing the
    operator's ``py_kernels`` directly; the operator's dispatch cache is not cleared, so from
    the second export of an LSTM or GRU in a process the cached unrolled kernel is used and
    the graph is fixed to the example's length (torch 2.14: ``tokens`` of shape ``['batch',
    8]`` in place of ``['batch', 'time']``), and onnxruntime refuses text of another length.
    Clearing the cache costs nothing: it fills again at the next call.

    Example:
        >>> _forget_rnn_kernels()
    """
    for name in ("lstm", "gru"):
        packet = getattr(torch.ops.aten, name, None)
        for overload in ("input", "data"):
            cache = getattr(getattr(packet, overload, None), "_dispatch_cache", None)
            if isinstance(cache, dict):
                cache.clear()


def check_onnx(path: Path, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...],
               atol: float = 1e-4, rtol: float = 1e-5) -> float:
    """Run ``path`` in onnxruntime on ``inputs`` (in the model's argument order) and compare
    with ``model`` in eval mode; returns the max absolute difference, raising
    :class:`ember.ExportError` when an output differs by more than ``atol + rtol *
    |expected|`` (:func:`numpy.allclose`'s test: float32 outputs in the thousands, a
    regression's prices, differ by rounding steps over 1e-4 that are no failure).

    Example:
        >>> # check_onnx(Path("model.onnx"), learn.model, learn.data.encode(items))
    """
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]
    if len(names) != len(inputs):
        raise ExportError(f"{path} takes {len(names)} inputs ({names}), {len(inputs)} given")
    feeds = {name: x.cpu().numpy() for name, x in zip(names, inputs)}
    try:
        (got,) = session.run(None, feeds)[:1]
    except Exception as error:  # onnxruntime's own types: a shape or type the graph refuses
        shapes = ", ".join(f"{name} {tuple(x.shape)}" for name, x in zip(names, inputs))
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        reason = reason[:300] or type(error).__name__
        raise ExportError(f"ONNX check failed for {path}: onnxruntime cannot run it on the "
                          f"inputs ({shapes}): {reason}") from None
    with evaluating(model) as device:
        expected = model(*(x.to(device) for x in inputs)).float().cpu().numpy()
    if got.shape != expected.shape:
        raise ExportError(f"ONNX parity check failed for {path}: output of shape {got.shape}, "
                          f"the model's {expected.shape}")
    gap = np.abs(got - expected)
    difference = float(gap.max()) if got.size else 0.0
    if got.size and not (gap <= atol + rtol * np.abs(expected)).all():
        raise ExportError(f"ONNX parity check failed for {path}: max abs difference "
                          f"{difference:.2e} (over atol {atol:g} + rtol {rtol:g} * |expected|; "
                          f"shape {got.shape})")
    return difference
