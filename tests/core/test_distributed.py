"""Two gloo processes on this CPU, launched with torchrun by the test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import ember
from ember.distributed import ShardSampler
from ember.export import read_checkpoint

from .distributed_script import (
    CancelMidGroupSteps,
    dataset,
    dropout_model,
    edge_learner,
    model,
    preds_learner,
    sgd,
)

SCRIPT = Path(__file__).with_name("distributed_script.py")
#: a rank's reported validation loss (six decimals, or nan), wherever it sits in the output
VALID_LOSS = re.compile(r"RANK (\d) VALID_LOSS (nan|-?\d+\.\d{6})")


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    # the script's folder goes before the caller's path, which may be where ember comes from
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                         os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "EMBER_DIST_TIMEOUT": "60", "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", str(SCRIPT), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def test_two_process_run_matches_one_process_over_the_same_global_batches(tmp_path):
    out = tmp_path / "ddp.pt"
    result = torchrun(str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    distributed_weights = read_checkpoint(out)["model"]

    # one process, global batches of 2 x 16 drawn in the same order as the two ranks' shards
    train, valid = dataset()
    sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=0)
    data = ember.Data.from_loaders(DataLoader(train, batch_size=32, sampler=sampler),
                                   DataLoader(valid, batch_size=32))
    learn = ember.Learner(data, model(), opt_func=sgd, wd=0.0, quiet=True)
    learn.fit(2, 0.05)
    for key, value in learn.model.state_dict().items():
        assert torch.allclose(value, distributed_weights[key], atol=1e-6), key
    accuracy = float(result.stdout.split("ACCURACY")[1].split()[0])
    assert abs(accuracy - learn.validate()["accuracy"]) < 1e-6  # reduced over both ranks
    _assert_checkpoints_agree_on_every_rank(result.stdout, tmp_path / "models",
                                            distributed_weights)


def _assert_checkpoints_agree_on_every_rank(output: str, models: Path,
                                            weights: dict[str, torch.Tensor]) -> None:
    """The plain run's Checkpoint() and resume= under two ranks (distributed_script's
    ``checkpoints``): rank 0 alone writes, another run's fit keeps the file and writes
    checkpoint-v1.pt on every rank, and a resumed run ends as the uninterrupted one did."""
    # the run's checkpoint: written by rank 0 after each of its two epochs, by no other rank
    runs = {rank: (run, json.loads(written)) for rank, run, written
            in re.findall(r"RANK (\d) RUN (\w+) WRITES (\[.*\])", output)}
    assert sorted(runs) == ["0", "1"], output[-3000:]
    assert [name.split(".")[1] for name in runs["0"][1]] == ["checkpoint", "checkpoint"]  # tmp
    assert runs["1"][1] == []
    saved = read_checkpoint(models / "checkpoint.pt")
    assert saved["epoch"] == 1 and saved["epochs_run"] == 2 and saved["run"] == runs["0"][0]
    assert saved["model_class"] == "Sequential" and {"opt", "rng"} <= set(saved)
    for key, value in weights.items():
        assert torch.equal(saved["model"][key], value), key
    # another run's fit with Checkpoint(): checkpoint-v1.pt on every rank (rank 0 decided and
    # told the others), the first run's file unchanged byte for byte
    others = re.findall(r"RANK (\d) ORIGINAL (\w+) (\w+) OTHER (\S+) WRITES (\[.*\])", output)
    assert sorted(rank for rank, *_ in others) == ["0", "1"], output[-3000:]
    assert len({before for _, before, _, _, _ in others}) == 1
    for rank, before, after, file, written in others:
        assert after == before and Path(file) == models / "checkpoint-v1.pt", rank
        names = [name.split(".")[1] for name in json.loads(written)]  # .NAME.pt.HEX.tmp
        assert names == (["checkpoint-v1"] if rank == "0" else []), (rank, names)
    assert read_checkpoint(models / "checkpoint-v1.pt")["epoch"] == 0
    # a run interrupted after its first epoch, resumed from its checkpoint in a new learner:
    # every rank trains the second epoch and ends with the uninterrupted run's weights
    resumed = re.findall(r"RANK (\d) RESUMED AFTER_EPOCH (\d+) RAN (\d+) (\S+) SAME (\w+) "
                         r"WEIGHTS (\S+)", output)
    assert sorted(rank for rank, *_ in resumed) == ["0", "1"], output[-3000:]
    assert len({total for *_, total in resumed}) == 1  # the ranks agree
    for rank, saved_after, epochs, file, same, _ in resumed:
        # the interrupted run's checkpoint (epoch 0) as each rank read it; the resumed fit
        # went on in the same file and ran 2 epochs in all, like the uninterrupted one
        assert (saved_after, epochs, file, same) == ("0", "2", "interrupted.pt", "True"), rank
    assert read_checkpoint(models / "interrupted.pt")["epoch"] == 1
    _assert_each_rank_resumes_its_own_stream(output, models)


def _assert_each_rank_resumes_its_own_stream(output: str, models: Path) -> None:
    """distributed_script's ``own_streams``: with dropout and each rank seeded its own way, a
    resumed run ends as the uninterrupted one on every rank (the checkpoint held rank 0's
    random state alone, which every rank took, so rank 1 drew rank 0's masks), and a
    checkpoint with a single state resumes under two ranks and in one process."""
    streams = re.findall(r"RANK (\d) OWN_STREAMS SAME (\w+) STREAM (\w+) (\w+)", output)
    assert sorted(rank for rank, *_ in streams) == ["0", "1"], output[-3000:]
    for rank, same, stream, _ in streams:
        assert (same, stream) == ("True", "True"), rank
    assert len({whole for *_, whole in streams}) == 2  # the ranks' streams do differ
    saved = read_checkpoint(models / "dropout.pt")
    assert len(saved["rng_ranks"]) == 2
    assert torch.equal(saved["rng"]["torch"], saved["rng_ranks"][0]["torch"])
    assert not torch.equal(saved["rng_ranks"][0]["torch"], saved["rng_ranks"][1]["torch"])
    # a checkpoint with one state (one process's, an older ember's): every rank takes it
    single = dict(re.findall(r"RANK (\d) SINGLE_STATE (\w+)", output))
    assert sorted(single) == ["0", "1"] and single["0"] == single["1"], output[-3000:]
    # and one process resumes the two ranks' checkpoint from rank 0's state
    class StartingStream(ember.Callback):
        def before_fit(self) -> None:
            self.state = torch.get_rng_state()

    train, valid = dataset()
    train_dl, valid_dl, _ = ember.make_loaders(train, valid, bs=16)
    learn = ember.Learner(ember.Data.from_loaders(train_dl, valid_dl), dropout_model(),
                          opt_func=sgd, wd=0.0, quiet=True)
    starting = StartingStream()
    learn.fit(3, 0.05, cbs=[starting], resume=models / "dropout.pt")
    assert learn.epoch == 2 and learn.epochs_run == 3
    assert torch.equal(starting.state, saved["rng"]["torch"])


def test_a_failing_rank_ends_all_ranks_with_a_clear_error(tmp_path):
    result = torchrun(str(tmp_path / "never.pt"), "1", timeout=180)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ember: rank 1 of 2 failed" in output and "planted failure" in output
    assert not (tmp_path / "never.pt").exists()


def test_every_rank_gets_every_items_predictions_as_one_process_does(tmp_path):
    # get_preds gave each rank the predictions of its own share (18 and 17 of the 35
    # validation items, the training items in each rank's shuffled order)
    result = torchrun(str(tmp_path), "preds")
    assert result.returncode == 0, result.stderr[-3000:]
    learn = preds_learner()  # one process, the weights the two ranks trained
    learn.load(tmp_path / "weights.pt", with_opt=False)
    expected = {"valid": learn.get_preds(), "train": learn.get_preds("train", activation=False)}
    assert expected["valid"][0].shape == (35, 6, 5) and expected["train"][1].shape == (29, 6)
    assert torch.isnan(expected["valid"][0]).any()  # the shorter batches' padding is there
    for rank in range(2):
        gathered = torch.load(tmp_path / f"preds{rank}.pt")
        for split in ("valid", "train"):
            for got, want in zip(gathered[split], expected[split]):
                torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)
        # the test set without labels: every item's predictions (its inputs are the
        # validation items'), and targets None
        test_preds, test_targets = gathered["test"]
        assert test_targets is None
        torch.testing.assert_close(test_preds, expected["valid"][0], rtol=0, atol=0,
                                   equal_nan=True)


def test_onnx_export_is_written_by_rank_0_and_read_by_every_rank_on_return(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    # every rank traced and wrote the same file, racing each other's writes
    out = tmp_path / "model.onnx"
    result = torchrun(str(out), "onnx")
    assert result.returncode == 0, result.stderr[-3000:]
    traced = dict(re.findall(rf"RANK (\d) ONNX {re.escape(str(out))} TRACED (\d)",
                             result.stdout))
    assert traced == {"0": "1", "1": "0"}


def test_a_rank_without_validation_items_validates_with_the_others(tmp_path):
    result = torchrun(str(tmp_path / "model.ember"), "edge", "1")  # one item, two ranks
    assert result.returncode == 0, result.stderr[-3000:]
    losses = dict(re.findall(VALID_LOSS, result.stdout))
    assert len(losses) == 2 and losses["0"] == losses["1"] != "nan"
    # rank 1 predicts no batch, and gets rank 0's
    assert sorted(re.findall(r"RANK (\d) PREDS (\d+)", result.stdout)) == [("0", "1"),
                                                                          ("1", "1")]
    # F1 skipped its reduction on the rank that measured no batch; rank 0 waited for it
    scores = dict(re.findall(r"RANK (\d) (F1 \S+ ACCURACY \S+)", result.stdout))
    assert len(scores) == 2 and scores["0"] == scores["1"] and "nan" not in scores["0"]
    statistics = dict(re.findall(r"RANK (\d) BN (\S+ \S+)", result.stdout))  # precise BN
    assert len(statistics) == 2 and statistics["0"] == statistics["1"], statistics


def test_validation_measures_the_model_rank_0_saves_and_every_rank_reads_its_export(tmp_path):
    # the MLP's BatchNorm statistics: each rank's last training batch updated its own copy, so
    # the reduced validation scored no saved model; and export returned on rank 1 before rank
    # 0 had written the file that rank 1 then loads
    result = torchrun(str(tmp_path / "model.ember"), "edge", "5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RANK 0 PREDICT" in result.stdout and "RANK 1 PREDICT" in result.stdout
    # a write that fails on rank 0 (write_on_rank_zero, behind save, export and export_onnx)
    # raises on rank 1 too, as the same kind of error, instead of leaving it waiting
    assert "RANK 0 WRITE FAILED planted write failure" in result.stdout
    assert "RANK 1 WRITE FAILED rank 0 could not write" in result.stdout
    distributed = float(re.findall(VALID_LOSS, result.stdout)[0][1])
    learn = edge_learner(5)
    learn.load(tmp_path / "model.ember.pt", with_opt=False)
    assert abs(learn.validate()["valid_loss"] - distributed) < 1e-5


def _per_rank(output: str, word: str) -> list[str]:
    lines = sorted(line for line in output.splitlines() if f" {word} " in line)
    assert len(lines) == 2, output[-3000:]
    return [line.split(word, 1)[1] for line in lines]


def test_lr_find_reads_one_curve_and_suggests_one_rate_on_every_rank(tmp_path):
    # each rank swept its own shard's losses: rank 0 suggested 5.2e-2, rank 1 fell back to
    # 1e-3, and a fit_one_cycle(…, lr=suggestion) trained each rank at its own rate
    result = torchrun(str(tmp_path), "lr_find", timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = _per_rank(result.stdout, "SUGGESTS")
    assert rank0 == rank1


def test_fit_auto_on_a_time_budget_stops_every_rank_at_the_same_step(tmp_path):
    # each rank read its own clock: a rank that started later stopped later, and the other
    # waited for it in the gradient reduction until the timeout (or they trained apart)
    result = torchrun(str(tmp_path), "fit_auto", timeout=150)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    rank0, rank1 = _per_rank(result.stdout, "AUTO")
    assert rank0 == rank1


def test_text_length_bucketing_gives_each_rank_its_own_items_every_epoch(tmp_path):
    # the text plugin's SortishSampler draws from torch's global generator, which parts
    # between the ranks once their batches differ in length (dropout): in the second epoch
    # the ranks' shares overlapped by about half, so those items were read twice and as
    # many never
    pytest.importorskip("ember_text")
    result = torchrun(str(tmp_path), "text", timeout=150)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    for epoch in range(2):
        rank0, rank1 = map(json.loads, _per_rank(result.stdout, f"EPOCH {epoch} READ"))
        assert len(rank0) == len(rank1) == 120
        assert sorted(rank0 + rank1) == list(range(240))


def test_a_language_models_stream_is_split_by_row_so_each_ranks_rows_continue(tmp_path):
    # sharded by batch, rank k read batches k, k + 2, … and carried its LSTM state into a
    # chunk that does not follow the last one in the text: 52 of 52 rows broke per rank
    pytest.importorskip("ember_text")
    result = torchrun(str(tmp_path), "lm", timeout=150)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    for rank in range(2):
        breaks, rows, width = re.search(
            rf"RANK {rank} BREAKS (\d+) OF (\d+) ROWS (\d+)", result.stdout).groups()
        assert int(rows) > 0 and int(breaks) == 0, (rank, breaks, rows)
        assert int(width) == 2  # each rank its half of the 4 rows of every batch
        loss, one_process, same = re.search(
            rf"RANK {rank} VALID (\S+) ONE_PROCESS (\S+) PREDS_SAME (\w+)",
            result.stdout).groups()
        assert abs(float(loss) - float(one_process)) < 1e-4  # validated as one process does
        assert same == "True"  # get_preds: every row of every batch, as one process's


def test_shard_sampler_splits_validation_without_padding():
    shards = [list(ShardSampler(range(7), rank, 3)) for rank in range(3)]
    assert sorted(index for shard in shards for index in shard) == list(range(7))
    assert [len(ShardSampler(range(7), rank, 3)) for rank in range(3)] == [3, 2, 2]


def _seed_worker(worker_id: int) -> None:
    pass


def test_a_sharded_loader_keeps_the_loaders_worker_settings():
    from ember.distributed import shard_loader

    data = TensorDataset(torch.randn(40, 2), torch.randint(0, 2, (40,)))
    generator = torch.Generator().manual_seed(3)
    loader = DataLoader(data, batch_size=4, shuffle=True, num_workers=1,
                        worker_init_fn=_seed_worker, prefetch_factor=4, timeout=30.0,
                        generator=generator)
    for train in (True, False):
        shard = shard_loader(loader, rank=1, world_size=2, train=train)
        assert shard.worker_init_fn is _seed_worker and shard.prefetch_factor == 4
        assert shard.timeout == 30.0 and shard.generator is generator


class _Buckets(torch.utils.data.Sampler):
    """A batch sampler of the user's own: batches of 4 indices, shuffled with a seed."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(0)).tolist()
        return iter([order[i:i + 4] for i in range(0, self.n, 4)])

    def __len__(self) -> int:
        return -(-self.n // 4)


def test_sharded_loaders_keep_batches_and_give_every_rank_the_same_training_steps():
    from torch.utils.data import SequentialSampler

    from ember.distributed import shard_loader

    data = TensorDataset(torch.arange(15.0), torch.zeros(15))
    ordered = DataLoader(data, batch_size=4, sampler=SequentialSampler(data), drop_last=True)
    steps = [len(list(shard_loader(ordered, rank, 2, train=True))) for rank in range(2)]
    assert steps[0] == steps[1]  # else DDP waits forever for the rank with fewer
    bucketed = DataLoader(data, batch_sampler=_Buckets(15))
    shards = [list(shard_loader(bucketed, rank, 2, train=False)) for rank in range(2)]
    batches = [batch[0].tolist() for shard in shards for batch in shard]
    assert sorted(len(batch) for batch in batches) == [3, 4, 4, 4]  # batches, not single items
    assert sorted(x for batch in batches for x in batch) == list(range(15))
    train = [len(list(shard_loader(bucketed, rank, 2, train=True))) for rank in range(2)]
    assert train == [2, 2]


def test_the_ranks_batches_of_any_shard_interleave_back_into_the_whole_loaders_batches():
    # get_preds under torchrun: a loader's share is unsharded, its whole batches dealt out
    # to the ranks and put back in order: items batched by the loader, a batch sampler of
    # the user's own, a loader whose every element is a batch (a language model's stream)
    from torch.utils.data import SequentialSampler

    from ember.distributed import interleave, shard_batches, shard_loader, unshard_loader

    data = TensorDataset(torch.arange(15.0), torch.zeros(15))
    streamed = TensorDataset(torch.arange(15.0).reshape(5, 3))
    for loader in (DataLoader(data, batch_size=4), DataLoader(data, batch_sampler=_Buckets(15)),
                   DataLoader(streamed, batch_size=None, sampler=SequentialSampler(streamed))):
        whole = unshard_loader(shard_loader(loader, rank=1, world_size=2, train=False))
        assert whole is not None and unshard_loader(loader) is None
        shares = [[batch[0].tolist() for batch in shard_batches(whole, rank, 2)]
                  for rank in range(2)]
        assert interleave(shares) == [batch[0].tolist() for batch in loader]
    # a shuffled training share (DistributedSampler) comes back whole: every item, once
    training = shard_loader(DataLoader(data, batch_size=4, shuffle=True, drop_last=True),
                            rank=0, world_size=2, train=True)
    whole = unshard_loader(training)
    assert whole is not None and sorted(whole.sampler) == list(range(15))


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo process group of this process alone, as ZeroRedundancyOptimizer needs one."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def zero_adamw(groups, lr):
    from torch.distributed.optim import ZeroRedundancyOptimizer

    return ZeroRedundancyOptimizer(groups, optimizer_class=torch.optim.AdamW, lr=lr)


def test_nan_guard_restores_a_zero_redundancy_optimizer(one_process_group):
    from .helpers import assert_nan_guard_restores, blob_data

    learn = ember.Learner(blob_data(256), torch.nn.Linear(8, 3), quiet=True, device="cpu",
                          opt_func=zero_adamw, cbs=[ember.NanGuard(interval=1)],
                          nan_guard=False)
    assert_nan_guard_restores(learn, iteration=2)
    # the restored optimiser state is the one at the start of the poisoned epoch: a full one
    steps = {float(state["step"]) for state in learn.opt.optim.state.values()}
    assert steps == {float(len(learn.data.loader("train")))}


def test_a_zero_redundancy_optimizer_saves_and_loads_its_whole_state(one_process_group,
                                                                      tmp_path):
    from .helpers import blob_data

    def learner():
        return ember.Learner(blob_data(256), torch.nn.Linear(8, 3), quiet=True, device="cpu",
                             opt_func=zero_adamw, path=tmp_path)

    learn = learner()
    learn.fit(1, 1e-3)
    learn.save("zero")
    saved = read_checkpoint(tmp_path / "models" / "zero.pt")["opt"]
    steps = len(learn.data.loader("train"))
    assert [float(state["step"]) for state in saved["state"].values()] == [steps, steps]
    fresh = learner()
    fresh.load("zero")
    for key, state in learn.opt.optim.state_dict()["state"].items():
        loaded = fresh.opt.optim.state_dict()["state"][key]
        assert torch.equal(loaded["exp_avg"], state["exp_avg"]), key


def test_every_fit_draws_its_own_shuffle_on_every_rank(tmp_path):
    # the training sampler was told the fit's own epoch, which restarts at 0 with each fit:
    # under torchrun two fits in a row (fine_tune's two stages) read the items in the same
    # order on each rank, where one process draws a new order for each fit
    result = torchrun(str(tmp_path), "orders", timeout=120)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    orders = {}
    for rank in range(2):
        fits = re.findall(rf"RANK {rank} EPOCHS_RUN (\d+) ORDER (\[.*\])", result.stdout)
        assert [count for count, _ in fits] == ["1", "2"], result.stdout[-3000:]
        orders[rank] = [json.loads(order) for _, order in fits]
        assert orders[rank][0] != orders[rank][1]
    for fit in range(2):  # each fit, the ranks share out every item once
        assert sorted(orders[0][fit] + orders[1][fit]) == list(range(256))


@pytest.mark.parametrize("mode", ["accumulate", "accumulate_variants"])
def test_gradient_accumulation_reduces_the_gradients_once_per_group_under_torchrun(
        tmp_path, mode):
    # DDP reduced the gradients after every backward, though only each group's last
    # reduction was used: now the group's other batches run in no_sync, to the same weights.
    # With compile= (aot_eager here) the DDP model sits under torch.compile's wrapper, which
    # hid it: every batch still reduced (16 reductions), to the same weights. A step cancelled
    # by a callback ordered before GradientAccumulation left the group's last batch in no_sync:
    # no reduction at all, and each rank stepped on its own gradients
    out = tmp_path / "ddp.pt"
    result = torchrun(str(out), mode, timeout=160)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    variants = ([("", False)] if mode == "accumulate"
                else [("_compiled", False), ("_cancel_step", True)])
    for tag, cancelled in variants:
        for line in _per_rank(result.stdout, f"REDUCTIONS{tag}"):
            reductions, batches = map(int, line.split(" BATCHES "))
            assert (reductions, batches) == (8, 16), tag  # one bucket: one per group of 2
        distributed_weights = read_checkpoint(tmp_path / f"ddp{tag}.pt")["model"]

        # one process, global batches of 2 x 16 drawn in the same order as the two ranks'
        # shards
        train, valid = dataset()
        sampler = DistributedSampler(train, num_replicas=1, rank=0, shuffle=True, seed=0)
        data = ember.Data.from_loaders(DataLoader(train, batch_size=32, sampler=sampler),
                                       DataLoader(valid, batch_size=32))
        cancel = [CancelMidGroupSteps()] if cancelled else []
        learn = ember.Learner(data, model(), opt_func=sgd, wd=0.0, quiet=True,
                              cbs=[ember.GradientAccumulation(2), *cancel])
        learn.fit(2, 0.05)
        for key, value in learn.model.state_dict().items():
            assert torch.allclose(value, distributed_weights[key], atol=1e-6), (tag, key)
