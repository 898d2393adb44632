"""The encoder-decoder: shapes, padding, and when teacher forcing is used."""

from __future__ import annotations

import pytest
import torch

from ember_text.seq2seq.models import Seq2SeqRNN

SRC = torch.tensor([[4, 5, 6, 7, 2], [8, 9, 2, 0, 0]])
TGT = torch.tensor([[4, 5, 6, 2], [7, 2, 0, 0]])


def model(**options: object) -> Seq2SeqRNN:
    torch.manual_seed(0)
    config = {"hidden_size": 16, "emb_size": 8, "dropout": 0.0, "max_len": 6, **options}
    return Seq2SeqRNN(12, 10, **config)  # type: ignore[arg-type]


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("attention", ["additive", "multiplicative"])
def test_shapes_and_padding_does_not_change_outputs(rnn: str, attention: str) -> None:
    net = model(rnn=rnn, attention=attention).eval()
    assert net(SRC, TGT).shape == (2, 4, 10)
    assert net(SRC).shape == (2, 6, 10)  # no target: max_len steps
    alone = net(SRC[1:, :3], TGT[1:])
    assert torch.allclose(net(SRC, TGT)[1:], alone, atol=1e-5)


def test_teacher_forcing_only_in_training_with_a_target() -> None:
    net = model()
    other = TGT.clone()
    other[:, 0] = 9  # change the first target token
    net.train()
    net.teacher_forcing_ratio = 1.0
    forced, forced_other = net(SRC, TGT), net(SRC, other)
    # step 0 never sees the target; step 1 reads the true token 0 under teacher forcing
    assert torch.allclose(forced[:, 0], forced_other[:, 0])
    assert not torch.allclose(forced[:, 1], forced_other[:, 1])
    net.teacher_forcing_ratio = 0.0
    assert torch.allclose(net(SRC, TGT), net(SRC, other))
    net.eval()
    net.teacher_forcing_ratio = 1.0  # eval mode ignores the ratio: free-running decoding
    assert torch.allclose(net(SRC, TGT), net(SRC, other))


def test_per_sample_teacher_forcing_mixes_within_a_batch() -> None:
    net = model()
    net.train()
    net.teacher_forcing_ratio, net.teacher_forcing_mode = 0.5, "sample"
    torch.manual_seed(1)
    out = net(SRC.repeat(32, 1), TGT.repeat(32, 1))
    # with per-sample coins, identical inputs get different decoder inputs at step 1
    assert not torch.allclose(out[0::2, 1], out[0:1, 1].expand(32, -1))


@pytest.mark.parametrize("mode", ["step", "sample"])
def test_teacher_forcing_coins_leave_the_global_random_stream_alone(mode: str) -> None:
    """Dropout masks (torch's global stream) are the same whatever the ratio, so schedules
    compared on one seed differ only where their ratios do; the coins repeat per seed."""
    outputs, states = [], []
    for ratio in (1.0, 0.5, 0.5):
        net = model(dropout=0.3).train()  # seeds torch, then builds the model
        net.teacher_forcing_ratio, net.teacher_forcing_mode = ratio, mode
        torch.manual_seed(1)
        outputs.append(net(SRC.repeat(8, 1), TGT.repeat(8, 1)))
        states.append(torch.random.get_rng_state())
    assert torch.equal(states[0], states[1])  # coins drawn (0.5) or not (1.0): same stream
    assert torch.equal(outputs[1], outputs[2])  # same seed, same coins


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="attention must be one of"):
        model(attention="dot-product-ish")
    with pytest.raises(ValueError, match="rnn must be one of"):
        model(rnn="transformer")
