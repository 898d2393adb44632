"""Each guard: a mistake planted in real data gives its finding; a clean setup gives none.

The data are real Fashion-MNIST images (the sample bundled with the example plugin
ember-signal), flattened to 784 features and standardised, 10 balanced classes."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember import checks


def fashion(n: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    from ember_signal import sequential_fashion

    images, names = sequential_fashion(n)
    classes = sorted(set(names))
    x = torch.from_numpy(images.reshape(len(images), -1))
    return x, torch.tensor([classes.index(name) for name in names])


def standardised(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / x.std()


def real_data(n: int = 1000, valid_pct: float = 0.4, x=None, y=None) -> ember.Data:
    if x is None:
        x, y = fashion(n)
        x = standardised(x)
    train_idx, valid_idx = ember.split_indices(len(x), valid_pct, seed=0)
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(x[train_idx], y[train_idx]),
                                               TensorDataset(x[valid_idx], y[valid_idx]), bs=32)
    return ember.Data.from_loaders(train_dl, valid_dl)


def kinds(findings) -> set[type]:
    return {finding.kind for finding in findings}


def learner(data, **kwargs):
    n_in = data.one_batch()[0].shape[1]
    model = ember.create_model("mlp", n_in=n_in, n_out=data.n_out, hidden=[64], dropout=0.0)
    return ember.Learner(data, model, quiet=True, **kwargs)


def test_clean_setup_raises_no_finding():
    ember.seed(0)
    learn = learner(real_data())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ember.EmberWarning)
        learn.fit_one_cycle(1, 1e-2)
        assert learn.doctor(verbose=False) == []


def test_training_loader_that_does_not_shuffle():
    data = real_data()
    data.train_dl = DataLoader(data.train_dl.dataset, batch_size=32)
    with pytest.warns(checks.LoaderWarning, match="does not shuffle"):
        learner(data).fit(1)


def test_validation_loader_that_shuffles_or_drops():
    data = real_data()
    data.valid_dl = DataLoader(data.valid_dl.dataset, batch_size=32, shuffle=True, drop_last=True)
    found = learner(data).doctor(verbose=False)
    messages = " ".join(f.message for f in found if f.kind is checks.LoaderWarning)
    assert "shuffles" in messages and "drops its last" in messages


def test_items_shared_between_training_and_validation():
    data = real_data()
    x, y = data.train_dl.dataset.tensors
    data.valid_dl = DataLoader(TensorDataset(x[:50], y[:50]), batch_size=64)
    found = [f for f in learner(data).doctor(verbose=False) if f.kind is checks.LeakageWarning]
    assert found and "50 of 50" in found[0].message


def _pad_to_longest(batch):
    """Sequences of different lengths padded with 0 to the longest of their batch."""
    inputs, targets = zip(*batch)
    return (nn.utils.rnn.pad_sequence(list(inputs), batch_first=True),
            torch.stack(list(targets)))


def test_items_shared_between_training_and_validation_are_found_whatever_their_padding():
    # each sequence is padded to the longest of its batch, so a duplicate padded to another
    # length than its twin in training was not recognised (7 of 40 found on seq2seq data)
    generator = torch.Generator().manual_seed(0)
    sequences = [torch.randint(1, 9, (length,), generator=generator)
                 for length in range(1, 41)]
    items = [(sequence, torch.tensor(i % 2)) for i, sequence in enumerate(sequences)]
    train = DataLoader(items, batch_size=8, shuffle=True, collate_fn=_pad_to_longest)
    valid = DataLoader(items[::-1][:20], batch_size=16, collate_fn=_pad_to_longest)
    learn = ember.Learner(ember.Data.from_loaders(train, valid), nn.Linear(1, 2), quiet=True)
    found = checks._leakage_findings(learn, sample=2000)
    assert found and "20 of 20" in found[0].message


def test_imbalanced_target_with_accuracy_alone():
    x, y = fashion()
    bags, others = (y == 1).nonzero().flatten(), (y != 1).nonzero().flatten()  # 1: "Bag"
    keep = torch.cat([others, bags[:40]])  # bags are about 4.5 % of the rest
    data = real_data(x=standardised(x[keep]), y=(y[keep] == 1).long(), valid_pct=0.3)
    assert checks.ImbalanceWarning in kinds(learner(data, metrics=["accuracy"]).doctor(
        verbose=False))
    assert checks.ImbalanceWarning not in kinds(learner(data).doctor(verbose=False))  # + ROC AUC


def test_inputs_far_from_normalised():
    x, y = fashion()
    data = real_data(x=x * 255, y=y)  # raw pixel values 0 … 255
    with pytest.warns(checks.NormalisationWarning, match="mean"):
        learner(data).fit(1)


def test_learning_rate_far_above_the_suggestion():
    ember.seed(0)
    learn = learner(real_data())
    suggestion = learn.lr_find(num_it=50)
    with pytest.warns(checks.LearningRateWarning, match="lr_find suggestion"):
        learn.fit(1, float(suggestion) * 100)


def test_loss_rising_sharply_stops_training():
    ember.seed(0)
    data = real_data()
    learn = ember.Learner(data, nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10)),
                          opt_func=lambda p, lr: torch.optim.SGD(p, lr=lr), quiet=True,
                          nan_guard=False)
    with pytest.warns(checks.LearningRateWarning, match="loss rose"):
        learn.fit(3, 5.0)
    assert len(learn.recorder.values) == 0  # stopped inside the first epoch


def test_frozen_batchnorm_updated_against_the_policy():
    class TrainEverything(ember.Callback):
        order = ember.Order.DEFAULT - 30

        def before_batch(self):
            self.learn.model.train()  # undoes bn_policy="freeze"

    learn = learner(real_data(), bn_policy="freeze", cbs=[TrainEverything()])
    learn.freeze()
    with pytest.warns(checks.BatchNormWarning, match="running statistics change"):
        learn.fit(1)


def test_validation_set_too_small_reports_the_interval():
    ember.seed(0)  # the doctor's short fit: its accuracy decides the interval's width
    data = real_data()
    x, y = data.valid_dl.dataset.tensors
    data.valid_dl = DataLoader(TensorDataset(x[:40], y[:40]), batch_size=64)
    found = [f for f in learner(data).doctor(verbose=False)
             if f.kind is checks.ValidationSizeWarning]
    assert found and "95% interval" in found[0].message


def test_a_validation_set_of_whole_batches_is_not_counted_by_its_batches():
    # a dataset that yields whole batches (batch_size=None) has a length in batches: 400
    # validation items in 13 batches were reported as "13 validation items", ±0.27
    class Batches(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.x, self.y = x.split(32), y.split(32)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, index):
            return self.x[index], self.y[index]

    ember.seed(0)
    data = real_data()
    x, y = data.valid_dl.dataset.tensors
    data.valid_dl = DataLoader(Batches(x, y), batch_size=None)
    assert len(data.valid_dl.dataset) == 13 and len(x) == 400
    found = [f for f in learner(data).doctor(verbose=False)
             if f.kind is checks.ValidationSizeWarning]
    assert not found, found


def test_an_empty_validation_loader_is_refused_before_the_first_step():
    # Data's constructor takes any loader: an empty validation one scored every epoch NaN
    # (SaveBest and EarlyStopping then watched NaN), where from_loaders refuses it
    data = real_data()
    x, y = data.valid_dl.dataset.tensors
    data.valid_dl = DataLoader(TensorDataset(x[:0], y[:0]), batch_size=32)
    learn = learner(data, metrics=["accuracy"])
    with pytest.raises(ember.DataError, match="the validation loader yields no batch"):
        learn.fit(1)
    assert learn.recorder.values == []  # refused before anything trained


def test_model_left_in_eval_mode_during_training():
    class Eval(ember.Callback):
        def before_batch(self):
            self.learn.model.eval()

    with pytest.warns(checks.ModelStateWarning, match="eval mode"):
        learner(real_data(), cbs=[Eval()]).fit(1)


def test_gradients_disabled_or_nothing_to_train_is_an_error():
    learn = learner(real_data())
    with torch.no_grad(), pytest.raises(ember.TrainingError, match="gradients are disabled"):
        learn.fit(1)
    for parameter in learn.model.parameters():
        parameter.requires_grad_(False)
    with pytest.raises(ember.TrainingError, match="no parameter"):
        learn.fit(1)


def test_findings_are_one_warning_class_that_users_can_filter():
    for kind in (checks.LoaderWarning, checks.LeakageWarning, checks.ImbalanceWarning,
                 checks.NormalisationWarning, checks.LearningRateWarning,
                 checks.BatchNormWarning, checks.ValidationSizeWarning,
                 checks.ModelStateWarning):
        assert issubclass(kind, ember.EmberWarning)


class ShuffledBuckets(torch.utils.data.Sampler):
    """A batch sampler of its own (as length bucketing is written): shuffled batches of indices,
    with no ``sampler`` attribute."""

    def __init__(self, n: int, bs: int) -> None:
        self.n, self.bs = n, bs

    def __iter__(self):
        order = torch.randperm(self.n).tolist()
        return iter([order[i:i + self.bs] for i in range(0, self.n, self.bs)])

    def __len__(self) -> int:
        return -(-self.n // self.bs)


def test_a_training_loader_with_its_own_batch_sampler_trains_without_a_false_alarm():
    data = real_data()
    dataset = data.train_dl.dataset
    data.train_dl = DataLoader(dataset, batch_sampler=ShuffledBuckets(len(dataset), 32))
    with warnings.catch_warnings():
        warnings.simplefilter("error", checks.LoaderWarning)
        learn = learner(data)
        learn.fit(1)
        assert checks.LoaderWarning not in kinds(learn.doctor(verbose=False))
    ordered = DataLoader(dataset, batch_sampler=torch.utils.data.BatchSampler(
        torch.utils.data.SequentialSampler(dataset), 32, drop_last=False))
    data.train_dl = ordered  # torch's own batch sampler over an ordered sampler: still found
    with pytest.warns(checks.LoaderWarning, match="does not shuffle"):
        learner(data).fit(1)


def test_a_single_item_batch_that_batchnorm_cannot_train_on_is_an_error_before_the_fit():
    # 33 items in batches of 16 leave one: BatchNorm1d stopped the fit mid-epoch with torch's
    # "Expected more than 1 value per channel when training"
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(33, 4, generator=generator), torch.randint(0, 2, (33,), generator=generator)
    valid_dl = DataLoader(TensorDataset(x, y), batch_size=16)

    def learner(train_dl, **options):
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
        data = ember.Data.from_loaders(train_dl, valid_dl)
        return ember.Learner(data, model, quiet=True, **options)

    dataset = TensorDataset(x, y)
    with pytest.raises(ember.TrainingError, match=r"last batch holds one item \(33 items in "
                                                  r"batches of 16\).*drop_last=True"):
        learner(DataLoader(dataset, batch_size=16, shuffle=True)).fit(1)
    with pytest.raises(ember.TrainingError, match="holds one item"):
        learner(DataLoader(TensorDataset(x[:1], y[:1]), batch_size=16)).fit(1)
    with pytest.raises(ember.TrainingError, match=r"one item each \(batch_size=1\)"):
        learner(DataLoader(dataset, batch_size=1, shuffle=True)).fit(1)  # said: "input size"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner(DataLoader(dataset, batch_size=16, shuffle=True, drop_last=True)).fit(1)
        learner(DataLoader(dataset, batch_size=11, shuffle=True)).fit(1)
        # BatchNorm kept in eval by the frozen-BatchNorm policy takes one item
        frozen = learner(DataLoader(dataset, batch_size=16, shuffle=True), bn_policy="freeze",
                         splitter=lambda m: [list(m[:2].parameters()), list(m[2:].parameters())])
        frozen.freeze()
        frozen.fit(1)


def test_batches_of_one_are_refused_with_drop_last_and_from_a_batched_dataset():
    # the check skipped a loader with drop_last=True (which drops a last batch of one, not
    # batches of one), and read a dataset with __getitems__ (torch's batched fetch, as the
    # tabular plugin's) item by item, so its model failed and nothing was found: both reached
    # the first batch's "check that the model's input size fits the data"
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 4, generator=generator), torch.randint(0, 2, (32,), generator=generator)

    class Rows(torch.utils.data.Dataset):  # gives whole batches to a collate that keeps them
        def __len__(self):
            return len(x)

        def __getitem__(self, index):
            return x[index], y[index]

        def __getitems__(self, indices):
            return x[indices], y[indices]

    def learner(train_dl):
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
        data = ember.Data.from_loaders(train_dl, DataLoader(TensorDataset(x, y), batch_size=16))
        return ember.Learner(data, model, quiet=True)

    for train_dl in (DataLoader(TensorDataset(x, y), batch_size=1, shuffle=True, drop_last=True),
                     DataLoader(Rows(), batch_size=1, shuffle=True, collate_fn=tuple)):
        with pytest.raises(ember.TrainingError, match=r"one item each \(batch_size=1\)"):
            learner(train_dl).fit(1)
    with pytest.raises(ember.TrainingError, match="holds one item"):
        learner(DataLoader(Rows(), batch_size=16, collate_fn=tuple,
                           sampler=[0])).fit(1)


def test_a_single_item_batch_is_let_through_where_batchnorm_sees_a_sequence():
    # BatchNorm1d over (N, C, L) with L > 1 takes the statistics of one item's L values: a
    # 1-D conv net trains on 33 items in batches of 16 (it was refused before the fit)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(33, 2, 12, generator=generator)
    y = torch.randint(0, 2, (33,), generator=generator)
    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.ReLU(),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    data = ember.Data.from_loaders(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
                                   DataLoader(TensorDataset(x, y), batch_size=16))
    learn = ember.Learner(data, model, quiet=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learn.fit(2)
    assert learn.train_iter == 6  # every batch trained, the one-item batch included


def _tiny_data(x: torch.Tensor, y: torch.Tensor, **options) -> ember.Data:
    return ember.Data.from_loaders(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
                                   DataLoader(TensorDataset(x, y), batch_size=16), **options)


def _three_classes() -> ember.Data:
    """64 random items of 4 features, in 3 classes, batches of 16."""
    generator = torch.Generator().manual_seed(0)
    return _tiny_data(torch.randn(64, 4, generator=generator),
                      torch.randint(0, 3, (64,), generator=generator))


class _LogitsAndFeatures(nn.Module):
    def __init__(self, as_dict: bool) -> None:
        super().__init__()
        self.linear, self.as_dict = nn.Linear(4, 3), as_dict

    def forward(self, x: torch.Tensor):
        logits = self.linear(x)
        return {"logits": logits, "features": x} if self.as_dict else (logits, x)


def test_a_model_that_returns_a_tuple_or_a_dict_gets_a_clear_error():
    # it failed inside the loss with AttributeError: 'tuple' object has no attribute 'ndim'
    data = _three_classes()
    with pytest.raises(ember.TrainingError, match=r"returns a tuple of 2 values, but "
                                                  r"CrossEntropyFlat needs one tensor"):
        ember.Learner(data, _LogitsAndFeatures(as_dict=False), quiet=True).fit(1)
    with pytest.raises(ember.TrainingError, match=r"returns a dict \(keys 'logits', 'features'\)"):
        ember.Learner(data, _LogitsAndFeatures(as_dict=True), quiet=True).doctor(verbose=False)


class _TokenScores(nn.Module):
    """Token ids (N, T) to class scores in torch's layout for nn.CrossEntropyLoss: (N, C, T)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embedding, self.linear = nn.Embedding(vocab, 8), nn.Linear(8, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear(self.embedding(tokens)).transpose(1, 2)


def test_torch_cross_entropy_reads_the_classes_from_the_second_dimension():
    # the check read the classes from the last dimension, the time steps in torch's (N, C, T)
    # layout: valid labels up to 49 were "out of range for a model with 6 outputs"
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 50, (64, 6), generator=generator)
    data = _tiny_data(tokens, torch.randint(0, 50, (64, 6), generator=generator),
                      target_kind="sequence", n_out=50)
    ember.Learner(data, _TokenScores(50), loss_func=nn.CrossEntropyLoss(), quiet=True).fit(1)
    masks = _tiny_data(torch.randn(64, 1, 8, 8, generator=generator),
                       torch.randint(0, 5, (64, 8, 8), generator=generator),
                       target_kind="single_label", n_out=5)
    with pytest.raises(ember.TrainingError, match="label 4 is out of range for a model with 3 "
                                                  "outputs"):
        ember.Learner(masks, nn.Conv2d(1, 3, 1), loss_func=nn.CrossEntropyLoss(), quiet=True
                      ).fit(1)


def test_a_single_class_or_a_single_output_under_cross_entropy_is_an_error():
    # cross-entropy over one score is 0 whatever the model does: it trained silently, learning
    # nothing, when every label was one class or the model ended in one output
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    one_class = _tiny_data(x, torch.zeros(64, dtype=torch.long))
    with pytest.raises(ember.TrainingError, match=r"always 0.*the data holds a single class"):
        ember.Learner(one_class, nn.Linear(4, 1), quiet=True).fit(1)
    two_classes = _tiny_data(x, torch.zeros(64, dtype=torch.long), n_out=2)
    with pytest.raises(ember.TrainingError, match=r"output shape \(16,\).*data.n_out \(2\)"):
        ember.Learner(two_classes, nn.Sequential(nn.Linear(4, 1), nn.Flatten(0)),
                      quiet=True).fit(1)


def test_a_torch_regression_loss_that_would_broadcast_outputs_against_targets_is_an_error():
    # nn.MSELoss on outputs (N, 1) and targets (N,) compared every output with every target
    # (an (N, N) loss, torch's warning aside) and trained towards the mean
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=generator)
    data = _tiny_data(x, x.sum(1))
    with pytest.raises(ember.TrainingError, match=r"outputs have shape \(16, 1\) but the "
                                                  r"targets \(16,\); MSELoss"):
        ember.Learner(data, nn.Linear(4, 1), loss_func=nn.MSELoss(), quiet=True).fit(1)
    ember.Learner(data, nn.Linear(4, 1), quiet=True).fit(1)  # MSEFlat flattens both sides
    ember.Learner(_tiny_data(x, x.sum(1, keepdim=True)), nn.Linear(4, 1),
                  loss_func=nn.MSELoss(), quiet=True).fit(1)


def test_doctor_names_a_model_or_a_loss_that_fails_on_the_first_batch():
    # doctor() ran the model bare (torch's "mat1 and mat2 shapes cannot be multiplied" came
    # out of it) and never ran the loss it promises to check
    data = _three_classes()
    with pytest.raises(ember.TrainingError, match=r"model failed on the first batch \(inputs "
                                                  r"of shape \(16, 4\)\)"):
        ember.Learner(data, nn.Linear(5, 3), quiet=True).doctor(verbose=False)

    def sharp_loss(pred, target):
        raise ValueError("targets must be sharp")

    with pytest.raises(ember.TrainingError, match=r"^sharp_loss failed on model outputs of "
                                                  r"shape \(16, 3\)"):
        ember.Learner(data, nn.Linear(4, 3), loss_func=sharp_loss, quiet=True).doctor(
            verbose=False)


def test_integer_inputs_to_a_float_model_get_advice_about_the_dtype_not_the_size():
    # the error said "check that the model's input size fits the data": the size was right
    generator = torch.Generator().manual_seed(0)
    data = _tiny_data(torch.randint(0, 255, (64, 4), generator=generator),
                      torch.randint(0, 3, (64,), generator=generator))
    with pytest.raises(ember.TrainingError, match=r"inputs are integers \(torch.int64\) but the "
                                                  r"model computes in torch.float32") as raised:
        ember.Learner(data, nn.Linear(4, 3), quiet=True).fit(1)
    assert "input size" not in str(raised.value)
    tokens = _tiny_data(torch.randint(0, 20, (64, 4), generator=generator),
                        torch.randint(0, 3, (64,), generator=generator))
    with pytest.raises(ember.TrainingError, match="input size fits") as raised:  # ids >= 10
        ember.Learner(tokens, nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(12, 3)),
                      quiet=True).fit(1)
    assert "integers" not in str(raised.value)


class _CountingReads(torch.utils.data.Dataset):
    """A dataset that counts the items read from it."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y, self.reads = x, y, 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        self.reads += 1
        return self.x[index], self.y[index]


def test_the_overlap_check_reads_a_sample_even_of_data_with_repeated_items():
    # it stopped after `sample` distinct items: 30 distinct rows repeated 100 times were read
    # to the end (every one of 3000, or millions on a large oversampled set)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=generator).repeat(100, 1)
    y = torch.randint(0, 3, (30,), generator=generator).repeat(100)
    train, valid = _CountingReads(x, y), _CountingReads(x[:200] + 10, y[:200])
    data = ember.Data.from_loaders(DataLoader(train, batch_size=16, shuffle=True),
                                   DataLoader(valid, batch_size=16))
    learn = ember.Learner(data, nn.Linear(4, 3), quiet=True)
    train.reads = valid.reads = 0
    assert checks._leakage_findings(learn, sample=20) == []
    assert train.reads <= 10 * 20 + 16 and valid.reads <= 20 + 16


def test_float64_inputs_into_a_float32_model_say_to_convert_them():
    """A TensorDataset made with torch.from_numpy holds float64: the first batch failed with
    advice to check the model's input size, which was right."""
    from torch.utils.data import DataLoader, TensorDataset

    dataset = TensorDataset(torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 2, (16,)))
    data = ember.Data.from_loaders(DataLoader(dataset, batch_size=8, shuffle=True),
                                   DataLoader(dataset, batch_size=8))
    learn = ember.Learner(data, torch.nn.Linear(5, 2), quiet=True)
    with pytest.raises(ember.TrainingError, match=r"inputs are torch.float64 but the model "
                                                  r"computes in torch.float32.*\.float\(\)"):
        learn.fit(1)


@pytest.mark.parametrize("kind, metric, match", [
    ("regression", "accuracy", r"^accuracy: .* one score per item.*'rmse'"),
    ("single_label", "rmse", r"^rmse: predictions of shape \(32, 3\) and targets of shape"),
    ("single_label", ember.TopKAccuracy(k=5), r"^top_5_accuracy: k=5 .* only 3 classes")])
def test_a_metric_that_does_not_fit_the_targets_is_an_error_before_the_first_step(
        kind, metric, match):
    # before, the metric met the targets only at the first validation: a whole epoch
    # trained (minutes to hours) before the error, and its weights were thrown away
    from .helpers import blob_data, regression_data

    ember.seed(0)
    data = regression_data() if kind == "regression" else blob_data()
    learn = ember.learner(data, metrics=[metric], quiet=True)
    before = {name: value.detach().clone() for name, value in learn.model.named_parameters()}
    with pytest.raises(ember.TrainingError, match=match):
        learn.fit(1)
    assert learn.recorder.losses == []  # no batch trained, no step taken
    assert all(torch.equal(before[name], value) for name, value in learn.model.named_parameters())


def test_the_metrics_check_costs_one_update_per_learner_not_one_per_batch():
    from .helpers import blob_data

    class Counted(ember.Accuracy):
        name, updates = "counted", 0

        def update(self, preds, targets):
            type(self).updates += 1
            super().update(preds, targets)

    ember.seed(0)
    data = blob_data()
    learn = ember.Learner(data, nn.Linear(8, 3), metrics=[Counted()], quiet=True)
    learn.fit(2)
    valid_batches = len(data.valid_dl)
    assert Counted.updates == 1 + 2 * valid_batches  # the first training batch once
    # the check's update leaves nothing behind: the recorded score is the validation set's
    assert learn.recorder.values[-1]["counted"] == learn.validate()["counted"]
