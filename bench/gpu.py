"""GPU throughput: Ember against a hand-written PyTorch AMP loop, same ResNet, data and batch.

Fashion-MNIST upscaled to 64 px (bilinear, once, in memory), ResNet-18 (torchvision, 1 input
channel, 10 classes), batch 256, AdamW, bf16 autocast, channels-last, pinned memory and
non-blocking copies, for both contenders. Prints images/second, the ratio Ember / hand loop
(target ≥ 0.98), peak GPU memory, and the same with ``torch.compile``; also Ember with fp16
(loss scaling) beside the bf16 hand loop.

A second table measures the framework's own cost where a GPU exposes it most: a small MLP on
data that already lives on the GPU, batch 128, so each step is a few short kernels and any
per-batch Python work or host-device synchronisation shows. It has a row with the NaN guard
reading the loss on every batch (one synchronisation per batch), the behaviour before the
guard learnt to read a device-side flag every few batches. Under 6 minutes on one GPU.
``--smoke`` runs a few batches on the CPU (the test suite does).

    python bench/gpu.py                 # on a GPU machine
    python bench/gpu.py --smoke         # anywhere
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

import ember

from _common import data_dir, interleaved_samples, paired_ratio, parser, read_idx, table


def loaders(x: torch.Tensor, y: torch.Tensor, bs: int, pin: bool) -> tuple[DataLoader, DataLoader]:
    """Loaders that index the in-memory tensors with a whole batch of indices at once (one
    gather per batch, no per-item collate), identical for both contenders."""
    n_valid = bs
    train = TensorDataset(x[n_valid:], y[n_valid:])
    valid = TensorDataset(x[:n_valid], y[:n_valid])
    train_dl = DataLoader(train, batch_size=None, pin_memory=pin,
                          sampler=BatchSampler(RandomSampler(train), bs, drop_last=True))
    valid_dl = DataLoader(valid, batch_size=None, pin_memory=pin,
                          sampler=BatchSampler(SequentialSampler(valid), bs, drop_last=False))
    return train_dl, valid_dl


def images(args) -> tuple[torch.Tensor, torch.Tensor]:
    folder = data_dir(args.data)
    if args.smoke or folder is None:
        x = torch.rand(48, 1, 28, 28)
        y = torch.randint(0, 10, (48,))
    else:
        raw = read_idx(folder / "fashion-mnist" / "train-images-idx3-ubyte.gz")
        x = torch.from_numpy(raw.astype(np.float32) / 255.0).unsqueeze(1)
        y = torch.from_numpy(read_idx(folder / "fashion-mnist" /
                                      "train-labels-idx1-ubyte.gz").astype(np.int64))
    size = 16 if args.smoke else 64
    x = F.interpolate((x - 0.286) / 0.353, size=(size, size), mode="bilinear",
                      align_corners=False)
    return x.contiguous(), y


def resnet() -> nn.Module:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(num_classes=10)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


def optimiser(params, lr: float = 1e-3) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.0)


def hand_loop(model: nn.Module, train_dl, valid_dl, device, epochs: int, compiled: bool) -> None:
    model = model.to(device, memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    opt = optimiser(model.parameters())
    for _ in range(epochs):
        model.train()
        for xb, yb in train_dl:
            xb = xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            yb = yb.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(forward(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
            for xb, yb in valid_dl:
                xb = xb.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                model(xb).argmax(1).eq(yb.to(device)).sum().item()


def ember_fit(model: nn.Module, train_dl, valid_dl, device, epochs: int, compiled: bool) -> None:
    data = ember.Data.from_loaders(train_dl, valid_dl, target_kind="single_label", n_out=10)
    learn = ember.Learner(data, model, opt_func=optimiser, wd=0.0, metrics=[ember.Accuracy()],
                          device=device, precision="bf16", channels_last=True, compile=compiled,
                          quiet=True)
    learn.fit(epochs, 1e-3)


def ember_fp16(model: nn.Module, train_dl, valid_dl, device, epochs: int, compiled: bool
               ) -> None:
    data = ember.Data.from_loaders(train_dl, valid_dl, target_kind="single_label", n_out=10)
    learn = ember.Learner(data, model, opt_func=optimiser, wd=0.0, metrics=[ember.Accuracy()],
                          device=device, precision="fp16", channels_last=True, compile=compiled,
                          quiet=True)
    learn.fit(epochs, 1e-3)
    assert not learn.diverged and learn.recorder.values[-1]["accuracy"] > 0.5


class ResidentBatches(Dataset):
    """Whole batches of tensors that live on the device, indexed by a permutation drawn on the
    device at the start of each pass: no host-device copy or synchronisation per batch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, bs: int, shuffle: bool) -> None:
        self.x, self.y, self.bs, self.shuffle = x, y, bs, shuffle
        self.order = torch.arange(len(x), device=x.device)

    def __len__(self) -> int:
        return len(self.x) // self.bs

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index == 0 and self.shuffle:
            self.order = torch.randperm(len(self.x), device=self.x.device)
        rows = self.order[index * self.bs: (index + 1) * self.bs]
        return self.x[rows], self.y[rows]


def small_mlp(n_in: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 256), nn.ReLU(), nn.Linear(256, 10))


def small_hand(train_dl, valid_dl, device, epochs: int) -> None:
    model = small_mlp(train_dl.dataset.x[0].numel()).to(device)
    opt = optimiser(model.parameters())
    for _ in range(epochs):
        model.train()
        total = torch.zeros((), device=device)
        for xb, yb in train_dl:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.detach()
        model.eval()
        with torch.no_grad():
            correct = sum(model(xb).argmax(1).eq(yb).sum() for xb, yb in valid_dl)
        float(total), float(correct)


def small_ember(train_dl, valid_dl, device, epochs: int, every_batch: bool = False) -> None:
    data = ember.Data.from_loaders(train_dl, valid_dl, target_kind="single_label", n_out=10)
    cbs = [ember.NanGuard(interval=1)] if every_batch else None
    model = small_mlp(train_dl.dataset.x[0].numel())
    learn = ember.Learner(data, model, opt_func=optimiser, wd=0.0,
                          metrics=[ember.Accuracy()], device=device, quiet=True,
                          nan_guard=not every_batch, cbs=cbs)
    learn.fit(epochs, 1e-3)


def small_model_rows(x: torch.Tensor, y: torch.Tensor, device, smoke: bool
                     ) -> tuple[list[list[str]], float]:
    """Seconds per epoch of the small-MLP contenders, interleaved, median over repeats."""
    x, y = x.to(device), y.to(device)
    bs = 16 if smoke else 128
    train_dl = DataLoader(ResidentBatches(x[bs:], y[bs:], bs, shuffle=True), batch_size=None)
    valid_dl = DataLoader(ResidentBatches(x[:bs], y[:bs], bs, shuffle=False), batch_size=None)
    epochs, repeats = (1, 1) if smoke else (2, 5)
    contenders = {"hand-written loop (no per-batch sync)": small_hand, "ember": small_ember,
                  "ember, NaN guard reads every batch": partial(small_ember, every_batch=True)}

    def timed(fit) -> Callable[[], None]:
        def run() -> None:
            fit(train_dl, valid_dl, device, epochs)
            if device.type == "cuda":
                torch.cuda.synchronize()
        return run

    samples = interleaved_samples({k: timed(f) for k, f in contenders.items()}, repeats)
    base = samples["hand-written loop (no per-batch sync)"]
    rows = [[name, f"{len(train_dl)} x {bs}", f"{statistics.median(v) / epochs * 1e3:.1f}",
             f"{paired_ratio(v, base):.3f}"] for name, v in samples.items()]
    return rows, paired_ratio(samples["ember"], base)


def measure(fits: dict[str, Callable[..., None]], train_dl, valid_dl, device, epochs: int,
            compiled: bool, repeats: int) -> dict[str, tuple[float, float]]:
    """Images/second (median over interleaved repeats, after one warm-up run each, which also
    compiles) and peak GPU memory of each contender, fresh model each run."""
    peaks: dict[str, float] = {}

    def run(name: str) -> Callable[[], None]:
        def go() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            fits[name](resnet(), train_dl, valid_dl, device, epochs, compiled)
            if device.type == "cuda":
                torch.cuda.synchronize()
                peaks[name] = torch.cuda.max_memory_allocated() / 2**20
        return go

    samples = interleaved_samples({name: run(name) for name in fits}, repeats)
    n_images = epochs * len(train_dl) * train_dl.sampler.batch_size
    return {name: (n_images / statistics.median(seconds), peaks.get(name, float("nan")))
            for name, seconds in samples.items()}


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    device = torch.device("cpu") if args.smoke or not torch.cuda.is_available() else (
        torch.device("cuda"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    x, y = images(args)
    results = []
    small_rows, small_ratio = small_model_rows(x, y, device, args.smoke)
    results.append(("gpu_small_mlp_ratio", small_ratio, 1.0))
    print("\nsmall MLP on GPU-resident data (framework cost per batch), interleaved repeats, "
          "medians\n")
    print(table(["trainer", "batches", "ms/epoch", "ratio to hand loop"], small_rows), flush=True)

    bs = 16 if args.smoke else 256
    train_dl, valid_dl = loaders(x, y, bs, pin=device.type == "cuda")
    epochs, repeats = (1, 1) if args.smoke else (2, 2)
    print(f"\nResNet-18, {len(train_dl)} batches of {bs}, {epochs} epochs per run, median of "
          f"{repeats} interleaved runs after a warm-up run each\n")
    rows: list[list[str]] = []
    for compiled in [False] if args.smoke else [False, True]:
        fits: dict[str, Callable[..., None]] = {"hand-written AMP loop": hand_loop,
                                                "ember": ember_fit}
        if not compiled and device.type == "cuda":
            fits["ember, fp16 + loss scaling"] = ember_fp16
        try:
            measured = measure(fits, train_dl, valid_dl, device, epochs, compiled, repeats)
        except Exception as error:  # torch.compile can fail on a given stack: report, go on
            rows.append([f"failed: {type(error).__name__}: {str(error)[:80]}",
                         "yes" if compiled else "no", "", "", ""])
            continue
        base = measured["hand-written AMP loop"][0]
        for name, (speed, peak) in measured.items():
            rows.append([name, "yes" if compiled else "no", f"{speed:,.0f}", f"{speed / base:.3f}",
                         f"{peak:,.0f}"])
        suffix = "_compiled" if compiled else ""
        results.append((f"gpu_images_per_s{suffix}", measured["ember"][0], base))
        results.append((f"gpu_ratio{suffix}", measured["ember"][0] / base, 1.0))
        print(table(["trainer", "torch.compile", "images/s", "ratio", "peak MiB"], rows),
              flush=True)
        rows = []
    if rows:
        print(table(["trainer", "torch.compile", "images/s", "ratio", "peak MiB"], rows))
    for name, value, baseline in results:
        unit = "ratio" if "ratio" in name else "images/s"
        print(f"RESULT {name} {value:.4f} {unit} baseline={baseline:.4f}")


if __name__ == "__main__":
    main()
