"""fit_auto against hand-picked defaults for the same wall time, one row per domain.

For each domain the same data is trained by two contenders: (a)
``learner.fit_auto(minutes=budget)``, (b) the plugin's hand-picked defaults — its default
learning rate with a one-cycle schedule that runs on the same clock as ``fit_auto``
(``ember.auto.TimeBudget``: the schedule's position is the share of the budget spent, and the
budget ends training), validating each epoch. The
table shows the validation metric of each (the final weights for the defaults, the best kept by
``fit_auto``) and how close each landed to its budget.

This machine's speed drifts by tens of per cent over minutes with nothing else running, so one
run each would compare the contenders at unequal compute by luck: ``--pairs 2`` (the default)
runs them in the order A B B A and the table gives the means; every run is listed below it.

    flock /tmp/ember-bench.lock python bench/auto.py --budget 120   # full data, ../shared/data
    python bench/auto.py --smoke                 # bundled samples, seconds
    python bench/auto.py --domains diamonds fr   # a subset (names by their first word)
"""

from __future__ import annotations

import gzip
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import ember
from ember.auto import RESERVE_MARGIN, TimeBudget
from ember.callbacks.base import OPEN_ENDED

from _common import data_dir, parser, table


def vision(folder, smoke: bool) -> ember.Data:
    from ember_vision import FASHION_MNIST_CLASSES, ImageData, fashion_mnist

    source = None if smoke or folder is None else folder / "fashion-mnist"
    (x, y), (test_x, test_y) = fashion_mnist(source, sample=source is None)
    return ImageData.from_arrays(x, y, valid=(test_x, test_y), classes=FASHION_MNIST_CLASSES)


def text(folder, smoke: bool) -> ember.Data:
    from ember_text import TextData, load_rotten_tomatoes

    if smoke or folder is None:
        texts, labels, _ = load_rotten_tomatoes()
        texts, labels = texts[:600], labels[:600]
    else:
        texts, labels, _ = load_rotten_tomatoes(folder / "rotten-tomatoes" / "reviews.csv.gz")
    return TextData.from_texts(texts, labels, valid_pct=0.2, seed=0)


def tabular(folder, smoke: bool) -> ember.Data:
    import pandas as pd

    from ember_tabular import TabularData
    from ember_tabular.datasets import load_sample, order_diamonds

    if smoke or folder is None:
        frame = load_sample("diamonds")
    else:
        with gzip.open(folder / "diamonds.csv.gz") as handle:
            frame = order_diamonds(pd.read_csv(handle))
    frame = frame.assign(price=np.log(frame["price"].astype(float)))
    return TabularData.from_df(frame, "price", valid_pct=0.2, seed=0)


def seq2seq(folder, smoke: bool) -> ember.Data:
    from ember_text.seq2seq import Seq2SeqData

    try:
        from num2words import num2words
    except ImportError:
        from ember_text.seq2seq.datasets import load_sample

        return Seq2SeqData.from_pairs(load_sample("fr_numbers")[: 400 if smoke else None],
                                      valid_pct=0.1, seed=0)
    rng = np.random.default_rng(0)
    numbers = rng.choice(1_000_000, size=400 if smoke else 20_000, replace=False)
    pairs = [(num2words(int(n), lang="fr"), str(int(n))) for n in numbers]
    return Seq2SeqData.from_pairs(pairs, valid_pct=0.1, seed=0)


DOMAINS: dict[str, Callable[..., ember.Data]] = {
    "fashion-mnist": vision, "rotten-tomatoes": text, "diamonds log(price)": tabular,
    "fr words -> digits": seq2seq}


def score(learn: ember.Learner) -> tuple[str, float]:
    metrics = learn.validate()
    name = learn.metrics[0].name if learn.metrics else "valid_loss"
    return name, metrics[name]


def hand_picked(data: ember.Data, seconds: float) -> tuple[str, float, float, float]:
    """The plugin's defaults — its learning rate, one-cycle — on the same clock as fit_auto:
    the one-cycle position is the share of the budget spent and the budget ends the fit, keeping
    back the time of a validation measured before the clock starts, so both contenders train
    for the same wall time."""
    ember.seed(0)
    learn = ember.learner(data, quiet=True)
    start = time.perf_counter()
    learn.validate()  # its time, measured off the clock, is kept back for the last validation
    budget = TimeBudget(seconds, reserve=RESERVE_MARGIN * (time.perf_counter() - start))
    schedule = ember.OneCycle(learn.lr_for_groups(learn.lr))  # follows the budget's clock
    start = time.perf_counter()
    learn.fit(OPEN_ENDED, cbs=[schedule, budget])
    wall = time.perf_counter() - start
    epochs = sum(batches for _, batches in budget.train_times) / len(data.train_dl)
    name, value = score(learn)
    return name, value, wall, epochs


def automatic(data: ember.Data, seconds: float) -> tuple[str, float, float, dict]:
    ember.seed(0)
    learn = ember.learner(data, quiet=True)
    start = time.perf_counter()
    report = learn.fit_auto(minutes=seconds / 60, verbose=False)
    wall = time.perf_counter() - start
    name, value = score(learn)
    return name, value, wall, report


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--budget", type=float, default=120.0, help="seconds per contender")
    options.add_argument("--domains", nargs="*", default=list(DOMAINS),
                         help="domains to run, by name or first word")
    options.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    options.add_argument("--pairs", type=int, default=2,
                         help="runs of each contender per domain, in the order A B B A …; the "
                              "table shows their means (one with --smoke)")
    args = options.parse_args()
    torch.set_num_threads(args.threads)
    chosen = [name for name in DOMAINS
              if any(name == given or name.split()[0].startswith(given) for given in args.domains)]
    folder = data_dir(args.data)
    budget = min(args.budget, 15.0) if args.smoke else args.budget
    repeats = 1 if args.smoke else args.pairs
    rows, results = [], []
    warnings.simplefilter("ignore", ember.EmberWarning)
    details = []
    for domain in chosen:
        try:
            data = DOMAINS[domain](folder, args.smoke)
        except ImportError as error:
            rows.append([domain, "-", "-", f"skipped: {error}", "-", "-"])
            continue
        runs: dict[Callable[..., Any], list[Any]] = {hand_picked: [], automatic: []}
        for repeat in range(repeats):  # A B B A …: a drift of the machine's speed hits both
            for contender in (hand_picked, automatic)[::1 if repeat % 2 == 0 else -1]:
                runs[contender].append(contender(data, budget))
        hand_runs, auto_runs = runs[hand_picked], runs[automatic]
        name = hand_runs[0][0]
        base, base_wall, epochs = (sum(run[i] for run in hand_runs) / repeats for i in (1, 2, 3))
        auto, auto_wall = (sum(run[i] for run in auto_runs) / repeats for i in (1, 2))
        report = auto_runs[-1][3]
        if repeats > 1:
            details.append(f"{domain}, each run (hand-picked / fit_auto): " + "; ".join(
                f"{h[1]:.4f} ({h[3]:.2f} ep, {h[2]:.0f} s) / {a[1]:.4f} "
                f"({a[3].get('epochs_run', '-')} ep, {a[2]:.0f} s)"
                for h, a in zip(hand_runs, auto_runs)))
        details.append(f"{domain}: {report.get('schedule')}, model "
                       f"{report.get('model', 'default')}, {report.get('epochs_run', '-')} "
                       f"epochs run (~{report.get('epochs')} planned), slowdown "
                       f"{report.get('slowdown', '-')}; " + "; ".join(report["reasons"]))
        lower_better = name in ("valid_loss", "rmse", "mae")
        better = auto <= base if lower_better else auto >= base
        rows.append([domain, name, f"{base:.4f} ({epochs:.1f} ep, {base_wall:.0f} s)",
                     f"{auto:.4f} (lr {report['lr']:.1e}, {auto_wall:.0f} s)",
                     "yes" if better else "no", f"{100 * (auto_wall / budget - 1):+.1f} %"])
        key = domain.split()[0].replace("-", "_")
        results.append((f"auto_{key}_{name}", auto, base))
        results.append((f"auto_{key}_budget_ratio", auto_wall / budget, 1.0))
    print(f"budget {budget:.0f} s per contender, torch threads {torch.get_num_threads()}, "
          f"{repeats} run(s) of each (means)\n")
    print(table(["data", "metric", "hand-picked defaults", "fit_auto", "auto as good",
                 "fit_auto vs budget"], rows))
    print()
    for line in details:
        print(f"- {line}")
    for name, value, baseline in results:
        print(f"RESULT {name} {value:.4f} value baseline={baseline:.4f}")


if __name__ == "__main__":
    main()
