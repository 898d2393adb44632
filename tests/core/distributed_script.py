"""Launched by tests/core/test_distributed.py under torchrun: the same script as one process.

Usage: torchrun --nproc_per_node=2 distributed_script.py OUT_PATH [FAIL_RANK]
       (the plain run, with Checkpoint and resume= beside it without FAIL_RANK)
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH edge N_VALID
       torchrun --nproc_per_node=2 distributed_script.py OUT_FOLDER preds
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH onnx
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH lr_find
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH fit_auto
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH text
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH orders
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH accumulate
       torchrun --nproc_per_node=2 distributed_script.py OUT_PATH accumulate_variants
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.distributed import write_on_rank_zero
from ember.export import read_checkpoint


def dataset() -> tuple[TensorDataset, TensorDataset]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(320, 8, generator=generator)
    y = (x[:, 0] - x[:, 1] > 0).long()
    return TensorDataset(x[:256], y[:256]), TensorDataset(x[256:], y[256:])


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def dropout_model() -> nn.Module:
    """:func:`model` with dropout: what it trains on depends on the ranks' random streams."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))


def sgd(params, lr):
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


class FailOnRank(ember.Callback):
    def __init__(self, rank: int) -> None:
        self.rank = rank

    def before_batch(self) -> None:
        if self.learn.distributed.rank == self.rank and self.learn.iter == 2:
            raise RuntimeError("planted failure")


def edge_learner(n_valid: int, **options: Any) -> ember.Learner:
    torch.manual_seed(0)
    x = torch.randn(64 + n_valid, 4, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[:64], y[:64]),
                                               TensorDataset(x[64:], y[64:]), bs=8)
    return ember.learner(ember.Data.from_loaders(train_dl, valid_dl), quiet=True, **options)


def edge(out: str, n_valid: int) -> None:
    """ember.learner's defaults (an MLP with BatchNorm) on a few validation items (fewer than
    the ranks leaves a rank none); every rank validates, gets every item's predictions, reads
    the export back as soon as ``export`` returns, and sees a write that fails on rank 0 fail.
    F1 on a rank that measures no batch still takes part in the reduction (it skipped it, and
    the other rank waited until the timeout), and PreciseBatchNorm leaves every rank the same
    statistics."""
    learn = edge_learner(n_valid, metrics=["accuracy", ember.FBeta(average="macro")])
    learn.fit(1, 1e-2, cbs=[ember.PreciseBatchNorm()])
    rank = learn.distributed.rank
    scores = learn.validate()
    report(f"RANK {rank} VALID_LOSS {scores['valid_loss']:.6f}")
    report(f"RANK {rank} F1 {scores['f1']:.6f} ACCURACY {scores['accuracy']:.6f}")
    norm = next(m for m in learn.model.modules() if isinstance(m, nn.BatchNorm1d))
    report(f"RANK {rank} BN {norm.running_mean.sum().item():.6f} "
           f"{norm.running_var.sum().item():.6f}")
    report(f"RANK {rank} PREDS {len(learn.get_preds()[0])}")
    learn.save(out + ".pt", with_opt=False)
    exported = ember.load(learn.export(out))
    report(f"RANK {rank} PREDICT {exported.predict(learn.data.valid_dl.dataset[-1][0])}")

    def planted() -> Path:
        raise ember.ExportError("planted write failure")

    try:  # a write that fails on rank 0 fails on every rank, none waits for the file
        write_on_rank_zero(learn.distributed, planted, Path(out + ".never"))
    except ember.ExportError as error:
        report(f"RANK {rank} WRITE FAILED {error}")


def _pad_batch(batch: list[tuple[torch.Tensor, torch.Tensor]]
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Token sequences padded to the batch's longest (as text is): inputs with 0, targets
    with -100."""
    return tuple(torch.nn.utils.rnn.pad_sequence(part, batch_first=True, padding_value=pad)
                 for part, pad in zip(zip(*batch), (0, -100)))  # type: ignore[return-value]


def _pad_inputs(batch: list[torch.Tensor]) -> torch.Tensor:
    """Token sequences without targets (a test set without labels) padded with 0."""
    return torch.nn.utils.rnn.pad_sequence(batch, batch_first=True, padding_value=0)


def preds_learner() -> ember.Learner:
    """Next-token prediction on sequences of 1 to 6 tokens, padded per batch: 29 training
    items (batches of 4, shuffled) and 35 validation items (batches of 8: 8, 8, 8, 8, 3), so
    the batches' predictions differ in length and neither split divides among two ranks. The
    test set is the validation items' inputs without their targets (bare padded batches)."""
    generator = torch.Generator().manual_seed(2)
    items = []
    for index in range(64):  # four items of each length in turn
        tokens = torch.randint(0, 5, (index // 4 % 6 + 2,), generator=generator)
        items.append((tokens[:-1], tokens[1:]))
    train_dl, valid_dl, _ = ember.make_loaders(items[:29], items[29:], bs=4,
                                               collate_fn=_pad_batch)
    test_dl = DataLoader([inputs for inputs, _ in items[29:]], batch_size=8,
                         collate_fn=_pad_inputs)
    data = ember.Data.from_loaders(train_dl, valid_dl, test_dl, target_kind="sequence",
                                   n_out=5)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(5, 8), nn.Linear(8, 5))
    return ember.Learner(data, model, opt_func=sgd, wd=0.0, quiet=True, metrics=[])


def preds(out: str) -> None:
    """Train one epoch on both ranks; rank 0 saves the weights, and every rank saves what
    ``get_preds`` gives it for the validation, the training and the (unlabelled) test
    loader."""
    learn = preds_learner()
    learn.fit(1, 0.1)
    folder, rank = Path(out), learn.distributed.rank
    learn.save(folder / "weights.pt", with_opt=False)
    torch.save({"valid": learn.get_preds(), "train": learn.get_preds("train", activation=False),
                "test": learn.get_preds("test")}, folder / f"preds{rank}.pt")


def onnx_export(out: str) -> None:
    """Every rank exports to the same ONNX file and checks it as soon as ``export_onnx``
    returns; the tracer is counted on each rank, to show which ranks wrote."""
    import onnx

    traced = []
    trace = torch.onnx.export

    def counted(*args, **kwargs):
        traced.append(1)
        return trace(*args, **kwargs)

    torch.onnx.export = counted
    learn = edge_learner(5)
    rank = learn.distributed.rank
    written = learn.export_onnx(out)
    onnx.checker.check_model(str(written))
    report(f"RANK {rank} ONNX {written} TRACED {len(traced)}")


def sweep_learner() -> ember.Learner:
    """A small MLP on 448 training items in batches of 8 (28 steps per rank and epoch): each
    rank's own losses are noisy enough for the two ranks to read different curves."""
    x = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] - x[:, 1] > 0).long()
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[:448], y[:448]),
                                               TensorDataset(x[448:], y[448:]), bs=8)
    return ember.Learner(ember.Data.from_loaders(train_dl, valid_dl), model(), quiet=True)


def sweep(out: str) -> None:
    """Every rank sweeps the learning rate and reports its suggestion and curve."""
    learn = sweep_learner()
    suggestion = learn.lr_find(num_it=50)
    report(f"RANK {learn.distributed.rank} SUGGESTS {float(suggestion)!r} STEPS "
           f"{len(suggestion.losses)} CURVE {sum(suggestion.losses)!r}")


def auto(out: str) -> None:
    """``fit_auto`` on a time budget, rank 1 starting a second late (as a rank that loads its
    data more slowly does): every rank reports the rate, the epochs and its weights."""
    learn = sweep_learner()
    rank = learn.distributed.rank
    if rank == 1:
        time.sleep(1.0)
    result = learn.fit_auto(minutes=0.05, verbose=False)
    weights = sum(float(value.double().sum()) for value in learn.model.state_dict().values())
    report(f"RANK {rank} AUTO lr {result['lr']!r} epochs {result.get('epochs_run')!r} "
           f"weights {weights!r}")


def text(out: str) -> None:
    """The text plugin's classifier on 240 training texts of 2 to 30 words, whose training
    loader buckets by length (``SortishSampler``, drawing from torch's global generator):
    every rank reports the training items it read in each of two epochs."""
    import random

    from ember_text import TextData

    draw = random.Random(0)
    words = ["good", "bad", "fine", "awful", "great", "terrible", "nice", "poor"]
    texts = [" ".join(draw.choice(words) for _ in range(draw.randint(2, 30)))
             for _ in range(300)]
    labels = ["pos" if t.count("good") >= t.count("bad") else "neg" for t in texts]
    learn = ember.learner(TextData.from_texts(texts, labels, bs=8), quiet=True)
    dataset, read = learn.data.train_dl.dataset, []

    class Reading(type(dataset)):  # the same dataset, noting each item read
        def __getitem__(self, index):
            read.append(int(index))
            return super().__getitem__(index)

    dataset.__class__ = Reading

    class EachEpoch(ember.Callback):
        def after_train(self) -> None:
            report(f"RANK {self.learn.distributed.rank} EPOCH {self.learn.epoch} READ "
                   f"{sorted(read)}")
            read.clear()

    learn.fit(2, 1e-3, cbs=[EachEpoch()])


def lm(out: str) -> None:
    """A recurrent language model on a stream of distinct words (bs 4, two ranks): every
    rank reports whether each training batch's rows continue its previous batch's rows in the
    stream (the token after the last of batch t is the first of batch t + 1), and compares
    ``validate`` and ``get_preds`` with one process's pass over the whole validation stream."""
    from ember.distributed import unshard_loader
    from ember_text import LanguageModelData
    from ember_text.models import awd_lstm_lm

    texts = [" ".join(f"w{10 * text + word}" for word in range(10)) for text in range(80)]
    data = LanguageModelData.from_texts(texts, bs=4, bptt=6, min_freq=1, valid_pct=0.25)
    torch.manual_seed(0)
    model = awd_lstm_lm(len(data.vocab), emb_size=8, hidden_size=16, n_layers=1)
    learn = ember.learner(data, model=model, quiet=True)
    rank, batches = learn.distributed.rank, []

    class Continuity(ember.Callback):
        def before_batch(self) -> None:
            if self.learn.training:
                batches.append((self.learn.xb[0].cpu(), self.learn.yb.cpu()))

    learn.fit(1, 1e-3, cbs=[Continuity()])
    breaks = sum(int((x[:, 0] != previous_y[:, -1]).sum())
                 for (_, previous_y), (x, _) in itertools.pairwise(batches))
    rows = sum(len(x) for x, _ in batches[1:])
    report(f"RANK {rank} BREAKS {breaks} OF {rows} ROWS {len(batches[0][0])}")

    # one process's pass over the whole validation stream, carrying the state
    whole = unshard_loader(learn.data.valid_dl) or learn.data.valid_dl
    learn.model.eval()
    learn.model.reset()
    total, count, outputs = 0.0, 0, []
    with torch.no_grad():
        for x, y in whole:
            output = learn.model(x)
            outputs.append((output, y))
            total += float(torch.nn.functional.cross_entropy(
                output.reshape(-1, output.shape[-1]), y.reshape(-1))) * len(x)
            count += len(x)
    learn.model.reset()
    loss = learn.validate()["valid_loss"]
    preds, targets = learn.get_preds(activation=False)
    start, same = 0, True
    for output, y in outputs:
        n, length = output.shape[:2]
        same &= bool(torch.allclose(preds[start:start + n, :length], output, atol=1e-5))
        same &= bool(torch.equal(targets[start:start + n, :length], y))
        start += n
    report(f"RANK {rank} VALID {loss:.6f} ONE_PROCESS {total / count:.6f} "
           f"PREDS_SAME {same and start == len(preds)}")


def orders(out: str) -> None:
    """Two one-epoch fits in a row, then a fit resumed from a checkpoint of the first of two
    more: every rank reports the training items of each epoch, in the order it read them."""
    train, valid = dataset()
    train_dl, valid_dl, _ = ember.make_loaders(train, valid, bs=16)
    learn = ember.Learner(ember.Data.from_loaders(train_dl, valid_dl), model(), opt_func=sgd,
                          wd=0.0, quiet=True)
    rank = learn.distributed.rank

    class EachEpoch(ember.Callback):
        def before_train(self) -> None:
            report(f"RANK {rank} EPOCHS_RUN {self.learn.epochs_run} ORDER "
                   f"{list(self.learn.data.train_dl.sampler)}")

    learn.fit(1, 0.05, cbs=[EachEpoch()])
    learn.fit(1, 0.05, cbs=[EachEpoch()])


class CancelMidGroupSteps(ember.Callback):
    """Cancels the optimiser step of every group's first batch (of two) before
    ``GradientAccumulation`` sees the step: in one process that changes nothing, as that
    batch only accumulates anyway."""

    order = ember.Order.FIRST

    def before_step(self) -> None:
        if self.learn.iter % 2 == 0:
            raise ember.CancelStepException


def accumulate(out: str, compile: bool | dict[str, Any] = False,
               cbs: list[ember.Callback] | None = None, tag: str = "") -> None:
    """The plain run's two epochs with ``GradientAccumulation(2)``, DDP's gradient
    reductions counted (a communication hook that counts and then reduces as DDP's own
    does); rank 0 saves the weights. ``compile`` is the Learner's ``compile=``, ``cbs`` more
    callbacks, ``tag`` marks the report line and the saved file's name (``ddp{tag}.pt``)."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    train, valid = dataset()
    train_dl, valid_dl, _ = ember.make_loaders(train, valid, bs=16)
    reductions, hooked = [], []

    def counted(state, bucket):
        reductions.append(bucket.index())
        return allreduce_hook(None, bucket)

    class CountReductions(ember.Callback):
        def before_train(self) -> None:  # the DDP model the fit trains (wrapped anew by it)
            ddp = getattr(self.learn.forward_model, "_orig_mod", self.learn.forward_model)
            assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel), ddp
            if ddp not in hooked:  # (under the compiled wrapper with compile=)
                ddp.register_comm_hook(None, counted)
                hooked.append(ddp)

    learn = ember.Learner(ember.Data.from_loaders(train_dl, valid_dl), model(), opt_func=sgd,
                          wd=0.0, quiet=True, compile=compile,
                          cbs=[ember.GradientAccumulation(2), CountReductions(), *(cbs or [])])
    learn.fit(2, 0.05)
    learn.save(str(Path(out).with_name(f"ddp{tag}.pt")) if tag else out, with_opt=False)
    report(f"RANK {learn.distributed.rank} REDUCTIONS{tag} {len(reductions)} BATCHES "
           f"{2 * len(learn.data.train_dl)}")


def accumulate_variants(out: str) -> None:
    """``accumulate`` under ``compile=`` (aot_eager), then with a callback that cancels the
    group's first step, in one launch (each variant's model() seeds torch afresh, so each
    draws what a launch of its own would)."""
    accumulate(out, {"backend": "aot_eager"}, tag="_compiled")
    accumulate(out, cbs=[CancelMidGroupSteps()], tag="_cancel_step")


class StopAfterFirstEpoch(ember.Callback):
    """Ends the fit before its second epoch, as an interrupted run ends (after the first
    epoch's checkpoint)."""

    def before_epoch(self) -> None:
        if self.learn.epoch == 1:
            raise ember.CancelFitException


@contextmanager
def counting_writes() -> Iterator[list[str]]:
    """The names of the files this rank writes with ``torch.save`` meanwhile (a checkpoint's
    temporary file is named after it)."""
    written, saving = [], torch.save

    def counted(state: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(target, str | Path):  # not the buffers that pickle tensors to send
            written.append(Path(target).name)
        saving(state, target, *args, **kwargs)

    torch.save = counted
    try:
        yield written
    finally:
        torch.save = saving


def checkpoints(first: ember.Learner, build: Callable[..., ember.Learner]) -> None:
    """``Checkpoint`` and ``resume=`` beside the plain run: ``first`` has just fitted two
    epochs with ``Checkpoint()``; ``build()`` makes another learner in the same folder
    (``build(dropout_model)`` one with dropout). Every rank reports the checkpoint's hash
    before and after another run's fit with ``Checkpoint()``, the file that run's callback
    named and the files this rank wrote, then whether a run interrupted after its first epoch
    and resumed from its checkpoint ends with ``first``'s weights; then the same with dropout
    and each rank seeded its own way (:func:`own_streams`)."""
    rank = first.distributed.rank
    file = first.path / "models" / "checkpoint.pt"
    before = hashlib.sha256(file.read_bytes()).hexdigest()
    other, versioned = build(), ember.Checkpoint()
    with counting_writes() as written:
        other.fit(1, 0.05, cbs=[versioned])
    after = hashlib.sha256(file.read_bytes()).hexdigest()
    report(f"RANK {rank} ORIGINAL {before} {after} OTHER {versioned.file} "
           f"WRITES {json.dumps(written)}")

    interrupted = build()
    # every=3: the first epoch is written when the fit ends, on rank 0 with every rank's
    # states (a collective every rank reaches alike)
    interrupted.fit(2, 0.05, cbs=[ember.Checkpoint("interrupted", every=3),
                                  StopAfterFirstEpoch()])
    saved = read_checkpoint(interrupted.path / "models" / "interrupted.pt")["epoch"]
    resumed, keeper = build(), ember.Checkpoint("interrupted")  # as a new process's learner
    resumed.fit(2, 0.05, cbs=[keeper], resume="interrupted")
    same = all(torch.equal(value, resumed.model.state_dict()[key])
               for key, value in first.model.state_dict().items())
    weights = sum(float(value.double().sum()) for value in resumed.model.state_dict().values())
    report(f"RANK {rank} RESUMED AFTER_EPOCH {saved} RAN {resumed.epochs_run} "
           f"{keeper.file.name} SAME {same} WEIGHTS {weights!r}")
    own_streams(first, build)


def own_streams(first: ember.Learner, build: Callable[..., ember.Learner]) -> None:
    """Each rank seeded its own way (``ember.seed(1000 + rank)``, so each draws its own
    dropout masks): every rank reports whether a run interrupted after its first epoch and
    resumed ends with the uninterrupted run's weights and with its random stream where that
    run's was, and the hash of that stream. Then a copy of the checkpoint without the ranks'
    own states (as a one-process run or an older ember writes) is resumed: every rank reports
    its stream's hash after it (each took the one state saved)."""
    rank = first.distributed.rank

    def fit(*cbs: ember.Callback, resume: str | None = None, epochs: int = 2) -> ember.Learner:
        learn = build(dropout_model)
        ember.seed(1000 + rank)
        learn.fit(epochs, 0.05, cbs=list(cbs), resume=resume)
        return learn

    def stream() -> str:
        return hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest()[:16]

    whole = fit()
    whole_stream = stream()
    fit(ember.Checkpoint("dropout"), StopAfterFirstEpoch())
    resumed = fit(ember.Checkpoint("dropout"), resume="dropout")
    same = all(torch.equal(value, resumed.model.state_dict()[key])
               for key, value in whole.model.state_dict().items())
    report(f"RANK {rank} OWN_STREAMS SAME {same} STREAM {stream() == whole_stream} "
           f"{whole_stream}")

    def without_own_states() -> Path:
        state = read_checkpoint(first.path / "models" / "dropout.pt")
        state.pop("rng_ranks", None)
        target = first.path / "models" / "dropout-single.pt"
        torch.save(state, target)
        return target

    write_on_rank_zero(first.distributed, without_own_states,
                       first.path / "models" / "dropout-single.pt")
    fit(resume="dropout-single", epochs=3)
    report(f"RANK {rank} SINGLE_STATE {stream()}")


def report(line: str) -> None:
    """One line to stdout in one write: the ranks share the pipe, and print's separate write
    of the newline let another rank's line land in the middle of this one."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    out = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "edge":
        edge(out, int(sys.argv[3]))
        return
    modes = {"preds": preds, "onnx": onnx_export, "lr_find": sweep, "fit_auto": auto,
             "text": text, "lm": lm, "orders": orders,
             "accumulate": accumulate,
             "accumulate_variants": accumulate_variants}
    if len(sys.argv) > 2 and sys.argv[2] in modes:
        modes[sys.argv[2]](out)
        return
    cbs = [FailOnRank(int(sys.argv[2]))] if len(sys.argv) > 2 else []

    def build(network: Callable[[], nn.Module] = model) -> ember.Learner:
        # its own loaders (a learner shards them); checkpoints go to <OUT_PATH's folder>/models
        train, valid = dataset()
        train_dl, valid_dl, _ = ember.make_loaders(train, valid, bs=16)
        return ember.Learner(ember.Data.from_loaders(train_dl, valid_dl), network(),
                             opt_func=sgd, wd=0.0, quiet=True, cbs=cbs, path=Path(out).parent)

    learn = build()
    with counting_writes() as written:  # rank 0 writes the checkpoint, the others wait
        learn.fit(2, 0.05, cbs=[ember.Checkpoint()])
    report(f"RANK {learn.distributed.rank} RUN {learn._run_id} WRITES {json.dumps(written)}")
    metrics = learn.validate()
    learn.save(out, with_opt=False)
    if learn.distributed.rank == 0:
        print(f"ACCURACY {metrics['accuracy']:.6f} N_VALID_BATCHES {len(learn.data.valid_dl)}")
    if not cbs:
        checkpoints(learn, build)


if __name__ == "__main__":
    main()
