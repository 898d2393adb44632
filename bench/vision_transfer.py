"""Vision transfer learning: a body pretrained on five Fashion-MNIST classes, fine-tuned on the
other five with 50 training images per class, against the same model trained from scratch.

Source task: T-shirt/top, Trouser, Pullover, Dress, Coat (all 30,000 training images), trained
with ``ember.learner`` defaults (compact CNN, one-cycle) and saved with ``learn.save``. Target
task: Sandal, Shirt, Sneaker, Bag, Ankle boot, 50 training images per class drawn with the
seed, scored on all 5,000 test images of those classes. Every target variant trains for the
same number of epochs on the same images:

- from scratch: ``ember.learner(data).fit_one_cycle(freeze_epochs + epochs)``;
- pretrained body, all layers trained with the same ``fit_one_cycle`` (nothing frozen);
- pretrained body, ``fine_tune(epochs, freeze_epochs=...)``: head alone first, then everything
  with discriminative learning rates; once with BatchNorm policy ``"train"`` (the default: the
  frozen body's BatchNorm layers keep adapting their statistics to the new data) and once with
  ``"freeze"`` (they keep the source statistics);
- pretrained body kept frozen throughout (head only), under both BatchNorm policies, where
  the policy matters most.

Accuracy is the mean and spread over ``--seeds`` draws of the 250 training images.

    flock /tmp/ember-bench.lock python bench/vision_transfer.py          # about 10 minutes
    python bench/vision_transfer.py --smoke                              # seconds, bundled sample
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

import ember
from ember_vision import FASHION_MNIST_CLASSES, ImageData, fashion_mnist, vision_model

from _common import data_dir, parser, table

SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


def subset(images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...],
           per_class: int | None = None, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Images of ``classes`` (all of them, or ``per_class`` each drawn with ``seed``)."""
    generator = np.random.default_rng(seed)
    chosen = []
    for label in classes:
        index = np.flatnonzero(labels == label)
        chosen.append(index if per_class is None else generator.choice(index, per_class,
                                                                       replace=False))
    order = np.sort(np.concatenate(chosen))
    return images[order], [FASHION_MNIST_CLASSES[v] for v in labels[order]]


def pretrain(train, test, epochs: int, folder: Path) -> tuple[Path, float]:
    """Train the source task with Ember's defaults and save it; its checkpoint and accuracy."""
    ember.seed(0)
    data = ImageData.from_arrays(*subset(*train, SOURCE), valid=subset(*test, SOURCE))
    learn = ember.learner(data, quiet=True, device="cpu")
    learn.fit_one_cycle(epochs)
    return learn.save(folder / "source.pt"), learn.validate()["accuracy"]


def target_run(variant: str, target_train, target_valid, checkpoint: Path, seed: int,
               epochs: int, freeze_epochs: int) -> float:
    """Accuracy of one variant on the target classes."""
    ember.seed(seed)
    data = ImageData.from_arrays(*target_train, valid=target_valid)
    if variant == "from scratch":
        learn = ember.learner(data, quiet=True, device="cpu")
        learn.fit_one_cycle(freeze_epochs + epochs)
        return learn.validate()["accuracy"]
    policy = "freeze" if "freeze" in variant else "train"
    model = vision_model("compact_cnn", data, pretrained=checkpoint,
                         widths=[16, 32, 64])
    learn = ember.learner(data, model=model, bn_policy=policy, quiet=True, device="cpu")
    if variant.startswith("fine_tune"):
        learn.fine_tune(epochs, freeze_epochs=freeze_epochs)
    elif variant.startswith("pretrained body"):
        learn.fit_one_cycle(freeze_epochs + epochs)
    else:  # head only: the body stays frozen for every epoch
        learn.freeze()
        learn.fit_one_cycle(freeze_epochs + epochs)
    return learn.validate()["accuracy"]


VARIANTS = ("from scratch", "pretrained body, fit_one_cycle",
            "fine_tune, BatchNorm train (default)", "fine_tune, BatchNorm freeze",
            "head only, BatchNorm train", "head only, BatchNorm freeze")


def main() -> None:
    arguments = parser(__doc__.splitlines()[0])
    arguments.add_argument("--seeds", type=int, default=3)
    arguments.add_argument("--shots", type=int, default=50, help="target images per class")
    arguments.add_argument("--pretrain-epochs", type=int, default=3)
    arguments.add_argument("--epochs", type=int, default=12)
    arguments.add_argument("--freeze-epochs", type=int, default=3)
    arguments.add_argument("--threads", type=int, default=1)
    args = arguments.parse_args()
    torch.set_num_threads(args.threads)
    folder = data_dir(args.data)
    if args.smoke or folder is None:
        train, test = fashion_mnist(sample=True)
        source = "bundled sample"
    else:
        train, test = fashion_mnist(folder)
        source = f"{folder / 'fashion-mnist'}"
    seeds = 1 if args.smoke else args.seeds
    shots = 8 if args.smoke else args.shots
    epochs, freeze_epochs = (2, 1) if args.smoke else (args.epochs, args.freeze_epochs)
    target_valid = subset(*test, TARGET)
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint, source_accuracy = pretrain(train, test, 1 if args.smoke else
                                               args.pretrain_epochs, Path(scratch))
        scores: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for seed in range(seeds):
            target_train = subset(*train, TARGET, per_class=shots, seed=seed)
            for name in VARIANTS:
                scores[name].append(target_run(name, target_train, target_valid, checkpoint,
                                               seed, epochs, freeze_epochs))
    rows = []
    for name, values in scores.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append([name, f"{statistics.mean(values):.4f} ± {spread:.4f}",
                     " ".join(f"{v:.3f}" for v in values)])
    print(f"Fashion-MNIST ({source}): source classes {[FASHION_MNIST_CLASSES[i] for i in SOURCE]}"
          f" pretrained {1 if args.smoke else args.pretrain_epochs} epoch(s), test accuracy "
          f"{source_accuracy:.4f}; target classes {[FASHION_MNIST_CLASSES[i] for i in TARGET]}, "
          f"{shots} training images per class, {len(target_valid[0])} test images, "
          f"{freeze_epochs} + {epochs} epochs, {seeds} seed(s)\n")
    print(table(["target model", "test accuracy (mean ± sd)", "per seed"], rows))
    mean = {name: statistics.mean(values) for name, values in scores.items()}
    print(f"\nRESULT transfer_accuracy {mean[VARIANTS[1]]:.4f} accuracy "
          f"baseline={mean[VARIANTS[0]]:.4f}")
    print(f"RESULT transfer_fine_tune_accuracy {mean[VARIANTS[2]]:.4f} accuracy "
          f"baseline={mean[VARIANTS[0]]:.4f}")
    print(f"RESULT transfer_bn_freeze_accuracy {mean[VARIANTS[3]]:.4f} accuracy "
          f"baseline={mean[VARIANTS[2]]:.4f}")
    print(f"RESULT transfer_head_only_bn_freeze_accuracy {mean[VARIANTS[5]]:.4f} accuracy "
          f"baseline={mean[VARIANTS[4]]:.4f}")


if __name__ == "__main__":
    main()
