"""Callbacks of the text plugin.

Example:
    >>> ResetState().order == ember.Order.FIRST
    True
"""

from __future__ import annotations

import ember

__all__ = ["ResetState"]


class ResetState(ember.Callback):
    """Reset a stateful model (a recurrent language model's carried hidden state) at the start
    of every training and validation pass, and after each validation pass (``validate``,
    ``get_preds``), so no pass, nor a later forward call such as ``show_results``, continues
    from another's state. ``ember.learner(LanguageModelData...)`` adds it by default.

    Example:
        >>> # learn = ember.Learner(lm_data, model, cbs=[ResetState()])
    """

    order = ember.Order.FIRST

    def _reset(self) -> None:
        reset = getattr(self.learn.model, "reset", None)
        if callable(reset):
            reset()

    def before_train(self) -> None:
        self._reset()

    def before_validate(self) -> None:
        self._reset()

    def after_validate(self) -> None:
        self._reset()

    def after_fit(self) -> None:
        self._reset()
