"""Tabular benchmark: Ember's default tabular learner against gradient boosting (and fastai).

Two real tasks, each on one seeded 80/20 split shared by every model in the same run:

- diamonds (ggplot2), regression of log(price): RMSE in log space. scikit-learn's
  HistGradientBoostingRegressor (500 iterations, native categoricals) gets about 0.086.
- lending-club (R modeldata), ``Class`` (5% bad): ROC AUC, against
  HistGradientBoostingClassifier.

fastai's ``tabular_learner`` (default layers, ``y_range`` for regression as its docs advise,
``fit_one_cycle`` at the same epochs, default learning rate) runs too
when fastai is installed. Ember uses its defaults: ``ember.learner(TabularData.from_df(...))``
then ``fit_one_cycle(EPOCHS)`` at the plugin's default learning rate.

``--seeds 0,1`` repeats the neural networks (Ember and fastai) with each seed (the torch seed
that initialises and shuffles; the 80/20 split stays seed 0 for every model): the table has a
row per seed and the mean, and the ``RESULT`` lines give the mean over the seeds (then one line
per seed). Gradient boosting runs once (``random_state=0``).

Usage::

    flock /tmp/ember-bench.lock .venv/bin/python bench/tabular.py            # full sets
    flock /tmp/ember-bench.lock .venv/bin/python bench/tabular.py --seeds 0,1  # two seeds
    .venv/bin/python bench/tabular.py --smoke                                # bundled samples

Ends with ``RESULT <name> <value> <unit> baseline=<value>`` lines.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import ember
from ember_tabular import TabularData
from ember_tabular.datasets import load_sample, order_diamonds

#: Epochs of the default recipe, per task.
EPOCHS = {"diamonds": 80, "lending_club": 8}
ROOT = Path(__file__).resolve().parents[1]


def data_folder(given: str | None) -> Path:
    return Path(given or os.environ.get("EMBER_DATA") or ROOT.parent / "shared" / "data")


def load(task: str, folder: Path, smoke: bool) -> pd.DataFrame:
    if smoke:
        return load_sample(task)
    if task == "diamonds":
        return order_diamonds(pd.read_csv(folder / "diamonds.csv.gz"))
    return pd.read_csv(folder / "lending-club.csv.gz")


def split(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return ember.split_indices(len(frame), valid_pct=0.2, seed=0)


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, scores))


# ---------------------------------------------------------------------------- Ember
def run_ember(task: str, frame: pd.DataFrame, epochs: int, seed: int = 0) -> dict[str, float]:
    ember.seed(seed)
    _, valid = split(frame)
    flagged = frame.assign(is_valid=np.isin(np.arange(len(frame)), valid))
    start = time.perf_counter()
    if task == "diamonds":
        data = TabularData.from_df(flagged, "price", valid_col="is_valid", log_target=True,
                                   verbose=False)
    else:
        data = TabularData.from_df(flagged, "Class", valid_col="is_valid", verbose=False)
    learn = ember.learner(data, quiet=True, device="cpu")
    learn.fit_one_cycle(epochs)
    seconds = time.perf_counter() - start
    predictions, targets = learn.get_preds()
    if task == "diamonds":
        error = predictions.reshape(-1).double() - targets.double()
        return {"score": float(error.pow(2).mean().sqrt()), "seconds": seconds}
    bad = data.classes.index("bad")
    return {"score": auc(predictions[:, bad].numpy(), (targets == bad).numpy()),
            "seconds": seconds}


# ---------------------------------------------------------------------------- baselines
def features(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    inputs = frame.drop(columns=[target])
    for name in inputs.columns:
        if not pd.api.types.is_numeric_dtype(inputs[name].dtype) and not isinstance(
                inputs[name].dtype, pd.CategoricalDtype):
            inputs[name] = inputs[name].astype("category")
    return inputs


def run_gbm(task: str, frame: pd.DataFrame, smoke: bool) -> dict[str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    train, valid = split(frame)
    iterations = 50 if smoke else 500
    start = time.perf_counter()
    if task == "diamonds":
        inputs, target = features(frame, "price"), np.log(frame["price"].to_numpy())
        model = HistGradientBoostingRegressor(max_iter=iterations, random_state=0,
                                              categorical_features="from_dtype")
        model.fit(inputs.iloc[train], target[train])
        error = model.predict(inputs.iloc[valid]) - target[valid]
        return {"score": float(np.sqrt((error**2).mean())),
                "seconds": time.perf_counter() - start}
    inputs, target = features(frame, "Class"), (frame["Class"] == "bad").to_numpy()
    model = HistGradientBoostingClassifier(max_iter=iterations, categorical_features="from_dtype",
                                           random_state=0)
    model.fit(inputs.iloc[train], target[train])
    scores = model.predict_proba(inputs.iloc[valid])[:, list(model.classes_).index(True)]
    return {"score": auc(scores, target[valid]), "seconds": time.perf_counter() - start}


def run_fastai(task: str, frame: pd.DataFrame, epochs: int, seed: int = 0
               ) -> dict[str, float] | None:
    try:
        from fastai.tabular.all import (
            Categorify,
            CategoryBlock,
            FillMissing,
            IndexSplitter,
            Normalize,
            RegressionBlock,
            TabularPandas,
            cont_cat_split,
            tabular_learner,
        )
    except ImportError:
        return None
    torch.manual_seed(seed)
    np.random.seed(seed)
    _, valid = split(frame)
    frame = frame.copy()
    target = "price" if task == "diamonds" else "Class"
    if task == "diamonds":
        frame["price"] = np.log(frame["price"].astype("float64"))
    conts, cats = cont_cat_split(frame, max_card=20, dep_var=target)
    start = time.perf_counter()
    block = RegressionBlock() if task == "diamonds" else CategoryBlock()
    table = TabularPandas(frame, procs=[Categorify, FillMissing, Normalize], cat_names=cats,
                          cont_names=conts, y_names=target, y_block=block,
                          splits=IndexSplitter(list(valid))(range(len(frame))))
    loaders = table.dataloaders(bs=512 if task == "diamonds" else 64)
    # fastai's documented recipe for regression: a y_range around the targets
    y_range = ((frame[target].min() * 0.95, frame[target].max() * 1.05)
               if task == "diamonds" else None)
    learn = tabular_learner(loaders, y_range=y_range)
    with learn.no_bar(), learn.no_logging(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learn.fit_one_cycle(epochs)
        predictions, targets = learn.get_preds()
    seconds = time.perf_counter() - start
    if task == "diamonds":
        error = predictions.reshape(-1).double() - targets.reshape(-1).double()
        return {"score": float(error.pow(2).mean().sqrt()), "seconds": seconds}
    bad = list(loaders.vocab).index("bad")
    return {"score": auc(predictions[:, bad].numpy(), (targets.reshape(-1) == bad).numpy()),
            "seconds": seconds}


# ---------------------------------------------------------------------------- scale
def synthetic_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` x 20 mixed columns: 8 text categories, 2 small integers, 9 floats (with 1%
    missing), a float target."""
    generator = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for index in range(8):
        levels = np.array([f"level_{k}" for k in range(5 * (index + 1) ** 2)], dtype=object)
        columns[f"cat_{index}"] = pd.array(levels[generator.integers(0, len(levels), rows)],
                                           dtype="str")
    for index in range(2):
        columns[f"count_{index}"] = generator.integers(0, 10, rows)
    for index in range(9):
        values = generator.standard_normal(rows) * (index + 1)
        values[generator.random(rows) < 0.01] = np.nan
        columns[f"num_{index}"] = values
    columns["target"] = generator.standard_normal(rows)
    return pd.DataFrame(columns)


def run_scale(rows: int) -> None:
    """Processors and one training epoch on a large frame: rows/second and peak memory."""
    import resource

    from ember_tabular import TabularProcessor, infer_column_kinds

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # torch and friends
    frame = synthetic_frame(rows)
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    cats, conts, dates, _ = infer_column_kinds(frame, exclude=["target"])
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    # fitted and transformed in one pass, as TabularData.from_df does with the training rows
    processor = TabularProcessor(cats, conts, dates)
    processor.fit_transform(frame)
    process_seconds = time.perf_counter() - start
    process_cpu = time.process_time() - cpu_start
    start = time.perf_counter()
    processor.transform(frame)  # replay alone (validation rows, inference)
    replay_seconds = time.perf_counter() - start
    ember.seed(0)
    start = time.perf_counter()
    data = TabularData.from_df(frame, "target", cat_names=cats, cont_names=conts,
                               date_names=dates, bs=1024, verbose=False)
    build_seconds = time.perf_counter() - start
    learn = ember.learner(data, quiet=True, device="cpu")
    start = time.perf_counter()
    learn.fit_one_cycle(1)
    train_seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    n_train = len(data.train_dl.dataset)
    print("| rows | columns | frame MB | processors fit_transform rows/s | same, per CPU "
          "second | transform alone rows/s | from_df s | train rows/s (1 epoch, incl. "
          "validation) | peak memory MB | peak / frame |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {rows} | {frame.shape[1]} | {frame_bytes / 2**20:.0f} | "
          f"{rows / process_seconds:,.0f} | {rows / process_cpu:,.0f} | "
          f"{rows / replay_seconds:,.0f} | {build_seconds:.1f} | "
          f"{n_train / train_seconds:,.0f} | {peak / 2**20:.0f} | {peak / frame_bytes:.2f} |")
    print(f"(peak memory: peak RSS less the {base / 2**20:.0f} MB resident before the frame was "
          f"built; it includes the frame itself. Processors: {process_seconds:.2f} s wall, "
          f"{process_cpu:.2f} s of this process's CPU time, one thread; load average "
          f"{load_before:.1f} on {os.cpu_count()} cores when they started)")
    print()
    print(f"RESULT tabular_processors_rows_per_s {rows / process_seconds:.0f} rows/s "
          f"baseline=1000000")
    print(f"RESULT tabular_processors_rows_per_cpu_s {rows / process_cpu:.0f} rows/s "
          f"baseline=1000000")
    print(f"RESULT tabular_transform_rows_per_s {rows / replay_seconds:.0f} rows/s "
          f"baseline=1000000")
    print(f"RESULT tabular_train_rows_per_s {n_train / train_seconds:.0f} rows/s baseline=0")
    print(f"RESULT tabular_peak_memory_ratio {peak / frame_bytes:.2f} x_frame baseline=3")


# ---------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with diamonds.csv.gz and lending-club.csv.gz")
    parser.add_argument("--smoke", action="store_true", help="bundled samples, 1 epoch")
    parser.add_argument("--no-fastai", action="store_true", help="skip fastai even if installed")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on these shared 2-core machines)")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated torch seeds for the networks (the split stays 0)")
    parser.add_argument("--scale", type=int, default=0, metavar="ROWS",
                        help="instead: time processors and one epoch on ROWS x 20 columns")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    if arguments.scale:
        run_scale(arguments.scale)
        return
    folder = data_folder(arguments.data)
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    rows: list[tuple[Any, ...]] = []
    results: list[str] = []
    for task, metric, unit in (("diamonds", "rmse_log_price", "rmse"),
                               ("lending_club", "roc_auc", "auc")):
        frame = load(task, folder, arguments.smoke)
        epochs = 1 if arguments.smoke else EPOCHS[task]
        gbm = run_gbm(task, frame, arguments.smoke)
        ours, peers = [], []
        for seed in seeds:
            ours.append(run_ember(task, frame, epochs, seed))
            peer = None if arguments.no_fastai else run_fastai(task, frame, epochs, seed)
            peers.append(peer)
            rows.append((task, metric, len(frame), epochs, str(seed), ours[-1], gbm, peer))
        mean = {key: float(np.mean([run[key] for run in ours])) for key in ours[0]}
        peer_mean = None if peers[0] is None else {
            key: float(np.mean([run[key] for run in peers if run])) for key in peers[0]}
        if len(seeds) > 1:
            rows.append((task, metric, len(frame), epochs, "mean", mean, gbm, peer_mean))
        results.append(f"RESULT tabular_{task}_{metric} {mean['score']:.4f} {unit} "
                       f"baseline={gbm['score']:.4f}")
        if peer_mean is not None:
            results.append(f"RESULT tabular_{task}_{metric}_vs_fastai {mean['score']:.4f} {unit} "
                           f"baseline={peer_mean['score']:.4f}")
        if len(seeds) > 1:
            results += [f"RESULT tabular_{task}_{metric}_seed{seed} {run['score']:.4f} {unit} "
                        f"baseline={gbm['score']:.4f}" for seed, run in zip(seeds, ours)]
    print("| task | metric | rows | epochs | seed | Ember | HistGradientBoosting (500 it.) | "
          "fastai tabular_learner | Ember s | GBM s | fastai s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for task, metric, n, epochs, seed, ours, gbm, peer in rows:
        peer_score = f"{peer['score']:.4f}" if peer else "not run"
        peer_time = f"{peer['seconds']:.0f}" if peer else "-"
        print(f"| {task} | {metric} | {n} | {epochs} | {seed} | {ours['score']:.4f} | "
              f"{gbm['score']:.4f} | {peer_score} | {ours['seconds']:.0f} | {gbm['seconds']:.0f} "
              f"| {peer_time} |")
    print()
    print("\n".join(results))


if __name__ == "__main__":
    main()
