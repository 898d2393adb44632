from __future__ import annotations

import math

import pytest
import torch

import ember


def run(metric: ember.Metric, preds, targets, batches: int = 2) -> float:
    metric.reset()
    preds, targets = torch.as_tensor(preds), torch.as_tensor(targets)
    for p, t in zip(preds.chunk(batches), targets.chunk(batches)):
        metric.update(p, t)
    return metric.compute()


def test_accuracy_error_rate_and_top_k():
    preds = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.5, 0.4, 0.1]])
    targets = torch.tensor([1, 0, 1, 1])
    assert run(ember.Accuracy(), preds, targets) == 0.5
    assert run(ember.ErrorRate(), preds, targets) == 0.5
    assert run(ember.TopKAccuracy(k=2), preds, targets) == 1.0


def test_f_beta_matches_hand_computed_values():
    # predicted [1, 0, 1, 1, 0, 1], actual [1, 0, 0, 1, 1, 1]: tp=3 fp=1 fn=1 for class 1
    logits = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0],
                           [0.0, 1.0]])
    targets = torch.tensor([1, 0, 0, 1, 1, 1])
    assert run(ember.FBeta(average="binary"), logits, targets) == pytest.approx(0.75)
    # class 0: tp=1 fp=1 fn=1 -> 0.5; macro = (0.5 + 0.75) / 2
    assert run(ember.FBeta(), logits, targets) == pytest.approx(0.625)
    # F2 for class 1: 5 * 3 / (5 * 3 + 4 * 1 + 1) = 0.75
    assert run(ember.FBeta(beta=2, average="binary"), logits, targets) == pytest.approx(0.75)


def test_roc_auc_by_rank_with_ties():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.4])
    targets = torch.tensor([0, 0, 1, 1, 1])
    # pairs (pos, neg): (0.35,0.1)=1 (0.35,0.4)=0 (0.8,*)=2 (0.4,0.1)=1 (0.4,0.4)=0.5 -> 4.5/6
    assert run(ember.RocAuc(), scores, targets, batches=1) == pytest.approx(0.75)
    two_logits = torch.stack([torch.zeros(5), scores], dim=1)
    assert run(ember.RocAuc(), two_logits, targets) == pytest.approx(0.75)
    assert math.isnan(run(ember.RocAuc(), scores, torch.zeros(5, dtype=torch.long), 1))


def test_roc_auc_of_scores_holding_nan_is_nan_not_a_ranking():
    scores = torch.tensor([0.1, float("nan"), 0.35, 0.8, 0.4])
    assert math.isnan(run(ember.RocAuc(), scores, torch.tensor([0, 0, 1, 1, 1]), batches=1))


def test_roc_auc_skips_targets_equal_to_ignore_index_as_accuracy_does():
    # -100 (padding, void) counted as a negative: the padded item's high score ranked above a
    # real negative's, and the AUC of a perfect ranking fell from 1.0 to 4/6
    scores = torch.tensor([0.1, 0.4, 0.6, 0.9, 0.95])
    targets = torch.tensor([0, 0, 1, 1, -100])
    assert run(ember.RocAuc(), scores, targets, batches=1) == 1.0
    two_logits = torch.stack([torch.zeros(5), scores], dim=1)
    assert run(ember.RocAuc(), two_logits, targets) == 1.0
    three = torch.tensor([[3.0, 0, 0], [0, 3.0, 0], [0, 0, 3.0], [0, 3.0, 0], [3.0, 0, 0]])
    assert run(ember.RocAuc(), three, torch.tensor([0, 1, 2, -100, -100])) == 1.0
    # ignore_index=None counts -100 as any other class: a negative, as before
    assert run(ember.RocAuc(ignore_index=None), two_logits, targets) == pytest.approx(4 / 6)
    # multi-label: an ignored entry leaves its item out of that label only
    labels = torch.tensor([[0.0, 1.0], [1.0, 0.0], [-100.0, 1.0], [1.0, 0.0]])
    multi = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.9, 0.7], [0.7, 0.1]])
    assert run(ember.RocAuc(multi_label=True), multi, labels) == 1.0
    assert math.isnan(run(ember.RocAuc(), scores, torch.full((5,), -100)))  # nothing counted


def test_regression_metrics():
    preds = torch.tensor([[2.5], [0.0], [2.0], [8.0]])
    targets = torch.tensor([3.0, -0.5, 2.0, 7.0])
    assert run(ember.RMSE(), preds, targets) == pytest.approx(math.sqrt(0.375))
    assert run(ember.MAE(), preds, targets) == pytest.approx(0.5)
    assert run(ember.R2(), preds, targets) == pytest.approx(0.9486081370449679)  # sklearn's doc


@pytest.mark.parametrize("metric", [ember.RMSE, ember.MAE, ember.R2])
def test_regression_predictions_of_another_shape_than_the_targets_are_refused(metric):
    # one item of (1, 2) predictions against a (1,) target broadcast silently (RMSE 2.24 from
    # two made-up pairs); four items were torch's bare "size of tensor a (8) must match"
    for preds, targets in ((torch.ones(1, 2), torch.zeros(1)), (torch.ones(4, 2), torch.zeros(4)),
                           (torch.ones(2, 1), torch.zeros(1, 2))):
        shapes = rf"\({', '.join(map(str, preds.shape))}\).*\({targets.shape[0]},"
        with pytest.raises(ember.TrainingError, match=rf"^{metric().name}: .*shape {shapes}"):
            metric().update(preds, targets)
    # the shapes that mean one value per item, or k per item, are taken as before
    assert run(metric(), torch.ones(4), torch.ones(4, 1)) in (0.0, 1.0)
    assert run(metric(), torch.ones(4, 3), torch.ones(4, 3)) in (0.0, 1.0)


def test_multi_label_accuracy():
    preds = torch.tensor([[4.0, -4.0, 4.0], [-4.0, -4.0, 4.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert run(ember.AccuracyMulti(), preds, targets) == pytest.approx(5 / 6)


def test_sums_accumulate_in_place_without_keeping_a_graph():
    metric = ember.Accuracy()
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    metric.update(logits, torch.tensor([0, 1, 1]))
    correct = metric.correct
    metric.update(logits, torch.tensor([0, 0, 0]))
    assert metric.correct is correct  # the same tensor, added to in place
    assert metric.compute() == pytest.approx(4 / 6)
    metric.reset()
    metric.update(logits, torch.tensor([1, 1, 1]))
    assert metric.compute() == pytest.approx(1 / 3)  # reset starts from zero, not the old sum

    rmse = ember.RMSE()  # its sums come from outputs that carry a graph in training
    preds = torch.tensor([[1.0], [3.0]], requires_grad=True)
    for _ in range(2):
        rmse.update(preds * 1.0, torch.tensor([1.0, 1.0]))
    assert not rmse.squared_error.requires_grad and rmse.squared_error.dtype == torch.float64
    assert rmse.compute() == pytest.approx(math.sqrt(2.0))


def test_top_k_scores_sequence_outputs_per_position_like_accuracy():
    # a language model's logits (N, T, V) against tokens (N, T): each position is one item
    logits = torch.tensor([[[0.1, 0.9, 0.0, 0.3], [0.8, 0.1, 0.2, 0.3]],
                           [[0.2, 0.3, 0.5, 0.0], [0.5, 0.4, 0.1, 0.0]],
                           [[0.6, 0.3, 0.1, 0.0], [0.1, 0.2, 0.7, 0.0]],
                           [[0.0, 0.1, 0.2, 0.9], [0.9, 0.0, 0.1, 0.2]]])
    tokens = torch.tensor([[1, 2], [1, 0], [2, 1], [3, 3]])
    # top-2 per position: {1,3} {0,3} | {2,1} {0,1} | {0,1} {2,1} | {3,2} {0,3}: 6 hits of 8
    assert run(ember.TopKAccuracy(k=2), logits, tokens) == pytest.approx(6 / 8)
    with pytest.raises(ember.TrainingError, match=r"k=10 .* 4 classes"):  # k over the vocab
        run(ember.TopKAccuracy(k=10), logits, tokens)
    assert run(ember.Accuracy(), logits, tokens) == pytest.approx(3 / 8)


def test_macro_f1_averages_the_classes_that_occur_like_scikit_learn():
    # 4 outputs, but class 3 is neither a target nor predicted in this validation set:
    # per class F1 0: 2/3, 1: 2/3, 2: 1 -> (2/3 + 2/3 + 1) / 3 (sklearn's f1_score, macro)
    logits = torch.eye(4)[[0, 1, 2, 0]] * 5
    targets = torch.tensor([0, 1, 2, 1])
    assert run(ember.FBeta(), logits, targets) == pytest.approx(7 / 9)
    # multi-label keeps every label column (sklearn does too): column 2 is never set -> 0
    multi_targets = torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0]])
    multi_logits = torch.tensor([[5.0, -5, -5], [-5, 5, -5], [5, -5, -5]])
    expected = (1 + 2 / 3 + 0) / 3
    assert run(ember.FBeta(multi_label=True), multi_logits, multi_targets,
               batches=3) == pytest.approx(expected)


def test_r2_of_constant_targets_is_finite_like_scikit_learn():
    # a validation set whose targets are all equal: sklearn's r2_score (force_finite=True)
    # gives 1.0 for exact predictions and 0.0 otherwise, instead of NaN or -inf
    targets = torch.full((6,), 2.0)
    assert run(ember.R2(), targets[:, None].clone(), targets) == 1.0
    assert run(ember.R2(), targets[:, None] + 0.5, targets) == 0.0
    # all equal, but the running sums leave a rounding remainder (it gave about -1.2e11)
    targets = torch.full((7,), 123.456)
    assert run(ember.R2(), targets[:, None] + 0.5, targets) == 0.0
    assert math.isnan(ember.R2().compute())  # nothing measured


def test_padded_positions_of_sequence_targets_count_for_nothing_as_in_the_loss():
    # (N, T, C) logits against (N, T) tokens padded with -100, the value the losses skip and
    # get_preds pads with: predicted 1 0 | 2 1, actual 1 0 | 2 pad
    logits = torch.eye(3)[torch.tensor([[1, 0], [2, 1]])] * 4
    tokens = torch.tensor([[1, 0], [2, -100]])
    assert run(ember.Accuracy(), logits, tokens) == 1.0  # it was 3/4: padding was a miss
    assert run(ember.ErrorRate(), logits, tokens) == 0.0
    assert run(ember.TopKAccuracy(k=1), logits, tokens) == 1.0
    assert run(ember.FBeta(), logits, tokens) == 1.0  # it raised "Class values must be ..."
    assert run(ember.Dice(), logits, tokens) == 1.0
    # the padding's prediction (1) is no false positive: binary F1 of class 1 stays 1
    assert run(ember.FBeta(average="binary"), logits, tokens) == 1.0
    assert run(ember.Accuracy(ignore_index=None), logits, tokens) == 0.75  # counted on demand


def test_r2_of_several_targets_averages_each_target_like_scikit_learn():
    # two targets on different scales, each predicted by its own mean: no variance explained
    targets = torch.tensor([[0.0, 100.0], [1.0, 101.0], [2.0, 99.0], [3.0, 100.0]])
    means = targets.mean(0, keepdim=True).expand_as(targets)
    assert run(ember.R2(), means, targets) == pytest.approx(0.0)  # pooled, it read 0.9996
    # sklearn's r2_score example (multioutput="uniform_average"): the mean of per-column R²
    targets = torch.tensor([[0.5, 1.0], [-1.0, 1.0], [7.0, -6.0]], dtype=torch.float64)
    preds = torch.tensor([[0.0, 2.0], [-1.0, 2.0], [8.0, -5.0]], dtype=torch.float64)
    per_column = 1 - ((targets - preds) ** 2).sum(0) / ((targets - targets.mean(0)) ** 2).sum(0)
    assert run(ember.R2(), preds, targets) == pytest.approx(float(per_column.mean()))
    # a constant column scores as it would alone (1.0 exact here) beside a varying one
    targets = torch.tensor([[1.0, 2.0], [2.0, 2.0], [3.0, 2.0]])
    assert run(ember.R2(), targets.clone(), targets) == 1.0


@pytest.mark.parametrize("k", [3, 10])
def test_top_k_with_k_at_or_over_the_number_of_classes_is_refused_naming_both(k):
    # every target is among the top 3 of 3 classes: it scored 1.0 every epoch, silently
    # (metrics=["top_k_accuracy"], k=5, on a 3-class data set did)
    metric = ember.TopKAccuracy(k=k)
    with pytest.raises(ember.TrainingError,
                       match=rf"^top_{k}_accuracy: k={k} .* only 3 classes.* always 1\.0"):
        metric.update(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))
    scores = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    assert run(ember.TopKAccuracy(k=2), scores, [0, 2, 2, 0]) == 0.5  # k under 3 classes


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "5"])
def test_top_k_refuses_a_k_that_is_not_a_whole_number_of_at_least_one(k):
    # k=0 scored 0.0 every epoch; k=2.5 failed in the first validation inside torch.topk
    with pytest.raises(ValueError, match=r"^TopKAccuracy\(k=.*\): k must be a whole number"):
        ember.TopKAccuracy(k=k)


@pytest.mark.parametrize("metric", [ember.Accuracy(), ember.ErrorRate(), ember.TopKAccuracy(2),
                                    ember.AccuracyMulti(), ember.RMSE(), ember.MAE()])
def test_a_metric_that_measured_no_item_is_nan_not_a_perfect_or_worst_score(metric):
    # a validation pass cancelled before its first batch used to score RMSE and MAE 0.0 (a
    # save-best on them kept that unvalidated epoch) and accuracy 0.0 (error rate 1.0)
    metric.reset()
    assert math.isnan(metric.compute())


def test_accuracy_of_targets_that_are_all_padding_is_nan():
    assert math.isnan(run(ember.Accuracy(), torch.zeros(4, 3), torch.full((4,), -100)))


def test_r2_of_targets_far_from_zero_keeps_their_spread():
    # targets near 10⁶ that vary by ±1.5: Σy² - (Σy)²/n about 0 cancelled their spread away and
    # R² read 0.0 (taken for constant targets); about a shift it is the textbook value, which is
    # the same as for the targets moved to 0: 1 - 2 / 10 = 0.8 (hand-derived)
    base = torch.tensor([-1.5, -0.5, 0.5, 1.5, 0.0], dtype=torch.float64)  # Σ(y - ȳ)² = 5
    preds = base + torch.tensor([0.5, -0.5, 0.5, -0.5, 0.0], dtype=torch.float64)  # SS_res = 1
    assert run(ember.R2(), preds, base, batches=3) == pytest.approx(0.8)
    for offset in (1e6, 1e8):
        assert run(ember.R2(), preds + offset, base + offset, batches=3) == pytest.approx(0.8)
    # constant targets far from 0 still score as sklearn's force_finite does
    targets = torch.full((7,), 1e6 + 0.1, dtype=torch.float64)
    assert run(ember.R2(), targets + 0.5, targets, batches=3) == 0.0
    assert run(ember.R2(), targets.clone(), targets, batches=3) == 1.0


def test_multiclass_roc_auc_is_not_tied_by_saturated_softmax():
    # class 0's score for four items, each sure of its class (margins 20 to 35): the items of
    # class 0 rank 35 > 30 above the others, so every one-vs-rest AUC is 1.0. float32 softmax
    # rounded P(class 0) of both class-0 items and of the class-1 item at margin 20 to 1.0,
    # a tie, and class 0's AUC read 0.75 (macro 0.9167)
    logits = torch.tensor([[35.0, 0.0, 0.0], [30.0, 0.0, 0.0], [20.0, 0.0, 0.0],
                           [0.0, 0.0, 25.0]])
    targets = torch.tensor([0, 0, 1, 2])
    assert run(ember.RocAuc(), logits, targets) == 1.0


def test_multi_label_decisions_of_half_precision_logits_are_taken_as_in_float32():
    # logits 0.005 and 0.02 are "yes" (sigmoid > 0.5), -0.005 "no"; bf16's sigmoid rounded
    # sigmoid(0.005) to 0.5 and called it "no": accuracy 2/3 and F1 1/3 under bf16 autocast
    logits = torch.tensor([[0.005, -0.005, 0.02]])
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        assert run(ember.AccuracyMulti(), logits.to(dtype), targets, batches=1) == 1.0
        # label 1 is never true nor predicted: it counts 0 in the macro average (as
        # scikit-learn's zero_division=0), so F1 = (1 + 0 + 1) / 3
        assert run(ember.FBeta(multi_label=True), logits.to(dtype), targets,
                   batches=1) == pytest.approx(2 / 3)


class ThreadRanks:
    """The collectives a metric's ``synchronise`` uses, for ranks that are threads of this
    process (a barrier between them), so cross-rank reductions are checked without torchrun."""

    def __init__(self, size: int) -> None:
        import threading

        self.size, self.barrier, self.slots = size, threading.Barrier(size), [None] * size
        self.ranks = threading.local()

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def get_world_size(self) -> int:
        return self.size

    def _exchange(self, value):
        self.slots[self.ranks.rank] = value
        self.barrier.wait()
        values = list(self.slots)
        self.barrier.wait()  # every rank has read before the next exchange writes
        return values

    def all_gather_object(self, gathered: list, value) -> None:
        gathered[:] = self._exchange(value)

    def all_reduce(self, tensor: torch.Tensor) -> None:
        tensor.copy_(sum(self._exchange(tensor.clone())))

    def run(self, work) -> list:
        import threading

        results, errors = [None] * self.size, []

        def rank(index: int) -> None:
            self.ranks.rank = index
            try:
                results[index] = work(index)
            except Exception as error:  # pragma: no cover - shown by the assertion below
                errors.append(error)
                self.barrier.abort()

        threads = [threading.Thread(target=rank, args=(index,)) for index in range(self.size)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors, errors
        return results


@pytest.mark.parametrize("metric", [lambda: ember.R2(), lambda: ember.FBeta(average="macro")])
def test_synchronise_gives_every_rank_the_score_of_all_items_a_rank_without_any_included(
        monkeypatch, metric):
    """Ranks that measured different items (R2: about different shifts, each rank's first
    target) and one that measured none all end with the score of every item in one process."""
    import ember.metrics

    ranks = ThreadRanks(3)
    monkeypatch.setattr(ember.metrics, "dist", ranks)
    monkeypatch.setattr("ember.distributed._backend_device", lambda: torch.device("cpu"))
    regression = isinstance(metric(), ember.R2)
    generator = torch.Generator().manual_seed(0)
    if regression:
        targets = 1000 + torch.randn(12, 2, generator=generator, dtype=torch.float64)
        preds = targets + 0.3 * torch.randn(12, 2, generator=generator, dtype=torch.float64)
    else:
        targets = torch.randint(0, 4, (12,), generator=generator)
        preds = torch.randn(12, 4, generator=generator)
    shares = [slice(0, 5), slice(5, 12), slice(0, 0)]  # rank 2 measures nothing

    def score(rank: int) -> float:
        measured = metric()
        if shares[rank].stop:
            measured.update(preds[shares[rank]], targets[shares[rank]])
        measured.synchronise()
        return measured.compute()

    whole = run(metric(), preds, targets, batches=1)
    assert ranks.run(score) == [pytest.approx(whole, rel=1e-12)] * 3


@pytest.mark.parametrize("metric", [ember.Accuracy(), ember.ErrorRate(), ember.TopKAccuracy(3),
                                    ember.FBeta()])
def test_a_class_metric_refuses_one_score_per_item_naming_what_to_use(metric):
    # metrics=["accuracy"] on regression targets scored 0.0 every epoch, silently: the top
    # class of a single column is always 0
    with pytest.raises(ember.TrainingError, match=rf"^{metric.name}: .* one score per item"):
        run(metric, torch.randn(4, 1), torch.randn(4, 1))
    with pytest.raises(ember.TrainingError, match="'rmse'"):
        run(metric, torch.randn(4), torch.tensor([0, 1, 0, 1]))


@pytest.mark.parametrize("metric", [ember.Accuracy(), ember.FBeta()])
def test_a_single_label_metric_refuses_multi_hot_targets_naming_accuracy_multi(metric):
    # it was torch's "The size of tensor a (4) must match the size of tensor b (12)"
    with pytest.raises(ember.TrainingError, match=r"12 labels.*'accuracy_multi'"):
        run(metric, torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float(), batches=1)


def test_multi_label_accuracy_refuses_class_index_targets_naming_the_shapes():
    # accuracy_multi on single-label targets was torch's size error, naming no metric
    with pytest.raises(ember.TrainingError, match=r"^accuracy_multi: .*\(4, 2\).*\(4,\)"):
        run(ember.AccuracyMulti(), torch.randn(4, 2), torch.tensor([0, 1, 1, 0]), batches=1)


def test_roc_auc_refuses_regression_targets_naming_the_value_and_what_to_use():
    # one score per item against regression values scored a number (0.60 here), silently
    torch.manual_seed(0)
    with pytest.raises(ember.TrainingError, match=r"^roc_auc: .* 0 or 1.*'rmse'"):
        run(ember.RocAuc(), torch.randn(20, 1), torch.randn(20) * 3 + 5)
    with pytest.raises(ember.TrainingError, match=r"^roc_auc: .*whole class indices"):
        run(ember.RocAuc(), torch.randn(20, 3), torch.rand(20) * 2)
    # labels as floats 0.0 / 1.0 (a binary loss's targets) are class labels
    labels = torch.tensor([0.0, 1.0] * 10)
    assert run(ember.RocAuc(), labels[:, None] * 2 - 1, labels) == 1.0


def test_roc_auc_refuses_targets_of_the_wrong_shape_at_the_batch_not_at_compute():
    # both failed in compute, at the end of the validation pass, with torch's IndexError
    # ("The shape of the mask [60] ... does not match", "too many indices for tensor")
    multi_hot = (torch.rand(20, 3) > 0.5).float()
    with pytest.raises(ember.TrainingError, match=r"^roc_auc: .*RocAuc\(multi_label=True\)"):
        ember.RocAuc().update(torch.randn(20, 3), multi_hot)
    with pytest.raises(ember.TrainingError, match=r"^roc_auc: .*multi_label=True.*RocAuc\(\)"):
        ember.RocAuc(multi_label=True).update(torch.randn(20, 3), torch.randint(0, 3, (20,)))
    with pytest.raises(ember.TrainingError, match=r"^roc_auc: .* 0 or 1"):
        ember.RocAuc(multi_label=True).update(torch.randn(20, 3), multi_hot * 3)


def test_f_beta_refuses_a_pos_label_the_model_has_no_class_for_at_the_batch():
    # it was torch's IndexError in compute, after the whole validation pass
    with pytest.raises(ember.TrainingError, match=r"^f1_binary: pos_label=3 .* 3 classes"):
        ember.FBeta(average="binary", pos_label=3).update(torch.randn(4, 3),
                                                          torch.tensor([0, 1, 2, 0]))
    # multi-label on class indices was torch's "The size of tensor a (3) must match ..."
    with pytest.raises(ember.TrainingError, match=r"^f1: predictions of shape \(4, 3\)"):
        ember.FBeta(multi_label=True).update(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]))


@pytest.mark.parametrize("options", [{"beta": -1.0}, {"beta": float("nan")}, {"beta": "1"},
                                     {"pos_label": -1}, {"pos_label": 1.5}])
def test_f_beta_refuses_a_negative_beta_or_a_pos_label_that_is_no_class_index(options):
    # FBeta(beta=-1) was a metric named 'f-1' that scored a number of no meaning
    with pytest.raises(ValueError, match=rf"^FBeta\({next(iter(options))}="):
        ember.FBeta(**options)
