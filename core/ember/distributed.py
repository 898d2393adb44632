"""Data-parallel training through PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

The same script runs in one process or many. Under ``torchrun --nproc_per_node=N script.py``
the environment carries ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; the Learner then joins the
process group (NCCL on GPUs, gloo on CPUs), wraps the model in ``DistributedDataParallel``,
shards the training loader with a ``DistributedSampler`` (``set_epoch`` every epoch) and the
validation loader without padding, reduces metrics across ranks, gathers ``get_preds``' batches
from every rank, and lets only rank 0 print and write files (:func:`write_on_rank_zero`).
Nothing changes in the user's script.

Example:
    >>> Distributed.from_environment() is None  # a plain single process
    True
"""

from __future__ import annotations

import atexit
import datetime
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as dist

from ember import errors

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import DataLoader, Sampler

__all__ = ["Distributed", "RowShard", "ShardSampler", "SharedOrderSampler", "interleave",
           "load_optimizer_state", "loader_settings", "optimizer_state", "rank_zero_object",
           "shard_batches", "shard_loader", "unshard_loader", "unshard_rows", "write_on_rank_zero"]

#: the value of a dataset's ``shard_by`` attribute that asks :func:`shard_loader` to split its
#: batches by row (see :class:`RowShard`)
ROWS = "rows"

_Item = TypeVar("_Item")


class ShardSampler:
    """Every ``world_size``-th element of a base sampler or batch sampler (or of
    ``range(n)``), without padding.

    Used for validation: each rank evaluates a disjoint share and sums are reduced, so every
    item counts exactly once. With ``even`` (training) every rank takes the same number,
    ``len(base) // world_size``, and the few left over are skipped this epoch: a rank with one
    step more would wait forever for the others to join its gradient reduction.

    Example:
        >>> list(ShardSampler(range(5), rank=1, world_size=2))
        [1, 3]
        >>> list(ShardSampler(range(5), rank=0, world_size=2, even=True))
        [0, 2]
    """

    def __init__(self, base: Any, rank: int, world_size: int, even: bool = False) -> None:
        self.base, self.rank, self.world_size, self.even = base, rank, world_size, even
        #: rank 0's order of ``base`` for this epoch (see :meth:`set_epoch`)
        self.order: list[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        limit = len(self) if self.even else None
        taken = 0
        source = self.order if self.order is not None else self.base
        for position, index in enumerate(source):
            if taken == limit:
                return
            if position % self.world_size == self.rank:
                taken += 1
                yield index

    def __len__(self) -> int:
        total = len(self.base)
        if self.even:
            return total // self.world_size
        return total // self.world_size + (1 if self.rank < total % self.world_size else 0)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` (the Learner calls it on every rank before each epoch). In a
        process group, the epoch's order of a sampler that draws from torch's global
        generator (the text plugin's length bucketing, a sampler of the user's own) is rank
        0's on every rank: each rank still draws its own, as it would alone, and rank 0's is
        sent to all. Seeding is not enough: the ranks' generators part as soon as their
        batches differ in size (dropout draws one number per element on the CPU), and the
        shares then overlap, so some items were seen twice in an epoch and others never.
        """
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        self.order = _rank_zero_order(self.base) if self.world_size > 1 else None


class SharedOrderSampler:
    """Every element of a base sampler, in rank 0's order of it (the sampler of a
    :class:`RowShard` loader: every rank reads the same batches, each its own rows of them).

    :meth:`set_epoch` (the Learner calls it before each epoch) and :meth:`share_order` send
    rank 0's order to every rank; until then the base's own order is read. ``active=False``
    (a rank with no rows) yields nothing, yet still takes part in the sending.

    Example:
        >>> list(SharedOrderSampler(range(3)))  # outside a process group: the base's order
        [0, 1, 2]
        >>> list(SharedOrderSampler(range(3), active=False))
        []
    """

    def __init__(self, base: Any, active: bool = True) -> None:
        self.base, self.active = base, active
        #: rank 0's order of ``base`` (see :meth:`share_order`)
        self.order: list[Any] | None = None

    def __iter__(self) -> Iterator[Any]:
        if self.active:
            yield from self.order if self.order is not None else self.base

    def __len__(self) -> int:
        return len(self.base) if self.active else 0

    def share_order(self) -> None:
        """Read the base on every rank and keep rank 0's order (a collective: every rank
        calls it)."""
        self.order = _rank_zero_order(self.base)

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch``: the base's ``set_epoch`` when it has one, then
        :meth:`share_order`."""
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)
        self.share_order()


class RowShard:
    """One rank's rows of a dataset whose items are whole batches that continue each other
    row by row (a language model's BPTT stream: row ``r`` of batch ``t + 1`` continues row
    ``r`` of batch ``t``, and the model carries its state from one to the next). Item ``key``
    is ``base[key]`` with every tensor cut to rows ``rank``, ``rank + world_size``, …

    A dataset asks for this split with the class attribute ``shard_by = "rows"``; its
    ``len()`` is then the number of rows of each of its batches, and it is read with
    ``batch_size=None`` (see :func:`shard_loader`).

    Example:
        >>> import torch
        >>> class Stream:
        ...     shard_by = "rows"
        ...     def __len__(self): return 3  # rows per batch
        ...     def __getitem__(self, key): return torch.arange(3) * 10 + key
        >>> RowShard(Stream(), rank=0, world_size=2)[1].tolist()
        [1, 21]
        >>> len(RowShard(Stream(), rank=1, world_size=2))
        1
    """

    def __init__(self, base: Any, rank: int, world_size: int) -> None:
        self.base, self.rank, self.world_size = base, rank, world_size
        self.rows = list(range(rank, len(base), world_size))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: Any) -> Any:
        from ember.utils import map_tensors

        return map_tensors(self.base[key], lambda x: x[self.rank::self.world_size])


class Distributed:
    """This process's place in a distributed run.

    Example:
        >>> # under torchrun: learn.distributed.rank, learn.distributed.world_size
    """

    def __init__(self, rank: int, world_size: int, local_rank: int) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank

    @classmethod
    def from_environment(cls, timeout_s: float | None = None) -> Distributed | None:
        """Join the process group that ``torchrun`` describes in the environment; ``None``
        outside a multi-process run. ``EMBER_DIST_TIMEOUT`` (seconds, default 300) bounds how
        long a rank waits for the others before failing with an error.
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1 or not dist.is_available():
            return None
        if not dist.is_initialized():
            timeout = timeout_s or float(os.environ.get("EMBER_DIST_TIMEOUT", "300"))
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
            # the group Ember joined, Ember leaves before the interpreter's teardown: a
            # two-process CI run once lost a finished rank to an abort in it ("terminate called
            # without an active exception")
            atexit.register(_leave_process_group)
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def all_sum(self, value: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over all ranks (returns a new tensor).

        Example:
            >>> # total = learn.distributed.all_sum(torch.tensor(3.0))
        """
        result = value.detach().clone().to(_backend_device())
        dist.all_reduce(result)
        return result.to(value.device)

    def rank_zero_values(self, *values: float) -> list[float]:
        """Rank 0's ``values`` on every rank (a collective: every rank calls it, with as many
        values). For a decision that reads a clock: each rank's clock gives its own answer,
        and ranks that decide differently (one stops, one trains on) wait for each other
        for ever.

        Example:
            >>> # (spent,) = learn.distributed.rank_zero_values(time.perf_counter() - start)
        """
        shared = torch.tensor(values, dtype=torch.float64, device=_backend_device())
        dist.broadcast(shared, src=0)
        return shared.cpu().tolist()

    def all_gather_object(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (anything picklable), on every rank: item ``r`` is rank
        ``r``'s (a collective: every rank calls it). Tensors in it come back where they were
        (a CPU tensor on the CPU).

        Example:
            >>> # states = learn.distributed.all_gather_object(torch.get_rng_state())
        """
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def all_gather_tensors(self, tensors: Sequence[torch.Tensor]) -> list[list[torch.Tensor]]:
        """Every rank's ``tensors``, on every rank and on the CPU: item ``r`` of the result is
        rank ``r``'s list. Ranks may give any number of tensors, of any shapes and dtypes
        (none at all, too).

        Each rank's shapes and dtypes travel first (a few numbers, through
        ``all_gather_object``); then the data goes as one flat byte buffer per rank through
        ``all_gather`` (padded to the largest rank's), on gloo and on NCCL alike: no pickling
        of the data and one copy in and out of the buffer.

        Example:
            >>> # shares = learn.distributed.all_gather_tensors([preds])  # shares[1][0]: rank 1's
        """
        layouts: list[Any] = [None] * self.world_size
        dist.all_gather_object(layouts, [(t.dtype, tuple(t.shape)) for t in tensors])
        sizes = [sum(_nbytes(dtype, shape) for dtype, shape in layout) for layout in layouts]
        buffer = torch.zeros(max(1, *sizes), dtype=torch.uint8)
        if tensors:
            mine = torch.cat([t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
                              for t in tensors])
            buffer[:len(mine)] = mine
        buffer = buffer.to(_backend_device())
        received = [torch.empty_like(buffer) for _ in range(self.world_size)]
        dist.all_gather(received, buffer)
        shares: list[list[torch.Tensor]] = []
        for layout, data in zip(layouts, received):
            data, start, share = data.cpu(), 0, []
            for dtype, shape in layout:
                size = _nbytes(dtype, shape)  # a copy of its own, aligned for its dtype
                share.append(data[start:start + size].clone().view(dtype).reshape(shape))
                start += size
            shares.append(share)
        return shares

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm's running statistics). DDP sends them
        at the start of each training forward, so after the last step every rank holds the
        statistics of its own last batch; validation and checkpoints then disagree with rank
        0's model.

        Example:
            >>> # learn.distributed.broadcast_buffers(learn.model)
        """
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)

    def barrier(self) -> None:
        """Wait until every rank reaches this point."""
        dist.barrier()

    def wrap(self, model: nn.Module, device: torch.device, sync_bn: bool = False) -> nn.Module:
        """Wrap ``model`` in DistributedDataParallel (optionally converting BatchNorm to
        SyncBatchNorm first)."""
        from torch.nn.parallel import DistributedDataParallel

        if sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def report_failure(self, error: BaseException) -> None:
        """Say which rank failed and why, before the launcher ends the other ranks."""
        print(f"ember: rank {self.rank} of {self.world_size} failed with "
              f"{type(error).__name__}: {error}; ending the run on all ranks", file=sys.stderr,
              flush=True)

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, world_size={self.world_size})"


def shard_loader(loader: DataLoader, rank: int, world_size: int, train: bool,
                 seed: int = 0) -> DataLoader:
    """A copy of ``loader`` that yields this rank's share.

    A loader whose dataset has ``shard_by = "rows"`` (its items are whole batches whose rows
    continue each other from batch to batch: a language model's stream, read with
    ``batch_size=None``) is split by row: every rank reads every batch, in rank 0's order of
    the sampler for the epoch (:class:`SharedOrderSampler`), and keeps rows ``rank``,
    ``rank + world_size``, … of it (:class:`RowShard`), so each rank's rows continue its
    previous batch's and the ranks' rows together are the batch one process reads. Training
    needs at least one row per rank (give ``bs`` a multiple of ``world_size`` for the
    gradients of one process); in evaluation a rank without rows reads no batch.

    Otherwise: training with a random sampler → ``DistributedSampler`` (shuffled with
    ``seed + epoch``, padded so every rank takes the same number of steps). Any other sampler
    is sharded by position, in rank 0's order of it for each epoch
    (:meth:`ShardSampler.set_epoch`); a
    batch sampler of the user's own (length bucketing) is sharded by whole batches. For
    training, every rank gets the same number of items or batches.

    Example:
        >>> # shard_loader(train_dl, rank=0, world_size=2, train=True)
    """
    from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

    settings = loader_settings(loader)
    if isinstance(loader.dataset, RowShard):
        return loader
    if getattr(loader.dataset, "shard_by", None) == ROWS:
        return _row_shard(loader, rank, world_size, train, settings)
    batches = loader.batch_sampler
    if batches is not None and not isinstance(batches, BatchSampler):
        if isinstance(batches, ShardSampler):
            return loader
        return DataLoader(loader.dataset, batch_sampler=ShardSampler(  # type: ignore[arg-type]
            batches, rank, world_size, even=train), **settings)
    sampler: Sampler | ShardSampler
    if train and isinstance(loader.sampler, RandomSampler):
        sampler = DistributedSampler(loader.dataset, num_replicas=world_size, rank=rank,
                                     shuffle=True, seed=seed, drop_last=loader.drop_last)
    elif isinstance(loader.sampler, ShardSampler | DistributedSampler):
        return loader
    else:
        sampler = ShardSampler(loader.sampler, rank, world_size, even=train)
    return DataLoader(
        loader.dataset, batch_size=loader.batch_size, sampler=sampler,  # type: ignore[arg-type]
        drop_last=loader.drop_last, **settings,
    )


def _row_shard(loader: DataLoader, rank: int, world_size: int, train: bool,
               settings: dict[str, Any]) -> DataLoader:
    from torch.utils.data import DataLoader

    if loader.batch_size is not None or loader.batch_sampler is not None:
        raise errors.DataError(
            f"{type(loader.dataset).__name__} has shard_by = 'rows', so its items are whole "
            f"batches: read it with DataLoader(..., batch_size=None)")
    share = RowShard(loader.dataset, rank, world_size)
    if train and len(share) == 0:
        raise errors.DataError(
            f"the training batches have {len(loader.dataset)} rows (bs), too few for "
            f"{world_size} processes that each take their own rows: give bs >= {world_size}")
    return DataLoader(share, batch_size=None,  # type: ignore[arg-type]
                      sampler=SharedOrderSampler(loader.sampler, active=len(share) > 0),
                      **settings)


def unshard_loader(loader: DataLoader) -> DataLoader | None:
    """The whole loader that ``loader`` is one rank's share of (one that
    :func:`shard_loader` made, or one with a ``DistributedSampler``), with the same items,
    batches and settings; ``None`` when ``loader`` is not a share.

    A ``DistributedSampler``'s whole is a ``RandomSampler`` where it shuffles, a
    ``SequentialSampler`` otherwise (and its padding is gone).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> loader = DataLoader(TensorDataset(torch.arange(5.0)), batch_size=2)
        >>> len(unshard_loader(shard_loader(loader, rank=1, world_size=2, train=False)))
        3
        >>> unshard_loader(loader) is None
        True
    """
    from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

    settings = loader_settings(loader)
    if isinstance(loader.dataset, RowShard):
        return DataLoader(loader.dataset.base, batch_size=None,  # type: ignore[arg-type]
                          sampler=loader.sampler.base, **settings)  # type: ignore[attr-defined]
    if isinstance(loader.batch_sampler, ShardSampler):
        return DataLoader(loader.dataset, batch_sampler=loader.batch_sampler.base, **settings)
    sampler: Any = loader.sampler
    if isinstance(sampler, ShardSampler):
        sampler = sampler.base
    elif isinstance(sampler, DistributedSampler):
        whole = RandomSampler if sampler.shuffle else SequentialSampler
        sampler = whole(loader.dataset)  # type: ignore[arg-type]
    else:
        return None
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      drop_last=loader.drop_last, **settings)


def shard_batches(loader: DataLoader, rank: int, world_size: int) -> DataLoader:
    """A copy of ``loader`` that yields every ``world_size``-th of its batches, starting at
    ``rank``: whole batches, exactly as ``loader`` makes them (so a model's predictions for
    them are those of one process), without padding. :func:`interleave` puts the ranks'
    batches back in ``loader``'s order.

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> loader = DataLoader(torch.arange(5), batch_size=2)
        >>> [batch.tolist() for batch in shard_batches(loader, rank=0, world_size=2)]
        [[0, 1], [4]]
    """
    from torch.utils.data import DataLoader

    settings = loader_settings(loader)
    if loader.batch_sampler is None:  # no batching by the loader: each element is a batch
        return DataLoader(loader.dataset, batch_size=None,  # type: ignore[arg-type]
                          sampler=ShardSampler(loader.sampler, rank, world_size), **settings)
    return DataLoader(loader.dataset, batch_sampler=ShardSampler(  # type: ignore[arg-type]
        loader.batch_sampler, rank, world_size), **settings)


def interleave(shares: Sequence[Sequence[_Item]]) -> list[_Item]:
    """Undo :class:`ShardSampler`'s split (and :func:`shard_batches`'): ``shares[r]`` holds
    positions ``r``, ``r + world_size``, …; the result holds every position once, in order.

    Example:
        >>> interleave([[0, 2, 4], [1, 3]])
        [0, 1, 2, 3, 4]
    """
    world_size, total = len(shares), sum(len(share) for share in shares)
    return [shares[position % world_size][position // world_size] for position in range(total)]


def unshard_rows(shares: Sequence[Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """Undo :class:`RowShard`'s split: ``shares[r][t]`` holds rows ``r``, ``r + world_size``,
    … of batch ``t``; the result holds every batch whole, its rows in order (a rank without
    rows gives no batch).

    Example:
        >>> import torch
        >>> [batch.tolist() for batch in unshard_rows([[torch.tensor([0, 2])],
        ...                                            [torch.tensor([1])]])]
        [[0, 1, 2]]
    """
    world_size = len(shares)
    ranks = [rank for rank, share in enumerate(shares) if len(share)]  # a rank without rows
    whole = []
    for parts in zip(*(shares[rank] for rank in ranks)):
        batch = parts[0].new_empty((sum(len(part) for part in parts), *parts[0].shape[1:]))
        for rank, part in zip(ranks, parts):
            batch[rank::world_size] = part
        whole.append(batch)
    return whole


def rank_zero_object(value: Any, group: Any = None) -> Any:
    """Rank 0's ``value`` (anything picklable) on every rank: the one place where rank 0
    decides and every rank follows (a collective: every rank of ``group``, the default
    group when ``None``, calls it). Outside a process group, ``value`` itself. Rank 0 of
    ``group`` sends.

    Example:
        >>> rank_zero_object([3, 1, 2])  # one process: nothing to share
        [3, 1, 2]
    """
    if not (dist.is_available() and dist.is_initialized()):
        return value
    shared = [value]
    source = 0 if group is None else dist.get_global_rank(group, 0)
    dist.broadcast_object_list(shared, src=source, group=group)
    return shared[0]


def write_on_rank_zero(distributed: Distributed | None, write: Callable[[], Path],
                       path: Path) -> Path:
    """Write a file once: ``write()`` (which writes it and returns its path) runs in a single
    process, or on rank 0 of a distributed run while the other ranks wait for it to finish,
    so no rank reads a half-written file, and then return ``path``. When rank 0's write
    fails, every rank raises: rank 0 its own error, the others the same kind of Ember error
    (``RuntimeError`` for any other) naming it, so no rank waits for a file that never comes.

    Example:
        >>> import pathlib, tempfile
        >>> from ember.utils import atomic_write
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> def write():
        ...     return atomic_write(target, lambda tmp: tmp.write_text("hi"))
        >>> write_on_rank_zero(None, write, target).read_text()  # learn.distributed: None
        'hi'
    """
    if distributed is None:
        return write()
    written, failure = path, None
    if distributed.rank == 0:
        try:
            written = write()
        except Exception as error:
            failure = error
    outcome = None
    if failure is not None:
        name = type(failure).__name__
        ember_error = getattr(errors, name, None) is type(failure)
        outcome = (name if ember_error else "RuntimeError", f"{name}: {failure}")
    outcome = rank_zero_object(outcome)  # every rank waits here for rank 0's write
    if failure is not None:
        raise failure
    if outcome is not None:
        kind, message = outcome
        raise getattr(errors, kind, RuntimeError)(f"rank 0 could not write {path}: {message}")
    return written


def optimizer_state(opt: torch.optim.Optimizer, everywhere: bool = True
                    ) -> dict[str, Any] | None:
    """The whole state dict of an optimiser, for a snapshot (:class:`ember.NanGuard`,
    ``learn.trial``) or a checkpoint (``learn.save``).

    A plain optimiser's ``state_dict()``. PyTorch's ``ZeroRedundancyOptimizer`` keeps only
    its rank's shard and answers ``state_dict()`` only after ``consolidate_state_dict()``;
    here the shards are gathered on rank 0 and, with ``everywhere``, sent on to every rank,
    so each can restore its shard from the result (:func:`load_optimizer_state`). For ZeRO
    this is a collective: every rank of its process group must call it. Without
    ``everywhere`` the ranks other than 0 get ``None`` (a checkpoint only rank 0 writes).

    Example:
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> sorted(optimizer_state(opt))
        ['param_groups', 'state']
    """
    from torch.distributed.optim import ZeroRedundancyOptimizer

    if not isinstance(opt, ZeroRedundancyOptimizer):
        return opt.state_dict()
    opt.consolidate_state_dict(to=0)
    state = opt.state_dict() if opt.rank == 0 else None
    if everywhere and opt.world_size > 1:
        state = rank_zero_object(state, group=opt.process_group)
    return state


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a state dict from :func:`optimizer_state` into ``opt``, leaving ``state`` as it
    was (``ZeroRedundancyOptimizer.load_state_dict`` blanks the other ranks' entries of the
    dict it is given, and a snapshot may be loaded more than once).

    Example:
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> load_optimizer_state(opt, {**optimizer_state(opt), "param_groups": [
        ...     {**opt.param_groups[0], "params": [0, 1], "lr": 0.5}]})
        >>> opt.param_groups[0]["lr"]
        0.5
    """
    opt.load_state_dict({**state, "state": dict(state["state"])})


def loader_settings(loader: DataLoader) -> dict[str, Any]:
    """The loader's own settings, for a copy of it with another sampler: collation, workers
    and their seeding (``worker_init_fn``), prefetching, timeouts, pinning, the generator.

    Example:
        >>> from torch.utils.data import DataLoader
        >>> settings = loader_settings(DataLoader(list(range(4)), batch_size=2))
        >>> DataLoader(list(range(4)), batch_size=2, shuffle=False, **settings).num_workers
        0
    """
    settings: dict[str, Any] = {
        "num_workers": loader.num_workers, "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory, "worker_init_fn": loader.worker_init_fn,
        "timeout": loader.timeout, "multiprocessing_context": loader.multiprocessing_context,
        "generator": loader.generator, "pin_memory_device": loader.pin_memory_device}
    if loader.num_workers:
        settings.update(persistent_workers=loader.persistent_workers,
                        prefetch_factor=loader.prefetch_factor)
    return settings


def _rank_zero_order(base: Any) -> list[Any] | None:
    """Rank 0's order of ``base`` on every rank (each rank reads its own, as it would alone);
    ``None`` for a sequential sampler or outside a process group (the base's order)."""
    from torch.utils.data import SequentialSampler

    if isinstance(base, SequentialSampler) or not (dist.is_available() and dist.is_initialized()):
        return None
    return rank_zero_object(list(base))


def _backend_device() -> torch.device:
    """Where the process group's tensors live: this rank's GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _nbytes(dtype: torch.dtype, shape: Sequence[int]) -> int:
    return math.prod(shape) * dtype.itemsize


def _leave_process_group() -> None:
    """Destroy the default process group at exit if it is still there (the user may have
    destroyed it already)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
