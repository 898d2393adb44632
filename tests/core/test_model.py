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
