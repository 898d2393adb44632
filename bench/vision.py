"""Vision: Ember's defaults against a hand-written PyTorch loop on Fashion-MNIST.

Ember's side is the three-line program with nothing chosen by hand: ``ImageData.from_arrays``
(batch 64, the plugin's augmentation for small images) → ``ember.learner(data)`` (the plugin's
compact CNN, AdamW, its learning rate 3e-3, weight decay 0.01) → ``fit_one_cycle(epochs)``.
The baseline is a plain PyTorch loop with the same architecture, initial weights, batch size,
optimiser, one-cycle schedule and number of epochs, without augmentation; it normalises once
up front. The table gives test accuracy on the 10,000 test images, seconds per epoch
(training + evaluation, median) and total training seconds; with ``--repeats 2`` the runs
alternate (Ember, hand, hand, Ember). The target (issue #3) is test accuracy ≥ 0.92 within 10
minutes of training on this 2-core CPU.

A second table measures batch augmentation throughput: Ember's vectorised default
(``RandomBatchAugment``, one random draw per image) against the same kinds of
torchvision.transforms.v2 steps applied image by image.

    flock /tmp/ember-bench.lock python bench/vision.py              # full set, 8 epochs each
    flock /tmp/ember-bench.lock python bench/vision.py --repeats 2  # alternating, 2 runs each
    python bench/vision.py --smoke                                  # seconds, bundled sample
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember_vision import FASHION_MNIST_CLASSES, ImageData, compact_cnn, fashion_mnist
from ember_vision.transforms import RandomBatchAugment

from _common import data_dir, parser, table

LR, BS, WD = 3e-3, 64, 0.01  # Ember's defaults for this data, mirrored by the baseline


class EpochTimer(ember.Callback):
    """Wall-clock seconds of each epoch (training and validation)."""

    order = ember.Order.LAST

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def before_epoch(self) -> None:
        self.start = time.perf_counter()

    def after_epoch(self) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def ember_run(train, test, initial, epochs: int) -> tuple[float, list[float]]:
    ember.seed(0)
    data = ImageData.from_arrays(*train, valid=test, classes=FASHION_MNIST_CLASSES)
    learn = ember.learner(data, quiet=True, device="cpu")
    learn.model.load_state_dict(initial)  # the same start as the baseline's
    timer = EpochTimer()
    learn.fit_one_cycle(epochs, cbs=[timer])
    return learn.validate()["accuracy"], timer.seconds


def hand_run(train, test, initial, epochs: int) -> tuple[float, list[float]]:
    torch.manual_seed(0)
    train_x = torch.from_numpy(train[0]).float().div(255).unsqueeze(1)
    mean, std = train_x.mean(), train_x.std()
    train_x = (train_x - mean) / std
    test_x = (torch.from_numpy(test[0]).float().div(255).unsqueeze(1) - mean) / std
    train_dl = DataLoader(TensorDataset(train_x, torch.from_numpy(train[1]).long()),
                          batch_size=BS, shuffle=True, drop_last=True)
    test_dl = DataLoader(TensorDataset(test_x, torch.from_numpy(test[1]).long()),
                         batch_size=BS * 2)
    model = compact_cnn(1, 10)
    model.load_state_dict(initial)
    norm_ids = {id(p) for m in model.modules()
                if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))
                for p in m.parameters()}
    decay = [p for p in model.parameters() if p.ndim > 1 and id(p) not in norm_ids]
    no_decay = [p for p in model.parameters() if p.ndim <= 1 or id(p) in norm_ids]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.99), eps=1e-5)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=epochs * len(train_dl), pct_start=0.25, div_factor=25,
        final_div_factor=1e5 / 25, base_momentum=0.85, max_momentum=0.95)
    seconds, accuracy = [], 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for xb, yb in train_dl:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            schedule.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in test_dl:
                correct += int((model(xb).argmax(1) == yb).sum())
        accuracy = correct / len(test_x)
        seconds.append(time.perf_counter() - start)
    return accuracy, seconds


def augmentation_throughput(repeats: int, size: int = 28, n: int = 256) -> dict[str, float]:
    """Images per second: vectorised default against per-image v2 calls."""
    from torchvision.transforms import v2

    images = torch.rand(n, 1, size, size)
    vectorised = RandomBatchAugment()
    per_image = v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1))], p=0.75),
        v2.RandomApply([v2.ColorJitter(brightness=0.2, contrast=0.2)], p=0.75),
        v2.RandomResizedCrop([size, size], scale=(0.75, 1.0), antialias=True),
    ])
    contenders = {
        "ember RandomBatchAugment (vectorised)": lambda: vectorised(images),
        "torchvision v2, one call per image": lambda: torch.stack([per_image(i) for i in images]),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run()  # warm-up
    for _ in range(repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            rates[name].append(n / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--epochs", type=int, default=8)
    arguments.set_defaults(repeats=1)
    arguments.add_argument("--threads", type=int, default=torch.get_num_threads(),
                           help="torch CPU threads for both sides (default: torch's own; 1 is "
                                "steadier on a loaded machine)")
    args = arguments.parse_args()
    torch.set_num_threads(args.threads)
    folder = data_dir(args.data)
    if args.smoke or folder is None:
        train, test = fashion_mnist(sample=True)
        if args.smoke:
            train = (train[0][:512], train[1][:512])
        source = "bundled sample"
    else:
        train, test = fashion_mnist(folder)
        source = f"{folder / 'fashion-mnist'}"
    epochs = 1 if args.smoke else args.epochs
    repeats = 1 if args.smoke else max(1, args.repeats)
    torch.manual_seed(0)
    initial = compact_cnn(1, 10).state_dict()
    results: dict[str, list[tuple[float, list[float]]]] = {"ember": [], "hand-written loop": []}
    runners = {"ember": ember_run, "hand-written loop": hand_run}
    for repeat in range(repeats):
        order = list(runners) if repeat % 2 == 0 else list(runners)[::-1]
        for name in order:
            results[name].append(runners[name](train, test, initial, epochs))
    rows, summary = [], {}
    for name, runs in results.items():
        accuracy = statistics.median(run[0] for run in runs)
        seconds = statistics.median(s for run in runs for s in run[1])
        total = statistics.median(sum(run[1]) for run in runs)
        summary[name] = (accuracy, seconds, total)
        rows.append([name, f"{len(train[0])} / {len(test[0])}", str(epochs), f"{accuracy:.4f}",
                     f"{seconds:.2f}", f"{total:.0f}"])
    print(f"Fashion-MNIST ({source}), compact CNN, {args.threads} thread(s), "
          f"{repeats} run(s) each\n")
    print(table(["trainer", "train / test images", "epochs", "test accuracy",
                 "median s/epoch", "training s"], rows))
    rates = augmentation_throughput(3 if args.smoke else 10)
    print("\nBatch augmentation, 256 images of 28x28, CPU\n")
    print(table(["augmentation", "images / s"], [[k, f"{v:,.0f}"] for k, v in rates.items()]))
    ember_accuracy, ember_seconds, ember_total = summary["ember"]
    hand_accuracy, hand_seconds, hand_total = summary["hand-written loop"]
    vectorised, per_image = rates.values()
    print(f"\nRESULT vision_accuracy {ember_accuracy:.4f} accuracy baseline={hand_accuracy:.4f}")
    print(f"RESULT vision_epoch_seconds {ember_seconds:.3f} s baseline={hand_seconds:.3f}")
    print(f"RESULT vision_training_seconds {ember_total:.1f} s baseline={hand_total:.1f}")
    print(f"RESULT vision_augment_images_per_s {vectorised:.0f} images/s "
          f"baseline={per_image:.0f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
