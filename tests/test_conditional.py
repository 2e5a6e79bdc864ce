"""Class-conditional GANs: conditional batch norm, the projection discriminator, the conditional family."""

import pytest
import torch
import torch.nn.functional as F
from family_steps import batch, context

from gankit.config import ConfigError
from gankit.models import DISCRIMINATORS, GENERATORS
from gankit.nn.conditional import ConditionalBatchNorm2d, Projection
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer

RESNET = [
    "generator.name=resnet",
    "discriminator.name=resnet",
    "generator.width=8",
    "discriminator.width=8",
    "generator.z_dim=16",
    "objective.name=hinge",
]


def trainer(*overrides):
    return Trainer(
        load_recipe(
            "dcgan-digits",
            ["log.tensorboard=false", "schedule.steps=5", "family=conditional", "eval.metrics=[]", *RESNET, *overrides],
        ),
        "/nonexistent",
    )


def test_conditional_batch_norm_is_per_class_affine_of_batch_norm():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, 4)
    x, y = torch.randn(6, 3, 2, 2), torch.tensor([0, 1, 2, 3, 0, 1])
    assert torch.allclose(cbn(x, y), F.batch_norm(x, None, None, training=True), atol=1e-6)  # starts as BN
    with torch.no_grad():
        cbn.embed.weight.normal_()
    gamma, beta = cbn.embed.weight[y, :3], cbn.embed.weight[y, 3:]
    expected = gamma[:, :, None, None] * F.batch_norm(x, None, None, training=True) + beta[:, :, None, None]
    assert torch.allclose(cbn(x, y), expected, atol=1e-5)


def test_projection_discriminator_adds_the_class_inner_product():
    torch.manual_seed(0)
    D = DISCRIMINATORS.build("resnet", in_shape=(1, 16, 16), num_classes=10, width=8)
    x, y = torch.randn(4, 1, 16, 16), torch.tensor([0, 3, 3, 9])
    out = D(x, y)
    phi = out.features
    expected = D.head(phi).squeeze(1) + (D.projection.embed.weight[y] * phi).sum(1)
    assert torch.allclose(out.logits, expected, atol=1e-5)
    assert not torch.allclose(D(x, torch.tensor([1, 1, 1, 1])).logits, out.logits)
    with pytest.raises(ValueError, match="D\\(x, y\\)"):
        D(x)
    assert isinstance(D.projection, Projection)


def test_conditional_generator_depends_on_the_label():
    torch.manual_seed(0)
    G = GENERATORS.build("resnet", out_shape=(1, 16, 16), num_classes=10, width=8, z_dim=16)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.embed.weight.normal_()
    z = torch.randn(4, 16)
    assert not torch.allclose(G(z, torch.tensor([0, 0, 0, 0])), G(z, torch.tensor([5, 5, 5, 5])))
    with pytest.raises(ValueError, match="G\\(z, y\\)"):
        G(z)


def test_conditional_family_trains_and_generates_every_class():
    t = trainer("penalties=[{name: spectral-norm}, {name: r1, gamma: 1.0}]")
    before = [p.clone() for p in t.G.parameters()]
    terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v) for v in terms.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))
    seen = []
    G = t.sampling_generator()
    real_G = G.forward
    G.forward = lambda z, y=None: (seen.append(y), real_G(z, y))[1]
    t.generate(torch.randn(25, t.G.z_dim))
    assert torch.equal(seen[0].cpu(), torch.arange(25) % 10)


def test_conditional_family_refuses_unlabelled_data_and_packing():
    with pytest.raises(ConfigError, match="labelled"):
        Trainer(load_recipe("gan-grid", ["family=conditional", "log.tensorboard=false"]), "/nonexistent")
    with pytest.raises(ConfigError, match="pacgan"):
        trainer("tricks=[{name: pacgan}]")


def test_acgan_losses_follow_odena_eqs_2_3():
    t = Trainer(
        load_recipe(
            "dcgan-digits",
            [
                "log.tensorboard=false",
                "schedule.steps=5",
                "family=acgan",
                "eval.metrics=[]",
                *RESNET,
                "objective.name=non-saturating",
                "penalties=[]",  # the equations alone (the default recipe carries R1)
            ],
        ),
        "/nonexistent",
    )
    fam = t.family
    assert t.D.projection is None and t.D.classifier is not None
    x, y = torch.randn(8, 1, 16, 16), torch.randint(10, (8,))
    z = torch.randn(8, t.G.z_dim)
    ctx = context(8, z=z)
    torch.manual_seed(0)
    terms = fam.d_terms(batch(x, y), ctx)
    fake = t.G(z, y).detach()
    r, f = t.D(x, y), t.D(fake, y)
    l_s = F.softplus(-r.logits).mean() + F.softplus(f.logits).mean()  # -L_S
    l_c = F.cross_entropy(r.class_logits, y) + F.cross_entropy(f.class_logits, y)  # -L_C
    assert terms["loss"].item() == pytest.approx((l_s + l_c).item(), rel=1e-5)
    torch.manual_seed(1)
    g = fam.g_terms(None, ctx)
    torch.manual_seed(1)
    y_g = torch.randint(10, (8,))
    out = t.D(t.G(z, y_g), y_g)
    expected = F.softplus(-out.logits).mean() + F.cross_entropy(out.class_logits, y_g)
    assert g["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="contradicts"):
        trainer("family=acgan", "discriminator.conditioning=projection")


def test_mlp_cgan_sees_the_one_hot_label():
    torch.manual_seed(0)
    G = GENERATORS.build("mlp", out_shape=(2,), num_classes=3, z_dim=4, hidden=[8])
    D = DISCRIMINATORS.build("mlp", in_shape=(2,), num_classes=3, hidden=[8])
    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1])
    first = G.net[0]
    expected = first(torch.cat([z, F.one_hot(y, 3).float()], 1))
    assert torch.allclose(G.net[0](torch.cat([z, F.one_hot(y, 3).float()], 1)), expected)
    assert first.in_features == 4 + 3 and D.blocks[0][0].in_features == 2 + 3
    x = G(z, y)
    assert not torch.allclose(D(x, y).logits, D(x, (y + 1) % 3).logits)
    with pytest.raises(ValueError, match="G\\(z, y\\)"):
        G(z)
    with pytest.raises(ValueError, match="virtual batch norm"):
        GENERATORS.build("mlp", out_shape=(2,), num_classes=3, virtual_batch_norm=8)


def test_cgan_on_digits_trains_with_flattened_mlps():
    t = Trainer(
        load_recipe(
            "dcgan-digits",
            [
                "log.tensorboard=false",
                "schedule.steps=5",
                "family=conditional",
                "eval.metrics=[]",
                "generator={name: mlp, z_dim: 16}",
                "discriminator={name: mlp}",
                "ema.enabled=false",
            ],
        ),
        "/nonexistent",
    )
    terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v) for v in terms.values())
    assert t.generate(torch.randn(20, 16)).shape == (20, 1, 16, 16)


def test_dcgan_cgan_concatenates_one_hot_to_z_and_label_maps_to_the_image():
    """Mirza & Osindero 2014 with DCGAN networks: G's first layer sees [z, onehot(y)]; D's first conv sees
    the image plus K constant maps, so zeroing the label weights makes both blind to y."""
    torch.manual_seed(0)
    G = GENERATORS.build("dcgan", out_shape=(1, 16, 16), num_classes=10, width=8, z_dim=6).eval()
    D = DISCRIMINATORS.build("dcgan", in_shape=(1, 16, 16), num_classes=10, width=8).eval()
    assert G.net[0].weight.shape[0] == 16 and D.body[0].weight.shape[1] == 11
    z, x = torch.randn(4, 6), torch.rand(4, 1, 16, 16) * 2 - 1
    y0, y1 = torch.tensor([0, 1, 2, 3]), torch.tensor([9, 8, 7, 6])
    assert not torch.allclose(G(z, y0), G(z, y1)) and not torch.allclose(D(x, y0).logits, D(x, y1).logits)
    # the label's contribution is exactly the weights of its one-hot channel
    ref = torch.nn.functional.conv2d(
        torch.cat([x, F.one_hot(y0, 10).float()[:, :, None, None].expand(-1, -1, 16, 16)], 1),
        D.body[0].weight,
        D.body[0].bias,
        stride=2,
        padding=1,
    )
    torch.testing.assert_close(
        D.body[0](torch.cat([x, F.one_hot(y0, 10).float()[:, :, None, None].expand(-1, -1, 16, 16)], 1)), ref
    )
    with torch.no_grad():
        G.net[0].weight[6:] = 0
        D.body[0].weight[:, 1:] = 0
    torch.testing.assert_close(G(z, y0), G(z, y1))
    torch.testing.assert_close(D(x, y0).logits, D(x, y1).logits)
    with pytest.raises(ValueError, match="call it with labels"):
        G(z)
    with pytest.raises(ValueError, match="virtual_batch_norm"):
        GENERATORS.build("dcgan", out_shape=(1, 16, 16), num_classes=10, virtual_batch_norm=8)


def test_dcgan_cgan_trains_in_the_conditional_family():
    t = Trainer(
        load_recipe(
            "dcgan-digits",
            [
                "log.tensorboard=false",
                "schedule.steps=3",
                "family=conditional",
                "eval.metrics=[]",
                "generator.width=8",
                "discriminator.width=8",
            ],
        ),
        "/nonexistent",
    )
    for _ in range(2):
        terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v) for v in terms.values()) and t.G.num_classes == 10 and t.D.num_classes == 10


def test_dcgan_acgan_has_a_class_head_and_no_label_input():
    """AC-GAN with DCGAN networks (Odena et al. used DCGAN-style nets): the family imposes an auxiliary
    class head on D, whose input is then the image alone; G still takes the one-hot label."""
    t = Trainer(
        load_recipe(
            "dcgan-digits",
            [
                "log.tensorboard=false",
                "schedule.steps=3",
                "family=acgan",
                "eval.metrics=[]",
                "generator.width=8",
                "discriminator.width=8",
            ],
        ),
        "/nonexistent",
    )
    assert t.D.concat == 0 and t.D.body[0].weight.shape[1] == 1 and t.D.classifier.out_features == 10
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    out = t.D(x)  # no labels needed to judge
    torch.testing.assert_close(out.class_logits, t.D.classifier(out.features))
    for _ in range(2):
        terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v) for v in terms.values()) and "d/class" in terms and "g/class" in terms
    with pytest.raises(ValueError, match="conditioning"):
        DISCRIMINATORS.build("dcgan", in_shape=(1, 16, 16), num_classes=10, conditioning="hypernetwork")
    with pytest.raises(ValueError, match="conditioning"):
        GENERATORS.build("dcgan", out_shape=(1, 16, 16), num_classes=10, conditioning="projection")


def test_dcgan_projection_discriminator_adds_the_class_inner_product():
    """Miyato & Koyama 2018, Eq. 3 on the DCGAN D: logit = psi(phi(x)) + embed(y)^T phi(x), phi the
    flattened 4x4 features; the input is the image alone."""
    torch.manual_seed(0)
    D = DISCRIMINATORS.build("dcgan", in_shape=(1, 16, 16), num_classes=10, width=8, conditioning="projection").eval()
    assert D.concat == 0 and D.classifier is None and D.body[0].weight.shape[1] == 1
    x, y = torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([0, 3, 3, 9])
    out = D(x, y)
    phi = D.body(x).flatten(1)
    torch.testing.assert_close(out.features, phi)
    psi = F.conv2d(D.body(x), D.head.weight, D.head.bias).view(4)
    torch.testing.assert_close(out.logits, psi + (D.projection.embed.weight[y] * phi).sum(1))
    assert not torch.allclose(D(x, torch.tensor([1, 1, 1, 1])).logits, out.logits)
    with pytest.raises(ValueError, match="D\\(x, y\\)"):
        D(x)


def test_dcgan_conditional_batch_norm_generator():
    """conditioning=batchnorm: z alone enters the first layer and every hidden BatchNorm is a
    ConditionalBatchNorm2d; with identical class embeddings G ignores y, with different ones it does not."""
    torch.manual_seed(0)
    G = GENERATORS.build("dcgan", out_shape=(1, 16, 16), num_classes=10, width=8, z_dim=6, conditioning="batchnorm")
    cbns = [m for m in G.net if isinstance(m, ConditionalBatchNorm2d)]
    assert G.net[0].weight.shape[0] == 6 and len(cbns) == len(G.channels)  # one per hidden layer
    assert not any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in G.modules())
    z, y0, y1 = torch.randn(4, 6), torch.tensor([0, 1, 2, 3]), torch.tensor([9, 8, 7, 6])
    torch.testing.assert_close(G(z, y0), G(z, y1))  # every class starts as plain batch norm
    with torch.no_grad():
        for m in cbns:
            m.embed.weight.normal_()
    assert not torch.allclose(G(z, y0), G(z, y1))
    # a class's output equals plain BN with that class's affine parameters
    with torch.no_grad():
        h = z.view(4, 6, 1, 1)
        for layer in G.net:
            if isinstance(layer, ConditionalBatchNorm2d):
                g, b = layer.embed.weight[y0].chunk(2, dim=1)
                h = F.batch_norm(h, None, None, training=True) * g[:, :, None, None] + b[:, :, None, None]
            else:
                h = layer(h)
    torch.testing.assert_close(G(z, y0), h)
    with pytest.raises(ValueError, match="call it with labels"):
        G(z)
