"""Semi-supervised GAN (Salimans et al. 2016, Sec. 5) and the data splits it needs."""

import pytest
import torch
import torch.nn.functional as F
from family_steps import batch, context

from gankit.config import ConfigError
from gankit.data import DATASETS
from gankit.data.split import labelled_subset, split_holdout
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer

DIGITS = "data={name: digits, resolution: 16, holdout: 400, labels_per_class: 5}"
SMALL = ["log.tensorboard=false", "generator.width=16", "discriminator.width=16", "schedule.batch_size=64"]


def trainer(*overrides, data=DIGITS):
    return Trainer(load_recipe("ssgan-mnist", [data, *SMALL, *overrides]), "/nonexistent")


def test_holdout_is_a_disjoint_seeded_split():
    src = DATASETS.build("digits")
    train, test = split_holdout(src, 300, seed=0)
    assert len(train) == len(src) - 300 and len(test) == 300
    again_train, again_test = split_holdout(src, 300, seed=0)
    assert torch.equal(again_test.images, test.images) and torch.equal(again_train.labels, train.labels)
    other_test = split_holdout(src, 300, seed=1)[1]
    assert not torch.equal(other_test.images, test.images)

    # every image lands in exactly one part: the multiset of (image, label) rows is preserved
    def rows_of(s):
        return sorted(bytes(x.numpy().tobytes()) + bytes([int(y)]) for x, y in zip(s.images, s.labels))

    assert sorted(rows_of(train) + rows_of(test)) == rows_of(src)
    assert train.fingerprint() != src.fingerprint()
    with pytest.raises(ValueError, match="between 1 and"):
        split_holdout(src, len(src), seed=0)


def test_labelled_subset_has_k_of_every_class():
    src = DATASETS.build("digits")
    x, y = labelled_subset(src, 7, seed=0)
    assert x.shape == (70, 1, 16, 16) and torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 7))
    assert x.min() >= -1 and x.max() <= 1
    x2, y2 = labelled_subset(src, 7, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    with pytest.raises(ValueError, match="only"):
        labelled_subset(src, 10_000, seed=0)


def test_d_loss_is_salimans_k_plus_1_formulation():
    """L_D = CE(l(x_l), y_l) - log Z(x)/(Z(x)+1) - log 1/(Z(G(z))+1), Z = sum_k exp l_k: computed here from
    the class logits directly, against the family's terms (without the recipe's DiffAugment, whose random
    shifts the reference would have to replay)."""
    t = trainer("tricks=[{name: feature-matching}]")
    fam = t.family
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    z = torch.randn(6, t.G.z_dim)
    ctx = context(6, z=z)
    torch.manual_seed(0)
    terms = fam.d_terms(batch(x, torch.full((6,), 3)), ctx)  # labels of the unlabelled stream must be ignored
    torch.manual_seed(0)
    xl, yl = fam._labelled_batch(6)
    t.D.train()
    with torch.no_grad():
        zr = t.D(x).class_logits.exp().sum(1)
        zf = t.D(t.G(z)).class_logits.exp().sum(1)
        sup = F.cross_entropy(t.D(xl).class_logits, yl)
    expected = sup - torch.log(zr / (zr + 1)).mean() - torch.log(1 / (zf + 1)).mean()
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert terms["supervised"].item() == pytest.approx(sup.item(), rel=1e-4)
    # the unlabelled batch's labels never matter
    torch.manual_seed(0)
    assert fam.d_terms(batch(x, torch.full((6,), 8)), ctx)["loss"].item() == pytest.approx(
        terms["loss"].item(), rel=1e-6
    )


def test_generator_uses_feature_matching_and_g_stays_unconditional():
    t = trainer()
    assert t.G.num_classes == 0 and t.D.classifier.out_features == 10
    terms = t.train_step(want_log=True)
    assert "g/trick/feature-matching" in terms and all(torch.isfinite(v) for v in terms.values())


def test_semi_supervised_gan_learns_to_classify_digits_from_50_labels():
    """Convergence: 300 steps on sklearn digits (1397 training images, 50 labels) bring the held-out error
    well below chance (0.9); measured 0.115 on one thread."""
    torch.manual_seed(0)
    t = trainer("schedule.steps=300")
    before = t.evaluate()["test_error"]
    for _ in range(300):
        t.train_step(want_log=False)
    after = t.evaluate()["test_error"]
    assert after < 0.25 and after < before
    assert t.last_protocol["test-error"]["num_test"] == 400 and t.last_protocol["test-error"]["labelled"] == 50


def test_bad_semi_supervised_configurations_are_refused():
    with pytest.raises(ConfigError, match="labels_per_class"):
        trainer(data="data={name: digits, resolution: 16, holdout: 400}")
    with pytest.raises(ConfigError, match="logistic"):
        trainer("objective.name=hinge")
    with pytest.raises(ValueError, match="penalties r1"):
        trainer("penalties=[{name: r1}]")
    with pytest.raises(ConfigError, match="whole number"):
        trainer(data="data={name: digits, resolution: 16, labels_per_class: -1}")
    with pytest.raises(ConfigError, match="semi-supervised"):
        Trainer(load_recipe("dcgan-digits", ["data.labels_per_class=5", "log.tensorboard=false"]), "/nonexistent")
    with pytest.raises(ConfigError, match="holdout"):
        trainer(data="data={name: digits, resolution: 16, holdout: 5000, labels_per_class: 5}")


def test_salimans_mlp_discriminator_options():
    """The MLP D of Salimans et al.'s MNIST experiments: Gaussian noise in training only, weight norm
    (scale-invariant in v), and a K-way class head for the K+1-class game."""
    from gankit.models import DISCRIMINATORS

    torch.manual_seed(0)
    D = DISCRIMINATORS.build(
        "mlp",
        in_shape=(1, 8, 8),
        num_classes=10,
        hidden=[16, 8],
        conditioning="auxiliary",
        noise=[0.3, 0.5],
        weight_norm=True,
    )
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    out = D(x)
    assert out.class_logits.shape == (4, 10) and out.features.shape == (4, 8)
    assert not torch.equal(D(x).class_logits, out.class_logits)  # noise while training
    D.eval()
    a = D(x).class_logits
    assert torch.equal(a, D(x).class_logits)  # none in eval
    v = D.blocks[0][0].parametrizations.weight.original1
    with torch.no_grad():
        v.mul_(3.0)  # w = g v / ||v||: scaling v changes nothing
    torch.testing.assert_close(D(x).class_logits, a)
    with pytest.raises(ValueError, match="noise"):
        DISCRIMINATORS.build("mlp", in_shape=(2,), noise=[0.1, 0.2, 0.3])
