"""Framework overhead: the same model, data, batches and optimiser trained by a hand-written
PyTorch loop, by ``ember.Learner.fit``, and (where installed) by fastai and Lightning.

Each epoch is a full pass over the training batches plus a validation pass that computes the
loss and accuracy, for every contender; a run is ``--epochs`` epochs from a fresh model, so each
trainer's set-up (building its learner, checks, callbacks) counts once per run, as in real use.
Runs are interleaved and repeated; the table shows the
median seconds per epoch and the ratio to the hand-written loop, taken per repeat (each
contender against the hand loop of the same round) and then the median over repeats, and the
ratio of each contender's fastest run to the hand loop's fastest run. A second table runs the
hand loop and Ember in lock-step: two threads that take turns batch by batch (who goes first
alternates between repeats), each timed by its own thread's CPU clock, so a slow spell of a
shared machine (seconds long) falls on both alike and the ratio holds to a few per cent where
whole-run ratios swing by tens (``--turn N``: N batches per turn). ``--calibrate`` adds as
many lock-step pairs of the hand loop against itself (A/A): their ratio should be 1, and its
distance from 1 and its spread show the instrument's own bias and noise on this machine, in the
same run. ``--lean`` adds Ember against a hand loop that calls the optimiser as Ember does
(without torch's profiler wrappers around ``step`` and ``zero_grad``), which shows Ember's own
overhead apart from what those calls save. ``--instructions`` adds a
third table: each trainer's machine instructions for one run, counted by valgrind (callgrind),
which a busy machine cannot change.
Also measures how long ``import ember`` takes beyond ``import torch``.

On a shared machine, wall-clock time mostly measures the neighbours: other processes take the
cores for seconds at a time and the ratios swing by ±20 %. By default the bench therefore runs
torch on one thread and measures the process's CPU time (``--clock cpu``), which counts the work
done by this process only; ``--clock wall`` gives wall-clock seconds for an idle machine.

    python bench/overhead.py            # Fashion-MNIST from ../shared/data, MLP and CNN
    python bench/overhead.py --smoke    # seconds, random data (used by the test suite)
    python bench/overhead.py --processes 6 --repeats 12   # idle many-core machine
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset

import ember

from _common import (
    data_dir,
    interleaved_samples,
    mean_spread,
    paired_ratio,
    parser,
    read_idx,
    table,
)


def load_images(args) -> tuple[torch.Tensor, torch.Tensor]:
    folder = data_dir(args.data)
    if args.smoke or folder is None:
        generator = torch.Generator().manual_seed(0)
        n = 512 if args.smoke else 20000
        return torch.rand(n, 1, 28, 28, generator=generator), torch.randint(0, 10, (n,))
    images = read_idx(folder / "fashion-mnist" / "train-images-idx3-ubyte.gz")
    labels = read_idx(folder / "fashion-mnist" / "train-labels-idx1-ubyte.gz")
    images, labels = images[: args.items], labels[: args.items]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return (x - 0.286) / 0.353, torch.from_numpy(labels.astype(np.int64))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 10))


def optimiser(params, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.0)


def hand_loop(model: nn.Module, train_dl: DataLoader, valid_dl: DataLoader, epochs: int,
              after_batch: Callable[[], None] | None = None, lean: bool = False) -> None:
    """The loop any PyTorch user writes. ``lean`` calls the optimiser's step and clears the
    gradients as Ember does when no profiler runs: without torch's profiler wrappers around
    ``step`` and ``zero_grad``, each of which opens a ``record_function`` on every call."""
    opt = optimiser(model.parameters())
    unwrapped_step, params = type(opt).step.__wrapped__, list(model.parameters())
    for _ in range(epochs):
        model.train()
        total = 0.0
        for xb, yb in train_dl:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            if lean:
                unwrapped_step(opt)
                for param in params:
                    param.grad = None
            else:
                opt.step()
                opt.zero_grad(set_to_none=True)
            total += loss.item()
            if after_batch is not None:
                after_batch()
        model.eval()
        correct = count = 0
        valid_loss = 0.0
        with torch.no_grad():
            for xb, yb in valid_dl:
                out = model(xb)
                valid_loss += F.cross_entropy(out, yb, reduction="sum").item()
                correct += (out.argmax(1) == yb).sum().item()
                count += len(yb)
                if after_batch is not None:
                    after_batch()


def ember_fit(model: nn.Module, train_dl: DataLoader, valid_dl: DataLoader, epochs: int,
              checks: bool = True, after_batch: Callable[[], None] | None = None) -> None:
    data = ember.Data.from_loaders(train_dl, valid_dl, target_kind="single_label", n_out=10)
    learn = ember.Learner(data, model, opt_func=lambda p, lr: optimiser(p, lr), wd=0.0,
                          metrics=[ember.Accuracy()], quiet=True, device="cpu", checks=checks)
    if after_batch is not None:
        learn.add_cbs(_AfterBatch(after_batch))
    learn.fit(epochs, 1e-3)


def fastai_fit(model: nn.Module, train_dl: DataLoader, valid_dl: DataLoader, epochs: int) -> None:
    from fastai.data.core import DataLoaders
    from fastai.learner import Learner as FastaiLearner
    from fastai.metrics import accuracy
    from fastai.optimizer import OptimWrapper

    dls = DataLoaders(train_dl, valid_dl, device="cpu")
    learn = FastaiLearner(dls, model, loss_func=nn.CrossEntropyLoss(), metrics=[accuracy],
                          opt_func=lambda params, lr: OptimWrapper(params, optimiser, lr=lr))
    with learn.no_logging():  # a plain fastai Learner has no progress bar callback
        learn.fit(epochs, 1e-3)


def lightning_fit(model: nn.Module, train_dl: DataLoader, valid_dl: DataLoader,
                  epochs: int) -> None:
    import lightning

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch, _):
            xb, yb = batch
            loss = F.cross_entropy(self.model(xb), yb)
            self.log("train_loss", loss)
            return loss

        def validation_step(self, batch, _):
            xb, yb = batch
            out = self.model(xb)
            self.log("valid_loss", F.cross_entropy(out, yb))
            self.log("accuracy", (out.argmax(1) == yb).float().mean())

        def configure_optimizers(self):
            return optimiser(self.parameters())

    trainer = lightning.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(Module(), train_dl, valid_dl)


class _AfterBatch(ember.Callback):
    order = ember.Order.LAST

    def __init__(self, function: Callable[[], None]) -> None:
        self.function = function

    def after_batch(self) -> None:
        self.function()


class Baton:
    """Two trainers in two threads take turns, ``turn`` batches each: while one computes, the
    other waits on a semaphore (no CPU), so each thread's CPU clock counts its own work only,
    and a slow spell of a shared machine falls on both alike."""

    def __init__(self, turn: int = 1) -> None:
        self.turns = (threading.Semaphore(1), threading.Semaphore(0))
        self.finished = [False, False]
        self.turn, self.batches = turn, [0, 0]

    def start(self, me: int) -> None:
        self.turns[me].acquire()

    def hand_over(self, me: int) -> None:
        self.batches[me] += 1
        if self.batches[me] % self.turn == 0 and not self.finished[1 - me]:
            self.turns[1 - me].release()
            self.turns[me].acquire()

    def finish(self, me: int) -> None:
        self.finished[me] = True
        self.turns[1 - me].release()


def lockstep(fits: tuple[Callable[..., None], Callable[..., None]], build, initial,
             train_dl: DataLoader, valid_dl: DataLoader, epochs: int, turn: int = 1
             ) -> tuple[float, float]:
    """CPU seconds of two trainers run ``turn`` batches at a time in alternation (see
    :class:`Baton`)."""
    baton, seconds = Baton(turn), [math.nan, math.nan]

    def worker(me: int) -> None:
        baton.start(me)
        start = time.thread_time()
        try:
            model = build()
            model.load_state_dict(initial)
            fits[me](model, train_dl, valid_dl, epochs, after_batch=partial(baton.hand_over, me))
        finally:
            seconds[me] = time.thread_time() - start
            baton.finish(me)

    threads = [threading.Thread(target=worker, args=(me,)) for me in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds[0], seconds[1]


def hand_loop_again(*args, **kwargs) -> None:
    """The hand loop under a second name: the other side of the lock-step's A/A calibration."""
    hand_loop(*args, **kwargs)


def lean_hand_loop(*args, **kwargs) -> None:
    """The hand loop with the optimiser called as Ember calls it (``--lean``): against it, the
    lock-step shows Ember's own overhead, apart from what the optimiser calls save."""
    hand_loop(*args, lean=True, **kwargs)


def run_training(fit, build, initial, train_dl: DataLoader, valid_dl: DataLoader,
                 epochs: int) -> None:
    model = build()
    model.load_state_dict(initial)
    fit(model, train_dl, valid_dl, epochs)


def available(module: str) -> bool:
    try:
        __import__(module)
    except Exception:
        return False
    return True


def import_time(repeats: int, clock: str = "perf_counter") -> float:
    code = (f"import time; import torch; start = time.{clock}(); "
            f"import ember; print(time.{clock}() - start)")
    values = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   check=True).stdout) for _ in range(repeats)]
    return statistics.median(values)


def contenders_for(smoke: bool, others: bool = True) -> dict[str, Callable[..., None]]:
    contenders: dict[str, Callable[..., None]] = {
        "hand-written loop": hand_loop, "ember": ember_fit,
        "ember, checks off": partial(ember_fit, checks=False)}
    if available("fastai.learner") and others and not smoke:
        contenders["fastai 2.8"] = fastai_fit
    if available("lightning") and others and not smoke:
        contenders["lightning 2.6"] = lightning_fit
    return contenders


def measure(setup: str, args: argparse.Namespace, repeats: int, core: int | None = None
            ) -> tuple[dict[str, list[float]], int]:
    """Seconds per epoch of every contender, one value per repeat (paired by position), and
    the number of training batches.
    ``core`` pins this process to one CPU core (the ``--processes`` workers)."""
    calibrate = args.calibrate and not args.smoke
    if core is not None:
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    epochs = 1 if args.smoke else args.epochs
    train_dl, valid_dl = loaders(setup, args)
    build = SETUPS[setup][0]
    torch.manual_seed(0)
    initial = build().state_dict()
    runs = {name: partial(run_training, fit, build, initial, train_dl, valid_dl, epochs)
            for name, fit in contenders_for(args.smoke, not args.no_others).items()}
    samples = interleaved_samples(runs, repeats, clock)
    # the A/A pairs (the hand loop against itself) calibrate the instrument: their ratio shows
    # its bias and spread on this machine, in the same run. Ember and A/A pairs alternate, so a
    # slow stretch of the run (the machine drifts over minutes) falls on both alike
    # --lean adds Ember against the lean hand loop (the optimiser called as Ember calls it)
    contenders = ([("ember", hand_loop, ember_fit)]
                  + ([("A/A", hand_loop, hand_loop_again)] if calibrate else [])
                  + ([("lean", lean_hand_loop, ember_fit)] if args.lean and not args.smoke
                     else []))
    pairs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in contenders}
    for repeat in range(repeats):
        for name, reference, other in contenders if repeat % 2 else contenders[::-1]:
            # who goes first alternates, so a first-mover bias cancels
            order = (other, reference) if repeat % 2 else (reference, other)
            seconds = dict(zip(order, lockstep(order, build, initial, train_dl, valid_dl,
                                               epochs, args.turn)))
            pairs[name].append((seconds[reference], seconds[other]))
    for name, values in pairs.items():
        samples[f"lock-step {name}: hand-written loop"] = [hand for hand, _ in values]
        samples[f"lock-step {name}: other"] = [other_seconds for _, other_seconds in values]
    return ({name: [seconds / epochs for seconds in values] for name, values in samples.items()},
            len(train_dl))


SETUPS = {"mlp": (mlp, 32), "cnn": (cnn, 128)}


def loaders(setup: str, args: argparse.Namespace) -> tuple[DataLoader, DataLoader]:
    """The bench's training and validation loaders for ``setup`` (one sixth held out)."""
    x, y = load_images(args)
    n_valid = len(x) // 6
    bs = SETUPS[setup][1]
    train_dl = DataLoader(TensorDataset(x[n_valid:], y[n_valid:]), batch_size=bs, shuffle=True,
                          drop_last=True)
    return train_dl, DataLoader(TensorDataset(x[:n_valid], y[:n_valid]), batch_size=bs * 2)


def count_runs(setup: str, args: argparse.Namespace) -> None:
    """Child side of ``--instructions``: a short warm-up run of every contender, then one
    counted run each inside ``operator.call``, the one function callgrind collects in and dumps
    after."""
    torch.set_num_threads(1)
    train_dl, valid_dl = loaders(setup, args)
    build = SETUPS[setup][0]
    torch.manual_seed(0)
    initial = build().state_dict()
    fits = contenders_for(smoke=False, others=False)
    bs = SETUPS[setup][1]
    warm_train, warm_valid = (
        DataLoader(Subset(loader.dataset, range(min(3 * bs, len(loader.dataset)))), batch_size=bs)
        for loader in (train_dl, valid_dl))
    for fit in fits.values():  # a few batches each: torch's and Python's lazy set-up done
        run_training(fit, build, initial, warm_train, warm_valid, 1)
    for fit in fits.values():
        torch.manual_seed(1)
        operator.call(run_training, fit, build, initial, train_dl, valid_dl, args.epochs)


def instructions(setup: str, args: argparse.Namespace) -> dict[str, int]:
    """Machine instructions of one run per contender (hand loop, Ember, Ember with checks off),
    counted by valgrind's callgrind in one child process (importing torch under valgrind takes
    minutes, so it is paid once). The count is the same on a busy machine as on an idle one, so
    it measures a framework's own work without the neighbours' noise; it does not see cache
    misses or memory stalls, so seconds still decide the target."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                   "--collect-atstart=no", "--toggle-collect=_operator_call",
                   "--dump-after=_operator_call", sys.executable, __file__,
                   "--count", setup, "--items", str(args.items), "--epochs", str(args.epochs)]
        if args.smoke:
            command.append("--smoke")
        if args.data is not None:
            command += ["--data", str(args.data)]
        done = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": "0"})
        dumps = sorted(Path(folder).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = [int(re.search(r"^(?:totals|summary): (\d+)", dump.read_text(),
                                re.MULTILINE).group(1)) for dump in dumps]
    names = list(contenders_for(smoke=False, others=False))
    if done.returncode != 0 or len(totals) != len(names):
        raise RuntimeError(f"the callgrind run failed ({len(totals)} counts for {len(names)} "
                           f"trainers):\n{done.stderr[-2000:]}")
    return dict(zip(names, totals))


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--items", type=int, default=20000, help="Fashion-MNIST images used")
    options.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                         help="process CPU seconds (default) or wall-clock seconds")
    options.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    options.add_argument("--epochs", type=int, default=3,
                         help="epochs per run (each trainer's set-up is paid once per run)")
    options.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp, cnn")
    options.add_argument("--no-others", action="store_true",
                         help="leave out fastai and Lightning even where installed")
    options.add_argument("--processes", type=int, default=1,
                         help="spread the repeats over this many processes, each pinned to its "
                              "own core (only on an otherwise idle machine with that many cores)")
    options.add_argument("--instructions", action="store_true",
                         help="also count each contender's machine instructions under valgrind "
                              "(deterministic on a busy machine; needs valgrind, minutes)")
    options.add_argument("--calibrate", action="store_true",
                         help="also run the lock-step with the hand loop against itself (A/A), "
                              "as many pairs again, to show the instrument's bias and spread")
    options.add_argument("--lean", action="store_true",
                         help="also run Ember in lock-step against a hand loop that calls the "
                              "optimiser as Ember does (without torch's profiler wrappers), to "
                              "show Ember's own overhead apart from what that saves")
    options.add_argument("--turn", type=int, default=1,
                         help="batches each trainer runs per turn in the lock-step")
    options.add_argument("--count", metavar="MODEL", help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.count:
        count_runs(args.count, args)
        return
    if args.instructions and shutil.which("valgrind") is None:
        options.error("--instructions needs valgrind (apt install valgrind)")
    epochs = 1 if args.smoke else args.epochs
    repeats = 1 if args.smoke else args.repeats
    setups = [name.strip() for name in args.models.split(",")]
    unknown = sorted(set(setups) - set(SETUPS))
    if unknown:
        options.error(f"unknown --models {unknown}; choose from {sorted(SETUPS)}")
    rows, lock_rows, count_rows, results = [], [], [], []
    for setup in setups:
        if args.processes > 1:
            cores = sorted(os.sched_getaffinity(0))[: args.processes]
            shares = [repeats // len(cores) + (i < repeats % len(cores))
                      for i in range(len(cores))]
            with ProcessPoolExecutor(len(cores), mp_context=get_context("spawn")) as pool:
                parts = list(pool.map(measure, [setup] * len(cores), [args] * len(cores),
                                      shares, cores))
            samples = {name: [v for part, _ in parts for v in part[name]] for name in parts[0][0]}
            n_batches = parts[0][1]
        else:
            samples, n_batches = measure(setup, args, repeats)
        for name, label in (("ember", "ember"), ("A/A", "hand loop again (A/A)"),
                            ("lean", "ember against the lean hand loop")):
            if f"lock-step {name}: other" not in samples:
                continue
            lock_base = samples.pop(f"lock-step {name}: hand-written loop")
            lock_other = samples.pop(f"lock-step {name}: other")
            ratios = [other / hand for other, hand in zip(lock_other, lock_base)]
            lock_rows.append([setup, label, f"{statistics.median(lock_base):.3f}",
                              f"{statistics.median(lock_other):.3f}",
                              f"{paired_ratio(lock_other, lock_base):.3f}",
                              mean_spread(ratios, error=True),
                              f"{min(ratios):.3f} to {max(ratios):.3f}"])
            key = {"ember": "lockstep", "A/A": "lockstep_aa", "lean": "lockstep_lean"}[name]
            results.append((f"overhead_{setup}_{key}_ratio", paired_ratio(lock_other, lock_base)))
        base = samples["hand-written loop"]
        if args.instructions:
            counts = instructions(setup, args)
            hand = counts["hand-written loop"]
            count_rows += [[setup, name, f"{count / 1e6:,.1f}", f"{count / hand:.4f}"]
                           for name, count in counts.items()]
            results.append((f"overhead_{setup}_instructions_ratio", counts["ember"] / hand))
        for name, values in samples.items():
            rows.append([setup, f"{n_batches} x {SETUPS[setup][1]}", name,
                         f"{statistics.median(values):.3f}", f"{paired_ratio(values, base):.3f}",
                         f"{min(values) / min(base):.3f}",
                         f"{min(v / b for v, b in zip(values, base)):.3f} to "
                         f"{max(v / b for v, b in zip(values, base)):.3f}"])
        results.append((f"overhead_{setup}_ratio", paired_ratio(samples["ember"], base)))
        results.append((f"overhead_{setup}_fastest_ratio", min(samples["ember"]) / min(base)))
        results.append((f"checks_cost_{setup}_ratio",
                        paired_ratio(samples["ember"], samples["ember, checks off"])))
    workers = f" in {args.processes} pinned processes" if args.processes > 1 else ""
    print(f"{args.clock} seconds, {args.threads} torch thread(s), {repeats} interleaved "
          f"repeat(s){workers} of {epochs} epoch(s) each\n")
    print(table(["model", "batches", "trainer", "median s/epoch", "ratio to hand loop",
                 "fastest runs' ratio", "ratio range"], rows))
    print("\n(ratio to hand loop: median over repeats of each repeat's ratio; fastest runs' "
          "ratio: each trainer's least-disturbed run against the hand loop's, the robust figure "
          "on a shared machine, where neighbours only ever add time)")
    print("\nlock-step: the hand loop and Ember in two threads taking turns batch by batch "
          "(who goes first alternates), each timed by its own thread's CPU clock (a slow spell "
          "falls on both alike)\n")
    print(table(["model", "against the hand loop", "hand loop s/epoch", "other s/epoch",
                 "ratio (median of pairs)", "mean ± sd (standard error)", "ratio range"],
                lock_rows))
    if args.lean:
        print("\n(the lean row's first columns are the lean hand loop's: it calls the "
              "optimiser's step and clears the gradients without torch's profiler wrappers, as "
              "Ember does when no profiler runs)")
    if args.calibrate:
        print("\n(the A/A row runs the hand loop against itself: a perfect instrument gives 1.000;"
              " its distance from 1 and its spread are the instrument's own on this machine)")
    if count_rows:
        print(f"\ninstructions of one run of {epochs} epoch(s) (callgrind; the same count on a "
              "busy machine as on an idle one)\n")
        print(table(["model", "trainer", "million instructions", "ratio to hand loop"],
                    count_rows))
    seconds = import_time(1 if args.smoke else 5,
                          "process_time" if args.clock == "cpu" else "perf_counter")
    print(f"\nimport ember beyond torch: {seconds:.3f} {args.clock} s (target ≤ 0.15 s)")
    print("(checks_cost: one-epoch fit with the cheap mistake guards on / off; target <= 1.02)")
    for name, value in results:
        print(f"RESULT {name} {value:.4f} ratio baseline=1.0")
    print(f"RESULT import_ember_beyond_torch {seconds:.4f} s baseline=0.15")


if __name__ == "__main__":
    main()
