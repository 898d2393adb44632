"""Vision default with and without ``PreciseBatchNorm``: accuracy and training time.

The vision plugin's defaults recompute the BatchNorm statistics from the trained weights at
the end of a fit too short for the moving averages to forget their start
(``ember.PreciseBatchNorm(only_when_stale=True)``, up to 8,192 training items drawn over the
whole set). This runs the three-line program (``ImageData.from_arrays`` →
``ember.learner(data)`` → ``fit_one_cycle(epochs)``) three times per seed and setting: with
the callback removed, as it is (the default), and with ``PreciseBatchNorm()``, which always
recomputes, from the same seed (the callback draws nothing from the global random generators,
so the arms train on the same batches, augmentation and initial weights). The table gives
validation accuracy per arm and the seconds of the whole fit, recompute included.

    flock /tmp/ember-bench.lock python bench/precise_bn.py            # sample settings + 10k
    flock /tmp/ember-bench.lock python bench/precise_bn.py --full     # also 60,000 images
    python bench/precise_bn.py --smoke                                # seconds, bundled sample
"""

from __future__ import annotations

import statistics
import time

import torch

import ember
from ember_vision import FASHION_MNIST_CLASSES, ImageData, fashion_mnist

from _common import data_dir, parser, table

ARMS = ("without", "default", "always")


def run(train, valid, epochs: int, seed: int, arm: str) -> tuple[float, float]:
    """Validation accuracy and fit seconds of the default learner: without PreciseBatchNorm,
    with the default one (only when stale) or with one that always recomputes."""
    ember.seed(seed)
    data = ImageData.from_arrays(*train, valid=valid, classes=FASHION_MNIST_CLASSES, bs=64)
    learn = ember.learner(data, quiet=True, device="cpu")
    if arm != "default":
        learn.remove_cbs(learn.callback("precise_batch_norm"))
    if arm == "always":
        learn.add_cbs([ember.PreciseBatchNorm()])
    start = time.perf_counter()
    learn.fit_one_cycle(epochs)
    seconds = time.perf_counter() - start
    return float(learn.validate()["accuracy"]), seconds


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--seeds", type=int, default=3)
    arguments.add_argument("--full", action="store_true",
                           help="also the full 60,000 training images (2 epochs, one seed)")
    arguments.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = arguments.parse_args()
    torch.set_num_threads(args.threads)
    sample_train, sample_valid = fashion_mnist(sample=True)
    settings = []  # (name, train, valid, epochs, seeds)
    if args.smoke:
        settings.append(("sample 256, 1 epoch", (sample_train[0][:256], sample_train[1][:256]),
                         sample_valid, 1, 1))
    else:
        settings.append(("sample 600, 2 epochs", (sample_train[0][:600], sample_train[1][:600]),
                         sample_valid, 2, args.seeds))
        settings.append(("sample 1,000, 8 epochs (quick-start)", sample_train, sample_valid, 8,
                         args.seeds))
        folder = data_dir(args.data)
        if folder is not None:
            full_train, full_test = fashion_mnist(folder)
            settings.append(("10,000, 3 epochs", (full_train[0][:10000], full_train[1][:10000]),
                             full_test, 3, min(args.seeds, 2)))
            if args.full:
                settings.append(("60,000, 2 epochs", full_train, full_test, 2, 1))
    rows, gains, costs = [], [], []
    for name, train, valid, epochs, seeds in settings:
        for seed in range(seeds):
            # rotate which arm runs first, so a drift in machine speed hits every arm
            order = ARMS[seed % 3:] + ARMS[:seed % 3]
            results = {arm: run(train, valid, epochs, seed, arm) for arm in order}
            accuracy = {arm: results[arm][0] for arm in ARMS}
            seconds = {arm: results[arm][1] for arm in ARMS}
            gains.append(accuracy["default"] - accuracy["without"])
            costs.append(seconds["default"] / seconds["without"])
            rows.append([name, str(seed), f"{len(valid[0])}",
                         *[f"{accuracy[arm]:.4f}" for arm in ARMS],
                         *[f"{seconds[arm]:.1f}" for arm in ARMS]])
    print(f"Fashion-MNIST, default vision learner, {args.threads} thread(s)\n")
    print(table(["setting", "seed", "valid images", "accuracy without", "accuracy default",
                 "accuracy always", "fit s without", "fit s default", "fit s always"], rows))
    print(f"\nRESULT precise_bn_accuracy_gain {statistics.mean(gains):.4f} accuracy baseline=0")
    print(f"RESULT precise_bn_time_ratio {statistics.median(costs):.3f} ratio baseline=1")


if __name__ == "__main__":
    main()
