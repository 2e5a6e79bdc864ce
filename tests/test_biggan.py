"""BigGAN (Brock et al. 2019), small: linear conditional BN, shared embedding, hierarchical latents."""

import pytest
import torch
import torch.nn.functional as F

from gankit.models import GENERATORS
from gankit.nn.conditional import LinearConditionalBatchNorm2d
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer


def test_linear_cbn_is_batch_norm_with_gain_and_bias_linear_in_the_condition():
    torch.manual_seed(0)
    cbn = LinearConditionalBatchNorm2d(3, 5)
    x, c = torch.randn(6, 3, 4, 4), torch.randn(6, 5)
    bn = F.batch_norm(x, None, None, training=True)
    torch.testing.assert_close(cbn(x, c), bn)  # starts as plain BN
    with torch.no_grad():
        cbn.gain.weight.normal_()
        cbn.bias.weight.normal_()
    gamma, beta = 1 + c @ cbn.gain.weight.T, c @ cbn.bias.weight.T
    torch.testing.assert_close(cbn(x, c), gamma[:, :, None, None] * bn + beta[:, :, None, None])
    # "conditional BN with one class equals BN with affine params from the embedding"
    one = torch.randn(1, 5).expand(6, 5)
    affine = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        affine.weight.copy_(1 + one[0] @ cbn.gain.weight.T)
        affine.bias.copy_(one[0] @ cbn.bias.weight.T)
    torch.testing.assert_close(cbn(x, one), affine(x))


def _randomise_cbn(G):
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, LinearConditionalBatchNorm2d):
                m.gain.weight.normal_(0, 0.3)
                m.bias.weight.normal_(0, 0.3)


def test_hierarchical_latents_each_chunk_reaches_its_block():
    torch.manual_seed(0)
    G = GENERATORS.build("biggan", out_shape=(1, 16, 16), num_classes=10, width=8, z_dim=30, shared_dim=4).eval()
    assert G.chunk == 10 and len(G.blocks) == 2  # 16 px: 2 blocks -> 3 chunks
    _randomise_cbn(G)
    z, y = torch.randn(4, 30), torch.tensor([1, 2, 3, 4])
    base = G(z, y)
    for i in range(3):  # changing any one chunk changes the image
        z2 = z.clone()
        z2[:, 10 * i : 10 * (i + 1)] = torch.randn(4, 10)
        assert not torch.allclose(G(z2, y), base, atol=1e-4), f"chunk {i} has no effect"
    # block 1 sees [shared(y), z_2]: capture its condition and compare with the hand-built one
    seen = {}
    G.blocks[1].bn1.register_forward_hook(lambda m, args, out: seen.update(c=args[1]))
    G(z, y)
    torch.testing.assert_close(seen["c"], torch.cat([G.shared(y), z[:, 20:30]], dim=1))
    with pytest.raises(ValueError, match="multiple of 3"):
        GENERATORS.build("biggan", out_shape=(1, 16, 16), num_classes=10, z_dim=31)
    with pytest.raises(ValueError, match="G\\(z, y\\)"):
        G(z)


def test_shared_embedding_drives_class_and_morphing_interpolates_it():
    torch.manual_seed(0)
    G = GENERATORS.build("biggan", out_shape=(1, 16, 16), num_classes=10, width=8, z_dim=30, shared_dim=4).eval()
    _randomise_cbn(G)
    z = torch.randn(3, 30)
    a, b = torch.tensor([2, 2, 2]), torch.tensor([7, 7, 7])
    assert not torch.allclose(G(z, a), G(z, b), atol=1e-4)
    torch.testing.assert_close(G(z, class_embedding=G.embed(a)), G(z, a))
    from gankit.latent import class_morph

    frames = class_morph(G, z[0], 2, 7, steps=5)
    assert frames.shape == (5, 1, 16, 16)
    torch.testing.assert_close(frames[0], G(z[:1], a[:1])[0])
    torch.testing.assert_close(frames[-1], G(z[:1], b[:1])[0])
    mid = G(z[:1], class_embedding=(G.embed(a[:1]) + G.embed(b[:1])) / 2)[0]
    torch.testing.assert_close(frames[2], mid)


def test_morph_grid_from_the_command_line(tmp_path):
    from PIL import Image

    from gankit.cli import main

    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "biggan-mnist",
                "data={name: digits, resolution: 16}",
                "generator.width=4",
                "discriminator.width=8",
                "generator.z_dim=30",
                "generator.shared_dim=4",
                "generator.attention=0",
                "schedule.steps=2",
                "schedule.batch_size=8",
                "eval.metrics=[]",
                "eval.best=null",
                "log.tensorboard=false",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    assert (
        main(["latent", str(run), "--morph", "1,7", "--rows", "2", "--steps", "6", "--out", str(tmp_path / "m.png")])
        == 0
    )
    w, h = Image.open(tmp_path / "m.png").size
    assert round(w / h) == 3  # 6 frames by 2 rows
    assert main(["latent", str(run), "--morph", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["latent", str(run), "--morph", "1,12", "--out", str(tmp_path / "x.png")]) == 2


def test_biggan_recipe_trains_on_digits_with_sn_orthogonal_ema():
    """The recipe: BigGAN G with SN and orthogonal regularisation, the DCGAN-sized projection D, EMA."""
    r = load_recipe(
        "biggan-mnist",
        [
            "data={name: digits, resolution: 16}",
            "generator.width=8",
            "discriminator.width=8",
            "generator.z_dim=30",
            "generator.shared_dim=8",
            "generator.attention=8",
            "schedule.steps=3",
            "schedule.batch_size=16",
            "eval.metrics=[]",
            "eval.best=null",
            "log.tensorboard=false",
            "ema.start=0",
        ],
    )
    t = Trainer(r, "/nonexistent")
    assert t.D.projection is not None and hasattr(t.G.linear, "parametrizations")  # projection D, SN in G
    before = [p.detach().clone() for p in t.G.parameters()]
    for _ in range(3):
        terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v) for v in terms.values())
    assert "g/pen/orthogonal" in terms and terms["g/pen/orthogonal"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))
