"""Test-time augmentation, confusion matrix and top losses on a trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ember
from ember_vision import FASHION_MNIST_CLASSES, ImageData, Interpretation, tta


@pytest.fixture(scope="module")
def learn(fashion):
    (x, y), (test_x, test_y) = fashion
    ember.seed(0)
    # trained with the augmentation test-time augmentation averages over (the default), and
    # long enough for a model worth augmenting: at two epochs its validation accuracy was 0.33
    # to 0.39 depending on the seed's stream, and TTA's margin over it a coin toss
    data = ImageData.from_arrays(x[:600], y[:600], valid=(test_x, test_y),
                                 classes=FASHION_MNIST_CLASSES)
    learn = ember.learner(data, quiet=True)
    learn.fit_one_cycle(3, 5e-3)
    return learn


def test_tta_averages_augmented_predictions(learn):
    plain, targets = learn.get_preds()
    ember.seed(1)
    averaged, tta_targets = tta(learn, n=3)
    assert torch.equal(targets, tta_targets) and averaged.shape == plain.shape
    assert torch.allclose(averaged.sum(1), torch.ones(len(averaged)), atol=1e-4)
    assert not torch.allclose(averaged, plain)
    plain_accuracy = (plain.argmax(1) == targets).float().mean()
    tta_accuracy = (averaged.argmax(1) == targets).float().mean()
    assert tta_accuracy > plain_accuracy - 0.05  # augmentation is mild: no collapse
    identity = tta(learn, n=2, augment=lambda images: images)[0]
    assert torch.allclose(identity, plain, atol=1e-5)


@pytest.mark.parametrize("options", [{"n": 0}, {"n": -2}, {"n": 2.5}, {"beta": 1.5},
                                     {"beta": -0.1}])
def test_tta_refuses_a_pass_count_or_blend_that_gives_no_probabilities(learn, options):
    # n=0 once averaged no pass and gave beta * plain: rows summing to 0.25, not 1
    with pytest.raises(ember.DataError, match=r"n \(the number|beta \(the plain"):
        tta(learn, **options)


def test_tta_with_beta_one_is_the_plain_prediction(learn):
    plain, _ = learn.get_preds()
    assert torch.allclose(tta(learn, n=1, beta=1)[0], plain)


def test_confusion_matrix_and_top_losses(learn):
    interp = Interpretation.from_learner(learn)
    matrix = interp.confusion_matrix()
    assert matrix.shape == (10, 10) and matrix.sum() == 300
    assert np.array_equal(matrix.sum(1), np.full(10, 30))  # 30 test items per class
    accuracy = learn.validate()["accuracy"]
    assert matrix.trace() / 300 == pytest.approx(accuracy)
    confused = interp.most_confused()
    assert confused[0][2] == max(count for _, _, count in confused)
    losses, indices = interp.top_losses(5)
    assert torch.all(losses[:-1] >= losses[1:])
    assert torch.equal(interp.losses[indices], losses)
    assert float(losses[0]) == pytest.approx(float(interp.losses.max()))
    import matplotlib.pyplot as plt

    figure = interp.plot_top_losses(4)
    assert len([a for a in figure.axes if a.images]) == 4
    matrix_figure = interp.plot_confusion_matrix(normalize=True)
    assert len(matrix_figure.axes[0].texts) == 100  # one count per cell
    plt.close(figure)
    plt.close(matrix_figure)
    own, axis = plt.subplots()
    assert interp.plot_confusion_matrix(ax=axis) is own and axis.images
    plt.close(own)


def test_interpretation_and_tta_of_the_training_set_keep_items_in_order(learn):
    # the training loader shuffles and drops its last batch: top_losses' indices named
    # positions of one random pass (plot_top_losses drew other items under their titles),
    # 600 items came back as 576, and tta averaged passes in different orders
    dataset = learn.data.train_dl.dataset
    interp = Interpretation.from_learner(learn, "train")
    assert torch.equal(interp.targets, dataset.targets)  # all 600, in dataset order
    _, indices = interp.top_losses(4)
    assert [int(dataset[int(i)][1]) for i in indices] == interp.targets[indices].tolist()
    ordered = learn.get_preds(interp.loader)[0]
    identity, targets = tta(learn, "train", n=2, augment=lambda images: images)
    assert torch.equal(targets, dataset.targets)
    assert torch.allclose(identity, ordered, atol=1e-5)


def test_plot_top_losses_of_no_items_is_an_error(learn):
    interp = Interpretation.from_learner(learn)
    with pytest.raises(ember.DataError, match=r"k \(the number of images to show\)"):
        interp.plot_top_losses(0)


def test_show_results_from_the_learner(learn):
    figure = learn.show_results(6)
    titles = [a.get_title() for a in figure.axes if a.images]
    assert len(titles) == 6 and all("\n" in t for t in titles)


def test_interpretation_of_a_segmentation_model_counts_pixels(fashion, tmp_path):
    from ember_vision import SegmentationData

    (x, y), _ = fashion
    masks = np.where(x[:40] > 40, y[:40, None, None] + 1, 0)
    data = SegmentationData.from_arrays(x[:40], masks, codes=["background", *range(10)], bs=8)
    ember.seed(0)
    learn = ember.learner(data, quiet=True, path=tmp_path)
    interp = Interpretation.from_learner(learn)
    outputs, targets = learn.get_preds(activation=False)
    expected = torch.stack([torch.nn.functional.cross_entropy(o.movedim(-1, 0)[None], t[None])
                            for o, t in zip(outputs, targets)])
    assert torch.allclose(interp.losses, expected, atol=1e-5)  # one mean loss per image
    matrix = interp.confusion_matrix()
    assert matrix.shape == (11, 11) and matrix.sum() == targets.numel()
    assert matrix.trace() / matrix.sum() == pytest.approx(learn.validate()["accuracy"], abs=1e-6)
    figure = interp.plot_top_losses(3)
    assert len([a for a in figure.axes if a.images]) == 9  # image, mask, prediction per item


def test_interpretation_of_void_mask_pixels_counts_only_labelled_ones(fashion):
    from ember.metrics import IGNORE_INDEX
    from ember_vision import SegmentationData

    (x, _), _ = fashion
    masks = (x[:20] > 40).astype(np.int64)
    masks[(x[:20] > 10) & (x[:20] <= 40)] = 255  # the garment's faint edge: unlabelled
    data = SegmentationData.from_arrays(x[:20], masks, codes=["background", "garment"],
                                        void=255, bs=8)
    ember.seed(0)
    learn = ember.learner(data, quiet=True)
    interp = Interpretation.from_learner(learn)
    outputs, targets = learn.get_preds(activation=False)
    kept = targets != IGNORE_INDEX
    matrix = interp.confusion_matrix()
    assert matrix.sum() == kept.sum()  # void pixels are neither actual nor predicted
    assert matrix.trace() / matrix.sum() == pytest.approx(learn.validate()["accuracy"], abs=1e-6)
    expected = torch.stack([torch.nn.functional.cross_entropy(o[k], t[k])
                            for o, t, k in zip(outputs, targets, kept)])
    assert torch.allclose(interp.losses, expected, atol=1e-5)  # mean over labelled pixels


def test_tta_of_a_segmentation_model_keeps_each_prediction_on_its_pixel(fashion):
    # crops and shifts moved every pixel's prediction off its pixel; a mask model gets a
    # mirror, undone on the masks
    from ember_vision import SegmentationData

    class Convolution(torch.nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 11, (1, width), padding=(0, width // 2))

        def forward(self, x):
            return self.conv(x).permute(0, 2, 3, 1)  # channels last, as the U-Nets give

    (x, y), _ = fashion
    masks = np.where(x[:24] > 40, y[:24, None, None] + 1, 0)
    data = SegmentationData.from_arrays(x[:24], masks, codes=["background", *range(10)], bs=8)
    ember.seed(0)
    # each pixel alone (a 1x1 convolution): the mirrored prediction is the plain one
    learn = ember.Learner(data, Convolution(1), quiet=True)
    plain, targets = learn.get_preds()
    blended, tta_targets = tta(learn, beta=0.25)
    assert torch.equal(targets, tta_targets) and blended.shape == plain.shape
    assert torch.allclose(blended, plain, atol=1e-6)
    # a lopsided 1x5 kernel sees the mirror: the prediction of the mirrored image, mirrored
    # back onto the masks' pixels
    learn = ember.Learner(data, Convolution(5), quiet=True)
    plain, _ = learn.get_preds()
    mirrored, _ = tta(learn, beta=0.0)
    images = torch.cat([xb for xb, _ in data.valid_dl])
    with torch.no_grad():
        expected = data.activation(learn.model(images.flip(-1)).flip(-2))
    assert torch.allclose(mirrored, expected, atol=1e-6)
    assert not torch.allclose(mirrored, plain, atol=1e-3)


def test_tta_of_a_test_set_without_labels_gives_a_prediction_per_image(learn, fashion):
    # tta read the test loader as a loader given as it is, labelled: its one-element batches
    # unpacked into no inputs, and targets.ndim failed on None
    (x, y), (test_x, _) = fashion
    data = ImageData.from_arrays(x[:600], y[:600], valid=(test_x[:50], _[:50]),
                                 test=test_x[:40], classes=FASHION_MNIST_CLASSES, augment=False)
    unlabelled = ember.Learner(data, learn.model, quiet=True)
    plain, targets = unlabelled.get_preds("test")
    assert targets is None and plain.shape == (40, 10)
    ember.seed(1)
    averaged, tta_targets = tta(unlabelled, "test", n=2)
    assert tta_targets is None and averaged.shape == plain.shape
    assert torch.allclose(averaged.sum(1), torch.ones(40), atol=1e-4)
    identity = tta(unlabelled, "test", n=2, augment=lambda images: images)[0]
    assert torch.allclose(identity, plain, atol=1e-5)
    with pytest.raises(ember.DataError, match="test set has no labels"):
        Interpretation.from_learner(unlabelled, "test")


def test_interpretation_and_tta_of_a_given_shuffling_loader_keep_items_in_order(learn):
    # a loader given as it is that shuffles was read in a new order on each pass: the
    # targets were not the dataset's, plot_top_losses drew other items than it titled, and
    # tta averaged the predictions of different items
    from torch.utils.data import DataLoader, SubsetRandomSampler

    valid = learn.data.valid_dl
    shuffled = DataLoader(valid.dataset, batch_size=16, shuffle=True,
                          collate_fn=valid.collate_fn)
    interp = Interpretation.from_learner(learn, shuffled)
    assert torch.equal(interp.targets, valid.dataset.targets)
    assert np.array_equal(interp.confusion_matrix(),
                          Interpretation.from_learner(learn).confusion_matrix())
    plain, targets = learn.get_preds()
    identity, tta_targets = tta(learn, shuffled, n=2, augment=lambda images: images)
    assert torch.equal(tta_targets, targets)
    assert torch.allclose(identity, plain, atol=1e-5)
    # a subset of the items: each row is its own item, and the plot draws that item
    chosen = [40, 5, 17, 3]
    subset = DataLoader(valid.dataset, batch_size=16, sampler=SubsetRandomSampler(chosen),
                        collate_fn=valid.collate_fn)
    part = Interpretation.from_learner(learn, subset)
    assert part.items == sorted(chosen)
    assert part.targets.tolist() == valid.dataset.targets[sorted(chosen)].tolist()
    _, indices = part.top_losses(4)
    figure = part.plot_top_losses(4)
    drawn = [axis.images[0].get_array() for axis in figure.axes if axis.images]
    items = [valid.dataset[sorted(chosen)[int(i)]] for i in indices]
    expected = learn.data._pixels(valid.collate_fn(items)[0])
    assert all(np.allclose(shown, pixels) for shown, pixels in zip(drawn, expected))


def test_top_losses_of_regression_and_multi_label_read_well(fashion):
    # the titles showed raw reprs ("1.1815515756607056 / 9.5", "['Shirt', 'Sneaker']"), and a
    # confusion matrix of such data said only what it needs, not what to use instead
    (x, y), (test_x, test_y) = fashion
    ember.seed(0)
    data = ImageData.from_arrays(x[:64], y[:64].astype("float32") + 0.5,
                                 valid=(test_x[:16], test_y[:16].astype("float32") + 0.5),
                                 augment=False)
    learn = ember.learner(data, quiet=True, device="cpu")
    interp = Interpretation.from_learner(learn)
    losses, indices = interp.top_losses(3)
    predictions, targets = learn.get_preds()
    assert torch.allclose(losses, (predictions.reshape(-1) - targets)[indices].pow(2))
    titles = [axis.get_title() for axis in interp.plot_top_losses(3).axes if axis.images]
    for title, index in zip(titles, indices.tolist()):
        shown = title.split("\n")[0]
        assert shown == f"{float(predictions[index]):.3g} / {float(targets[index]):.3g}"
    with pytest.raises(ember.DataError, match=r"regression; use interp\.top_losses\(\)"):
        interp.confusion_matrix()
    labels = [[FASHION_MNIST_CLASSES[a]] + (["even"] if a % 2 == 0 else []) for a in y[:64]]
    valid = [[FASHION_MNIST_CLASSES[a]] + (["even"] if a % 2 == 0 else []) for a in test_y[:16]]
    multi = ember.learner(ImageData.from_arrays(x[:64], labels, valid=(test_x[:16], valid),
                                                augment=False), quiet=True, device="cpu")
    interp = Interpretation.from_learner(multi)
    titles = [axis.get_title() for axis in interp.plot_top_losses(3).axes if axis.images]
    assert titles and not any("[" in title or "'" in title for title in titles), titles
