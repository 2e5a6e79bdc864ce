"""The linear probe (gankit.metrics.probe) and the bidirectional families' probe_accuracy."""

import pytest
import torch

from gankit.metrics.probe import linear_probe
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer


def test_probe_separates_linearly_separable_classes_and_not_noise():
    g = torch.Generator().manual_seed(0)
    y_tr, y_te = torch.randint(4, (400,), generator=g), torch.randint(4, (200,), generator=g)
    centres = torch.eye(4) * 5

    def feats(y):
        return torch.cat([centres[y], torch.randn(len(y), 3, generator=g)], 1)

    assert linear_probe(feats(y_tr), y_tr, feats(y_te), y_te) == 1.0
    noise = linear_probe(torch.randn(400, 7, generator=g), y_tr, torch.randn(200, 7, generator=g), y_te)
    assert noise < 0.4  # chance is 0.25
    with pytest.raises(ValueError, match="one width"):
        linear_probe(torch.randn(4, 3), torch.zeros(4), torch.randn(2, 5), torch.zeros(2))


def test_probe_matches_an_independent_logistic_regression():
    """The same standardisation and regularisation written out with scikit-learn directly."""
    from sklearn.linear_model import LogisticRegression

    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 5, generator=g) * torch.tensor([1.0, 10.0, 0.1, 3.0, 1.0])
    y = (x[:, 0] + 0.1 * x[:, 1] > 0).long() + (x[:, 3] > 2).long()
    xtr, xte, ytr, yte = x[:200], x[200:], y[:200], y[200:]
    m, s = xtr.double().mean(0), xtr.double().std(0, unbiased=False) + 1e-8
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(((xtr.double() - m) / s).numpy(), ytr.numpy())
    expected = float((clf.predict(((xte.double() - m) / s).numpy()) == yte.numpy()).mean())
    assert linear_probe(xtr, ytr, xte, yte) == pytest.approx(expected)


def test_bigan_reports_the_probe_of_its_encoder_on_held_out_images():
    r = load_recipe(
        "bigan-mnist",
        [
            "data={name: digits, resolution: 16, holdout: 300}",
            "log.tensorboard=false",
            "eval.metrics=[]",
            "generator.hidden=[64]",
            "discriminator.hidden=[64]",
            "encoder.hidden=[64]",
            "schedule.batch_size=32",
        ],
    )
    t = Trainer(r, "/nonexistent")
    t.train_step(want_log=False)
    scores = t.evaluate()
    assert set(scores) == {"probe_accuracy"} and 0.5 < scores["probe_accuracy"] <= 1.0  # chance is 0.1
    fam = t.family
    expected = linear_probe(
        fam.encode(t.source.images), t.source.labels, fam.encode(t.source.heldout.images), t.source.heldout.labels
    )
    assert scores["probe_accuracy"] == pytest.approx(expected)
    assert t.last_protocol["linear-probe"]["num_test"] == 300
    # without a holdout there is nothing to score
    r2 = load_recipe(
        "bigan-mnist",
        [
            "data={name: digits, resolution: 16}",
            "log.tensorboard=false",
            "eval.metrics=[]",
            "generator.hidden=[64]",
            "discriminator.hidden=[64]",
            "encoder.hidden=[64]",
        ],
    )
    assert Trainer(r2, "/nonexistent").evaluate() == {}
