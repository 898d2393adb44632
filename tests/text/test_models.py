"""Models: AWD-LSTM dropouts, tied decoder, masking, transformer, generation."""

from __future__ import annotations

import copy

import pytest
import torch

import ember
from ember_text.models import (
    AWDLSTMEncoder,
    MaskedConcatPool,
    TextClassifier,
    TransformerEncoder,
    VariationalDropout,
    WeightDropLSTM,
    awd_lstm_classifier,
    awd_lstm_lm,
    generate,
    transformer_classifier,
    transformer_lm,
)


def test_dropouts_act_in_training_only() -> None:
    torch.manual_seed(0)
    dropout = VariationalDropout(0.5).train()
    out = dropout(torch.ones(3, 7, 5))
    assert torch.equal(out[:, 0], out[:, 6]) and bool((out == 0).any())
    assert torch.equal(dropout.eval()(torch.ones(2, 2, 2)), torch.ones(2, 2, 2))
    layer = WeightDropLSTM(4, 6, weight_p=0.9)
    x = torch.randn(2, 5, 4)
    layer.train()
    first, second = layer(x)[0], layer(x)[0]
    assert not torch.allclose(first, second)  # a new weight mask each call
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    assert sorted(n for n, _ in layer.named_parameters()) == [
        "lstm.bias_hh_l0", "lstm.bias_ih_l0", "lstm.weight_hh_l0", "lstm.weight_ih_l0"]
    copy.deepcopy(layer)  # no stale non-leaf tensors on the module


def test_weight_dropout_trains_the_raw_weights() -> None:
    layer = WeightDropLSTM(3, 4, weight_p=0.5).train()
    layer(torch.randn(2, 3, 3))[0].sum().backward()
    assert layer.lstm.weight_hh_l0.grad is not None
    assert float(layer.lstm.weight_hh_l0.grad.abs().sum()) > 0


def test_embedding_dropout_drops_whole_words() -> None:
    torch.manual_seed(0)
    encoder = AWDLSTMEncoder(50, emb_size=8, hidden_size=8, embed_p=0.5).train()
    embedded = encoder.embed(torch.tensor([[5, 5, 5, 6, 7, 8, 9, 10, 11, 12]]))
    zero_rows = (embedded[0].abs().sum(-1) == 0).tolist()
    assert zero_rows[0] == zero_rows[1] == zero_rows[2]  # same word, same fate
    assert any(zero_rows)


def test_language_model_ties_decoder_and_carries_state() -> None:
    lm = awd_lstm_lm(60, emb_size=8, hidden_size=16, n_layers=2)
    assert lm.decoder.weight is lm.encoder.embedding.weight
    lm.eval()
    ids = torch.randint(2, 60, (2, 10))
    full = lm(ids)
    lm.reset()
    halves = torch.cat([lm(ids[:, :5]), lm(ids[:, 5:])], dim=1)  # state carried over
    assert torch.allclose(full, halves, atol=1e-5)
    lm.reset()
    assert not torch.allclose(lm(ids[:, 5:]), full[:, 5:], atol=1e-5)
    assert lm(torch.randint(2, 60, (3, 4))).shape == (3, 4, 60)  # batch size change resets


def test_padding_does_not_change_a_prediction() -> None:
    torch.manual_seed(0)
    for model in (awd_lstm_classifier(40, 3, emb_size=8, hidden_size=16),
                  transformer_classifier(40, 3, d_model=16, n_heads=2, n_layers=2)):
        model.eval()
        alone = model(torch.tensor([[2, 7, 9, 11]]))
        padded = model(torch.tensor([[2, 7, 9, 11, 1, 1, 1], [2, 5, 6, 7, 8, 9, 10]]))[:1]
        assert torch.allclose(alone, padded, atol=1e-5)


def test_pooling_every_layer_widens_the_head_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = awd_lstm_classifier(40, 3, emb_size=8, hidden_size=16, n_layers=2,
                                pool_layers="all").eval()
    assert model.head[0].num_features == 3 * (16 + 8)  # last, max and mean of both layers
    ids = torch.tensor([[2, 7, 9, 11]])
    outputs, _ = model.encoder.layer_outputs(ids)
    assert torch.equal(outputs[-1], model.encoder(ids)[0])
    alone = model(ids)
    padded = model(torch.tensor([[2, 7, 9, 11, 1, 1], [2, 5, 6, 7, 8, 9]]))[:1]
    assert torch.allclose(alone, padded, atol=1e-5)
    with pytest.raises(ember.TrainingError, match="has no layer_outputs"):
        TextClassifier(TransformerEncoder(40, d_model=16, n_heads=2, n_layers=1), 3,
                       pool_layers="all")
    with pytest.raises(ember.TrainingError, match="'last' or 'all'"):
        awd_lstm_classifier(40, 3, emb_size=8, hidden_size=16, pool_layers="first")


def test_masked_concat_pool() -> None:
    outputs = torch.tensor([[[1.0, -1.0], [3.0, -5.0], [100.0, 100.0]]])
    pooled = MaskedConcatPool()(outputs, torch.tensor([[True, True, False]]))
    assert pooled.tolist() == [[3.0, -5.0, 3.0, -1.0, 2.0, -3.0]]


def test_transformer_lm_is_causal() -> None:
    torch.manual_seed(0)
    lm = transformer_lm(30, d_model=16, n_heads=2, n_layers=2).eval()
    ids = torch.randint(2, 30, (1, 8))
    changed = ids.clone()
    changed[0, 6] = (ids[0, 6] + 1) % 28 + 2
    assert torch.allclose(lm(ids)[:, :6], lm(changed)[:, :6], atol=1e-5)


def test_transformer_lm_gives_logits_for_every_token_past_its_max_len() -> None:
    # a training chunk longer than max_len (BPTT jitter past a max_len set to bptt) got the
    # logits of its last max_len tokens only, and the loss failed on the shapes
    torch.manual_seed(0)
    lm = transformer_lm(30, d_model=16, n_heads=2, n_layers=1, max_len=8).eval()
    ids = torch.randint(2, 30, (2, 13))
    logits = lm(ids)
    assert logits.shape == (2, 13, 30)
    # the last max_len tokens read a full window (what generation uses), the first ones
    # the start of the text
    assert torch.allclose(logits[:, -8:], lm(ids[:, -8:]), atol=1e-5)
    assert torch.allclose(logits[:, :5], lm(ids[:, :5]), atol=1e-5)


def test_parameter_groups_for_gradual_unfreezing() -> None:
    model = awd_lstm_classifier(30, 2, emb_size=8, hidden_size=16, n_layers=3)
    groups = model.param_groups()
    assert len(groups) == 5  # embedding, 3 LSTMs, head
    assert groups[-1][0] is model.head[0].weight


def test_generation_greedy_is_deterministic_and_avoids_banned() -> None:
    torch.manual_seed(0)
    for lm in (awd_lstm_lm(25, emb_size=8, hidden_size=16), transformer_lm(
            25, d_model=16, n_heads=2, n_layers=1)):
        first = generate(lm, [2, 5, 6], 6, temperature=0, banned=[0, 1])
        assert first == generate(lm, [2, 5, 6], 6, temperature=0, banned=[0, 1])
        assert len(first) == 6 and not {0, 1} & set(first)
        sampled = generate(lm, [2, 5], 30, temperature=1.5,
                           generator=torch.Generator().manual_seed(1))
        assert len(set(sampled)) > 3


def test_generation_refuses_a_top_k_below_one_clearly() -> None:
    lm = awd_lstm_lm(25, emb_size=8, hidden_size=16)
    for top_k in (0, -3):  # 0 means "no filtering" elsewhere; here it was an IndexError
        with pytest.raises(ember.DataError, match="top_k must be at least 1"):
            generate(lm, [2, 5], 3, top_k=top_k)
    for top_k in (2.5, True, "5"):  # a TypeError from torch's topk, or True taken as 1
        with pytest.raises(ember.DataError, match=r"top_k must be at least 1.*whole number"):
            generate(lm, [2, 5], 3, top_k=top_k)
    assert len(generate(lm, [2, 5], 3, top_k=1)) == 3
    assert len(generate(lm, [2, 5], 3, top_k=None)) == 3


def test_generation_refuses_negative_lengths_and_temperatures_that_are_not_numbers() -> None:
    # a negative n_words returned the prompt alone and temperature=NaN raised deep in torch
    # (a 500 from ember serve, where clients send the options)
    lm = awd_lstm_lm(25, emb_size=8, hidden_size=16)
    with pytest.raises(ember.DataError, match=r"n_words \(the tokens to generate\) must be a "
                                              r"whole number of at least 0, got -1"):
        generate(lm, [2, 5], -1)
    for temperature in (float("nan"), float("inf"), -0.5):
        with pytest.raises(ember.DataError, match="temperature must be a finite number"):
            generate(lm, [2, 5], 3, temperature=temperature)
    assert generate(lm, [2, 5], 0) == []


def test_generation_takes_any_finite_positive_temperature() -> None:
    # before, a temperature near 0 (1e-300: "almost greedy") or a huge one (1e308) made the
    # scaled logits overflow to inf/nan and torch.multinomial raised a RuntimeError (a 500
    # from ember serve, where clients send the options)
    torch.manual_seed(0)
    lm = awd_lstm_lm(25, emb_size=8, hidden_size=16)
    greedy = generate(lm, [2, 5], 4, temperature=0)
    for temperature in (1e-300, 5e-324):  # the most likely token, as greedy decoding
        assert generate(lm, [2, 5], 4, temperature=temperature,
                        generator=torch.Generator().manual_seed(1)) == greedy
    assert len(generate(lm, [2, 5], 4, temperature=1e308, top_k=3)) == 4  # near uniform


def test_transformer_classifier_takes_texts_longer_than_its_max_len() -> None:
    # a classifier built on a transformer language model's encoder (max_len 512) gets texts
    # of up to the data's max_len (1024): it reads their first max_len tokens
    torch.manual_seed(0)
    model = transformer_classifier(50, 2, d_model=16, n_heads=2, n_layers=1, max_len=8).eval()
    ids = torch.randint(2, 50, (2, 12))
    ids[1, 5:] = 1  # the second text is short and padded
    out = model(ids)
    assert out.shape == (2, 2)
    assert torch.allclose(out[0], model(ids[:1, :8])[0], atol=1e-6)
    assert torch.allclose(out[1], model(ids[1:, :5])[0], atol=1e-6)
