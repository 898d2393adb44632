from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

import ember
from ember.model import split_groups


class MeanEmbedding(nn.Module):
    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embedding(tokens).mean(dim=1)


def tied_model(vocab: int = 10, size: int = 4) -> ember.BodyHead:
    """A body whose embedding is tied to the head's weights (as a language model's decoder)."""
    embedding = nn.Embedding(vocab, size)
    head = nn.Linear(size, vocab)
    head.weight = embedding.weight
    return ember.BodyHead(MeanEmbedding(embedding), head)


def test_a_parameter_shared_between_groups_is_in_one_group_only():
    model = tied_model()
    groups = split_groups(model)
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert any(p is model.body.embedding.weight for p in groups[0])  # the first group keeps it
    doubled = split_groups(model, lambda m: [list(m.parameters()), list(m.head.parameters())])
    assert sum(len(group) for group in doubled) == len(list(model.parameters()))


def test_a_model_with_tied_weights_trains_and_freezes():
    ember.seed(0)
    tokens, labels = torch.randint(0, 10, (64, 5)), torch.randint(0, 10, (64,))
    train_dl, valid_dl, _ = ember.make_loaders(TensorDataset(tokens, labels),
                                               TensorDataset(tokens, labels), bs=16)
    data = ember.Data.from_loaders(train_dl, valid_dl, classes=list(range(10)))
    learn = ember.Learner(data, tied_model(), quiet=True)
    learn.fit(1, 1e-2)
    learn.freeze()
    assert not learn.model.body.embedding.weight.requires_grad
    assert learn.model.head.bias.requires_grad


def test_a_batchnorm_without_parameters_follows_the_layer_before_it_when_frozen():
    # affine=False: found through its parameters, it was never frozen, and under
    # bn_policy="freeze" its running statistics went on moving in a frozen body
    from ember.model import frozen_bn_modules

    body = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, affine=False), nn.ReLU())
    head = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, affine=False))
    model = ember.BodyHead(body, head)
    assert frozen_bn_modules(model, split_groups(model), 1) == [body[1]]
    assert frozen_bn_modules(model, split_groups(model), 0) == []
    x, y = torch.randn(64, 4), torch.randint(0, 3, (64,))
    data = ember.Data.from_loaders(
        torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
        torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=16))
    learn = ember.Learner(data, model, quiet=True, bn_policy="freeze")
    learn.freeze()
    before = body[1].running_mean.clone()
    learn.fit(1)
    assert torch.equal(body[1].running_mean, before)
    assert not torch.equal(head[1].running_mean, torch.zeros(3))  # the head's still trains
