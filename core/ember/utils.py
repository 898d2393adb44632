"""Small helpers: seeding, device choice, moving batches, atomic writes, plain values, and the
one way Ember's plots start a figure.

Example:
    >>> import ember
    >>> ember.seed(0)
"""

from __future__ import annotations

import copy
import errno
import numbers
import os
import random
import secrets
import stat
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ember.errors import DataError, EmberError, TrainingError

__all__ = [
    "atomic_write",
    "check_file_path",
    "check_whole",
    "cpu_copy",
    "default_device",
    "env_flag",
    "is_missing",
    "is_whole",
    "map_tensors",
    "new_figure",
    "plain",
    "seed",
    "to_device",
    "unwritable_folder",
    "warn",
]


def env_flag(name: str, error: type[Exception] | None = None) -> bool:
    """The on/off environment variable ``name``: ``1``, ``true``, ``yes``, ``on`` are on;
    ``0``, ``false``, ``no``, ``off``, empty or unset are off (any case). Any other value
    raises ``error`` (an :class:`ember.EmberError` by default) naming the variable and the
    accepted values, so a typo never silently picks one behaviour.

    Example:
        >>> import os
        >>> os.environ["EMBER_EXAMPLE_FLAG"] = "Off"
        >>> env_flag("EMBER_EXAMPLE_FLAG")
        False
    """
    value = os.environ.get(name, "")
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("", "0", "false", "no", "off"):
        return False
    if error is None:
        from ember.errors import EmberError

        error = EmberError
    raise error(f"{name}={value!r} is not understood: use 1, true, yes or on to turn it on; "
                f"0, false, no, off or an empty value (or unset it) to turn it off")


def seed(n: int = 0) -> None:
    """Seed Python, NumPy and torch (all devices) so a run can be repeated exactly on CPU.

    Example:
        >>> seed(42)
    """
    import numpy as np

    random.seed(n)
    np.random.seed(n % 2**32)
    torch.manual_seed(n)


def default_device(device: str | torch.device | None = "auto",
                   error: type[EmberError] = TrainingError) -> torch.device:
    """Resolve ``"auto"`` to CUDA, then MPS, then CPU; check any other device this machine
    can use, and raise ``error`` naming it and what to pass instead when it cannot (a name
    torch does not know, ``"cuda"`` without a GPU, ``"cuda:3"`` on a machine with one, ``"mps"``
    off a Mac): torch said only "Found no NVIDIA driver on your system", from deep in
    ``model.to``.

    Example:
        >>> default_device("cpu")
        device(type='cpu')
    """
    if device in (None, "auto"):
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    fix = "pass device='auto' (the best device this machine has) or device='cpu'"
    try:
        resolved = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise error(f"device={device!r} is not a device torch knows; {fix}, 'cuda', "
                    f"'cuda:1' or 'mps'") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise error(f"device={device!r}, but this machine has no CUDA device (no NVIDIA "
                        f"GPU or driver, or a torch built without CUDA); {fix}")
        if resolved.index is not None and resolved.index >= count:
            raise error(f"device={device!r}, but this machine has {count} CUDA device"
                        f"{'s' if count > 1 else ''} (cuda:0 to cuda:{count - 1}); pick one "
                        f"of them, or {fix}")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                       and torch.backends.mps.is_available()):
        raise error(f"device={device!r}, but MPS (Apple's GPU) is not available on this "
                    f"machine; {fix}")
    return resolved


def map_tensors(value: Any, function: Callable[[torch.Tensor], Any]) -> Any:
    """``function`` applied to every tensor of ``value``, also inside tuples, lists and dicts
    (a batch, a model's several outputs, a target in parts), nested as deep as it is; the
    structure is kept and anything else is left as it is.

    Example:
        >>> map_tensors({"a": torch.ones(1), "b": [torch.zeros(1), "x"]}, lambda t: t + 1)
        {'a': tensor([2.]), 'b': [tensor([1.]), 'x']}
    """
    if isinstance(value, torch.Tensor):
        return function(value)
    if isinstance(value, (tuple, list)):
        return type(value)(map_tensors(part, function) for part in value)
    if isinstance(value, dict):
        return {key: map_tensors(part, function) for key, part in value.items()}
    return value


def to_device(value: Any, device: torch.device, non_blocking: bool = True) -> Any:
    """Move tensors (also inside tuples, lists and dicts) to ``device``.

    Example:
        >>> to_device((torch.zeros(1), [torch.ones(1)]), torch.device("cpu"))[1][0]
        tensor([1.])
    """
    return map_tensors(value, lambda tensor: tensor if tensor.device == device
                       else tensor.to(device, non_blocking=non_blocking))


def cpu_copy(state: Any) -> Any:
    """A copy of a (nested) state dict with every tensor cloned to the CPU: a snapshot of
    weights or optimiser state that costs no accelerator memory.

    Example:
        >>> weights = {"w": torch.ones(2)}
        >>> snapshot = cpu_copy(weights)
        >>> _ = weights["w"].add_(1)
        >>> snapshot["w"]
        tensor([1., 1.])
    """
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: cpu_copy(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(cpu_copy(value) for value in state)
    return copy.deepcopy(state)


def plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it equals (``np.int64(3)`` → ``3``); anything else
    as it is. Labels read from arrays or data frames become plain values this way, so they
    compare, sort and write to JSON like the user's own.

    Example:
        >>> import numpy as np
        >>> type(plain(np.int64(3))).__name__, plain("cat")
        ('int', 'cat')
    """
    import numpy as np

    return value.item() if isinstance(value, np.generic) else value


def is_whole(value: Any, least: int = 0) -> bool:
    """Whether ``value`` is a whole number, ``least`` or more: an int or a NumPy integer, not
    a bool and not a float such as ``2.0``. The one test for a count (epochs, batches, items,
    images to show); :func:`check_whole` refuses a count option with the one message.

    Example:
        >>> is_whole(3, least=1), is_whole(0, least=1), is_whole(2.0), is_whole(True)
        (True, False, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def check_whole(value: Any, name: str, meaning: str, least: int = 1,
                error: type[Exception] = DataError) -> int:
    """``value`` as an ``int`` when it is a whole number, ``least`` or more (:func:`is_whole`);
    otherwise ``error`` (a :class:`ember.DataError` by default) naming the option ``name``,
    what it counts (``meaning``) and the value given. The one check and the one message for
    a count option (a batch size, a token limit, a beam width, images to show), in core and
    in every plugin.

    Example:
        >>> check_whole(4, "beam", "hypotheses kept")
        4
        >>> try:
        ...     check_whole(0, "max_len", "tokens kept of each text")
        ... except DataError as error:
        ...     print(error)
        max_len (tokens kept of each text) must be a whole number of at least 1, got 0
    """
    if not is_whole(value, least):
        raise error(f"{name} ({meaning}) must be a whole number of at least {least}, got "
                    f"{value!r}")
    return int(value)


def is_missing(value: Any) -> bool:
    """None, NaN (Python's or NumPy's), or pandas' missing markers (``pd.NA`` in nullable
    columns, ``pd.NaT``).

    Example:
        >>> is_missing(None), is_missing(float("nan")), is_missing(""), is_missing(0)
        (True, True, False, False)
    """
    import numpy as np

    return (value is None or (isinstance(value, (float, np.floating)) and value != value)
            or type(value).__name__ in ("NAType", "NaTType"))


def _sync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk; a no-op where the system
    cannot open a folder for that (Windows)."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def check_file_path(path: str | Path) -> None:
    """Refuse, before any work, a path that no file can be written to: an existing folder
    (:class:`IsADirectoryError`), or one under a file (:class:`NotADirectoryError`), each
    saying what to give instead.

    Example:
        >>> check_file_path("models/model.ember")
        >>> check_file_path("/")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        IsADirectoryError: / is a folder, not a file: give the path of a file to write, ...
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file: give the path of a file to "
                                f"write, e.g. {path / 'model.ember'}")
    for parent in path.parents:  # the nearest one that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent} is a file, not a folder, so {path} cannot "
                                         f"be written; give a path whose folders are folders")
            break


@contextmanager
def unwritable_folder(path: str | Path) -> Iterator[None]:
    """Turn a refusal to create a file or folder on the way to ``path`` (a read-only folder
    or disk, a folder of another user's) into a :class:`PermissionError` naming ``path`` and
    its folder and saying what to do, in place of the system's words about the temporary
    file that the atomic write makes first (``'.model.ember.6218cd6cbd17.tmp'``), a name the
    user never gave. Nothing is written before it: a file already at ``path`` is kept.

    Example:
        >>> with unwritable_folder("models/model.ember"):
        ...     pass
    """
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        path = Path(path)
        folder = next((parent for parent in path.parents if parent.exists()), path.parent)
        raise PermissionError(
            f"{path} cannot be written: {folder} does not let this process create files "
            f"({error.strerror}; read-only, or another user's folder). Give a path in a "
            f"folder you can write to, or make that folder writable") from None


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write a file so that readers see the old file or the complete new one, never half.

    ``write(tmp_path)`` writes to a temporary file in the same folder, which then replaces
    ``path`` in one step, after its data is flushed to the disk, so a crash or a power cut
    leaves the old file or the new one, not an empty one. The file gets the permissions
    ``open(path, "w")`` would give it: an existing file's own, else the default ones (umask),
    so others can read a shared model.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> atomic_write(target, lambda p: p.write_text("hi")).read_text()
        'hi'
    """
    path = Path(path)
    check_file_path(path)
    with unwritable_folder(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:  # not mkstemp: its files are private (0600) whatever the umask says
            # the name cut short: a name near the system's limit (255) must not fail for the
            # temporary file's longer one
            tmp = path.parent / f".{path.name[:200]}.{secrets.token_hex(6)}.tmp"
            try:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                break
            except FileExistsError:
                continue
    try:
        # writers that replace the file they are given (safetensors) make it private again
        mode = stat.S_IMODE((path if path.exists() else tmp).stat().st_mode)
        write(tmp)
        os.chmod(tmp, mode)
        _sync(tmp)  # on disk before it takes the name: a crash then leaves the old file
        os.replace(tmp, path)
        _sync(path.parent)  # and the new name itself survives a crash
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def is_safetensors(path: str | Path) -> bool:
    """Whether the file at ``path`` starts as a safetensors file does (an Ember export, a
    ``.safetensors`` state dict), whatever its name: the length of a JSON header (8 bytes,
    little-endian) that fits in the file, then the header's ``{``.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(suffix=".pt") as file:
        ...     is_safetensors(file.name)
        False
    """
    file = Path(path)
    with open(file, "rb") as handle:
        start = handle.read(9)
    return (len(start) == 9 and start[8:9] == b"{"
            and 0 < int.from_bytes(start[:8], "little") < file.stat().st_size)


#: modules whose frames a warning passes over on its way to the user's line
_PASSED_OVER = ("contextlib", "functools")


def warn(message: str, category: type[Warning] | None = None) -> None:
    """Issue a warning at the user's line: the first caller outside Ember and its plugins
    (modules ``ember``, ``ember.*`` and ``ember_*``), however deep inside a fit it is raised,
    so the report names the script's ``learn.fit(...)`` or ``learn.predict(...)`` line.
    ``category`` defaults to :class:`ember.EmberWarning`.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn("a likely mistake")
        >>> caught[0].message.args[0]
        'a likely mistake'
    """
    if category is None:
        from ember.errors import EmberWarning

        category = EmberWarning
    frame, level = sys._getframe(1), 2  # stacklevel 2: warn's caller
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module == "ember" or module.startswith(("ember.", "ember_"))
                or module in _PASSED_OVER):
            break
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def new_figure(rows: int = 1, columns: int = 1, *, ax: Any = None, pyplot: bool = True,
               figsize: tuple[float, float] | None = None, **subplot_options: Any
               ) -> tuple[Any, Any]:
    """The figure and axes every Ember plot draws into: ``(figure, axes)``, as
    ``plt.subplots(rows, columns, figsize=figsize, **subplot_options)`` returns them.

    The figure is made through pyplot, as pandas' and seaborn's plots make theirs, so
    ``plt.show()`` shows it from a script and a notebook shows it at the end of the cell
    (end the line with ``;`` when it is the cell's last, or the returned figure is shown a
    second time as the cell's value). pyplot keeps each figure it makes until
    ``plt.close(figure)``: a loop that plots many times closes what it has saved, or draws
    into axes of its own. With ``ax`` (a matplotlib ``Axes`` of the caller's, for a plot of
    one axes) the plot draws into it and ``(ax.figure, ax)`` comes back: the figure is the
    caller's to lay out, show and close. ``pyplot=False`` makes a ``matplotlib.figure.Figure``
    that pyplot does not track (a server rendering images, a library of the user's own).

    Example:
        >>> figure, axis = new_figure(figsize=(4, 3), pyplot=False)
        >>> _ = axis.plot([1, 2, 3]); len(figure.axes)
        1
    """
    try:
        import matplotlib.figure
    except ImportError:
        raise ImportError("Ember's plots need matplotlib: pip install 'ember[plot]' (or "
                          "pip install matplotlib)") from None
    if ax is not None:
        if (rows, columns) != (1, 1):
            raise ValueError(f"this plot draws a grid of {rows} x {columns} axes, so it cannot "
                             f"draw into one given ax; leave ax out and it makes its figure")
        return ax.figure, ax
    if pyplot:
        import matplotlib.pyplot as plt

        return plt.subplots(rows, columns, figsize=figsize, **subplot_options)
    figure = matplotlib.figure.Figure(figsize=figsize)
    return figure, figure.subplots(rows, columns, **subplot_options)
