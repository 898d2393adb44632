"""Drawing attention: which source tokens the decoder looked at for each output token.

Example:
    >>> # show_attention(learn, "quarante-deux").savefig("attention.png")
"""

from __future__ import annotations

from typing import Any

from ember.utils import new_figure

__all__ = ["show_attention"]


def show_attention(predictor: Any, text: str, beam: int = 1, max_len: int | None = None,
                   axis: Any = None) -> Any:
    """Translate ``text`` and draw the attention matrix (output tokens x source tokens).

    ``predictor`` is a :class:`ember.Learner` or what :func:`ember.load` returns (anything with
    ``predict(item, with_attention=True, ...)``). Returns the matplotlib figure
    (:func:`ember.utils.new_figure`), or draws into ``axis``, a matplotlib
    ``Axes`` of yours, and returns its figure; the
    :class:`~ember_text.seq2seq.data.Translation` is on ``figure.translation``.

    Example:
        >>> # figure = show_attention(learn, "quarante-deux"); figure.translation.text -> '42'
    """
    translation = predictor.predict(text, beam=beam, max_len=max_len, with_attention=True)
    width = max(4.0, 0.35 * len(translation.source_tokens) + 1.5)
    height = max(2.5, 0.35 * len(translation.tokens) + 1.5)
    figure, axis = new_figure(ax=axis, figsize=(width, height))
    axis.imshow(translation.attention, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    axis.set_xticks(range(len(translation.source_tokens)))
    axis.set_xticklabels([repr(t)[1:-1] for t in translation.source_tokens], rotation=90)
    axis.set_yticks(range(len(translation.tokens)))
    axis.set_yticklabels([repr(t)[1:-1] for t in translation.tokens])
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    axis.set_title(f"{text!r} → {translation.text!r}")
    figure.tight_layout()
    figure.translation = translation
    return figure
