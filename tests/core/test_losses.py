"""The default losses: several regression targets count equally, one keeps its own units."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import ember
from ember.losses import CrossEntropyFlat, MSEFlat, loss_for


def test_one_regression_target_keeps_the_plain_mse_in_its_units() -> None:
    torch.manual_seed(0)
    pred, target = torch.randn(16, 1) * 1000, torch.randn(16) * 1000
    for target_std in (None, [1000.0]):
        loss = loss_for("regression", target_std=target_std)
        assert loss.weight is None
        assert float(loss(pred, target)) == float(F.mse_loss(pred.reshape(-1), target))


def test_several_regression_targets_are_weighed_by_one_over_their_variance() -> None:
    torch.manual_seed(0)
    target = torch.randn(64, 2) * torch.tensor([4000.0, 1.1]) + torch.tensor([3900.0, 5.7])
    pred = target + torch.randn(64, 2) * torch.tensor([400.0, 0.11])
    std = ember.target_scale(target)[1]
    loss = loss_for("regression", target_std=std)
    scale = torch.tensor(std)
    standardised = F.mse_loss(pred / scale, target / scale)  # the MSE of standardised targets
    torch.testing.assert_close(loss(pred, target), standardised, rtol=1e-5, atol=0)
    # each target off by a tenth of its spread: both count the same, whatever their units
    per_target = ((pred - target) ** 2 / scale ** 2).mean(0)
    assert 0.5 < float(per_target[0] / per_target[1]) < 2
    assert float(MSEFlat()(pred, target)) > 1e4 * float(loss(pred, target))  # raw: price rules

def test_a_constant_target_counts_with_weight_one() -> None:
    assert loss_for("regression", target_std=[2.0, 0.0]).weight.tolist() == [0.25, 1.0]


def _regression_data(target_std: list[float] | None) -> ember.Data:
    torch.manual_seed(0)
    dataset = TensorDataset(torch.randn(32, 3), torch.randn(32, 2) * torch.tensor([100.0, 1.0]))
    data = ember.Data(DataLoader(dataset, batch_size=8), DataLoader(dataset, batch_size=8),
                      target_kind="regression", n_out=2)
    data.target_std = target_std
    return data


def test_the_learner_takes_the_weights_from_the_data_and_a_given_loss_overrides_them() -> None:
    model = nn.Linear(3, 2)
    learn = ember.Learner(_regression_data([100.0, 0.5]), model, device="cpu", quiet=True)
    assert isinstance(learn.loss_func, MSEFlat)
    torch.testing.assert_close(learn.loss_func.weight, torch.tensor([1e-4, 4.0]))
    unknown = ember.Learner(_regression_data(None), model, device="cpu", quiet=True)
    assert unknown.loss_func.weight is None  # no statistics: the plain MSE, as before
    given = ember.Learner(_regression_data([100.0, 0.5]), model, loss_func=nn.L1Loss(),
                          device="cpu", quiet=True)
    assert isinstance(given.loss_func, nn.L1Loss)


def test_the_target_spread_travels_in_the_data_state() -> None:
    data = _regression_data([100.0, 0.5])
    state = data.state()
    assert state["target_std"] == [100.0, 0.5]
    assert ember.Data.from_state(state).target_std == [100.0, 0.5]
    assert "target_std" not in _regression_data(None).state()


def test_int32_and_bool_class_labels_train_like_int64_ones() -> None:
    # numpy's default integer on Windows, pandas' int32 columns and bool flags are class
    # indices: from_loaders read their kind, then F.cross_entropy refused them on the first batch
    torch.manual_seed(0)
    inputs = torch.randn(32, 3)
    for labels in (torch.randint(0, 3, (32,), dtype=torch.int32), inputs[:, 0] > 0):
        loss = CrossEntropyFlat()
        pred = torch.randn(32, int(labels.max()) + 1)
        assert float(loss(pred, labels)) == float(F.cross_entropy(pred, labels.long()))
        dataset = TensorDataset(inputs, labels)
        data = ember.Data.from_loaders(DataLoader(dataset, batch_size=8, shuffle=True),
                                       DataLoader(dataset, batch_size=8))
        learn = ember.Learner(data, nn.Linear(3, data.n_out), metrics=["accuracy"],
                              device="cpu", quiet=True)
        learn.fit(1)
        assert 0 <= learn.validate()["accuracy"] <= 1
