"""SRGAN: photo patches, SRResNet's sub-pixel upsampling, the VGG content loss and the family."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from gankit.config import ConfigError
from gankit.data import DATASETS
from gankit.data.patches import cut_patches
from gankit.families.superres import bicubic_upsample, downsample
from gankit.models import GENERATORS
from gankit.nn.perceptual import VGGFeatures, load_weights_file, vgg19_cut
from gankit.recipes.load import load_recipe
from gankit.training.run import start_run
from gankit.training.trainer import Trainer

SR_FAST = [
    "generator.blocks=2",
    "generator.width=8",
    "discriminator.width=8",
    "discriminator.dense=16",
    "schedule.batch_size=8",
    "log.tensorboard=false",
    "data.max_patches=200",
    "data.holdout=32",
    "data.stride=0",
]


def test_cut_patches_tiles_without_overlap():
    img = np.arange(10 * 7 * 3, dtype=np.uint8).reshape(10, 7, 3)
    p = cut_patches(img, 3, 3)
    assert p.shape == (3 * 2, 3, 3, 3)  # rows 0, 3, 6 x cols 0, 3
    assert np.array_equal(p[1], img[0:3, 3:6].transpose(2, 0, 1)) and np.array_equal(
        p[5], img[6:9, 3:6].transpose(2, 0, 1)
    )
    assert cut_patches(img, 4, 2).shape[0] == 4 * 2


def test_builtin_patches_need_no_files(tmp_path):
    s = DATASETS.build("patches", size=32)
    assert s.shape == (3, 32, 32) and len(s) == 2 * (427 // 32) * (640 // 32)
    with pytest.raises(FileNotFoundError, match="holds no images"):
        DATASETS.build("patches", path=str(tmp_path))


def test_downsampling_and_the_bicubic_baseline():
    flat = torch.full((2, 3, 16, 16), 0.25)
    assert torch.allclose(downsample(flat, 4), torch.full((2, 3, 4, 4), 0.25), atol=1e-6)
    assert torch.allclose(bicubic_upsample(downsample(flat, 4), 4), flat, atol=1e-6)


def test_srresnet_upsamples_with_pixel_shuffle():
    G = GENERATORS.build("srresnet", in_shape=(3, 8, 8), out_shape=(3, 32, 32), num_classes=0, blocks=1, width=4)
    assert G.scale == 4 and sum(isinstance(m, nn.PixelShuffle) for m in G.modules()) == 2  # two x2 steps
    with pytest.raises(ValueError, match="power of 2"):
        GENERATORS.build("srresnet", in_shape=(3, 8, 8), out_shape=(3, 24, 24), num_classes=0)


def test_vgg_layers_and_weights(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import vgg19

    assert vgg19_cut("relu5_4") == 36 and vgg19_cut("relu2_2") == 9 and vgg19_cut("relu1_1") == 2
    with pytest.raises(ValueError, match="no layer 'relu3_5'"):
        vgg19_cut("relu3_5")
    with pytest.raises(ValueError, match="must be 'relu"):
        vgg19_cut("5_4")
    torch.manual_seed(0)
    ref = vgg19().features[:9].eval()
    save_file({f"features.{k}": v for k, v in ref.state_dict().items()}, tmp_path / "vgg.safetensors")
    phi = VGGFeatures(tmp_path / "vgg.safetensors", "relu2_2", rescale=2.0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    with torch.no_grad():
        want = ref(((x + 1) / 2 - mean) / std) / 2.0
    torch.testing.assert_close(phi(x), want)
    assert not any(p.requires_grad for p in phi.parameters())
    with pytest.raises(ValueError, match="lacks features.0.bias"):
        save_file({"other": torch.zeros(1)}, tmp_path / "bad.safetensors")
        VGGFeatures(tmp_path / "bad.safetensors", "relu2_2")


def test_weights_files_never_run_code(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"w": Boom()}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="tensor-only"):
        load_weights_file(tmp_path / "evil.pth")
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pth")
    assert torch.equal(load_weights_file(tmp_path / "ok.pth")["w"], torch.ones(2))


def test_vgg_content_without_weights_falls_back_and_says_so(tmp_path):
    r = load_recipe("srgan-photos", SR_FAST + ["family.content=vgg"])
    with pytest.warns(UserWarning, match="using the discriminator's own features"):
        t = Trainer(r, tmp_path / "run")
    assert t.family.content == "d-features"
    terms = t.train_step(want_log=True)
    assert "g/content_d-features" in terms and torch.isfinite(terms["g/content_d-features"])
    _, protocol = t.family.scores(t.G)
    assert "content loss: d-features" in protocol["baseline"]


def test_scale_must_divide_the_patches(tmp_path):
    with pytest.raises(ConfigError, match="not divisible by scale=8"):
        Trainer(load_recipe("srgan-photos", SR_FAST + ["data.size=36", "family.scale=8"]), tmp_path / "run")


@pytest.mark.slow
def test_srgan_learns_to_upsample(tmp_path):
    # From scratch (no bicubic skip, which would start G at the baseline), GAN from the first step.
    r = load_recipe(
        "srgan-photos",
        SR_FAST
        + [
            "schedule.steps=120",
            "eval.every=0",
            "log.sample_every=120",
            "generator.skip=none",
            "family.pretrain_steps=0",
        ],
    )
    t = Trainer(r, tmp_path / "probe")
    before, _ = t.family.scores(t.G)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # content=mse: no fallback warning
        res = start_run(r, out=tmp_path / "run")
    after = res["eval"]
    assert after["psnr"] > before["psnr"] + 3 and after["l1"] < 0.7 * before["l1"], (before, after)
    assert after["baseline_psnr"] == pytest.approx(before["baseline_psnr"])


def test_vgg_content_loss_with_weights(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import vgg19

    with torch.device("meta"):
        shapes = {f"features.{k}": v.shape for k, v in vgg19().features[:9].state_dict().items()}
    save_file({k: torch.randn(s) * 0.05 for k, s in shapes.items()}, tmp_path / "vgg.safetensors")
    r = load_recipe(
        "srgan-photos",
        SR_FAST
        + ["family.content=vgg", f"family.vgg_weights={tmp_path / 'vgg.safetensors'}", "family.vgg_layer=relu2_2"],
    )
    t = Trainer(r, tmp_path / "run")
    assert t.family.content == "vgg"
    before = [p.detach().clone() for p in t.family.vgg.parameters()]
    terms = t.train_step(want_log=True)
    assert terms["g/content_vgg"] > 0 and torch.isfinite(terms["g/loss"])
    assert all(torch.equal(a, b) for a, b in zip(before, t.family.vgg.parameters()))  # VGG stays fixed


def test_bicubic_skip_starts_as_bicubic_and_learns_a_residual():
    G = GENERATORS.build(
        "srresnet", in_shape=(3, 8, 8), out_shape=(3, 32, 32), num_classes=0, blocks=1, width=4, skip="bicubic"
    ).eval()
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(G(x), bicubic_upsample(x, 4), atol=1e-6)  # the zero-initialised last conv
    G.train()
    out = G(x)
    (out - torch.zeros_like(out)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.up[-1].parameters())


def test_pretraining_leaves_d_idle(tmp_path):
    t = Trainer(load_recipe("srgan-photos", SR_FAST + ["family.pretrain_steps=3"]), tmp_path / "run")
    d0 = [p.detach().clone() for p in t.D.parameters()]
    g0 = [p.detach().clone() for p in t.G.parameters()]
    for _ in range(3):
        terms = t.train_step(want_log=True)
    assert not any(k.startswith("d/") for k in terms) and "g/adv" not in terms
    assert all(torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    terms = t.train_step(want_log=True)  # step 3: the GAN phase begins
    assert "d/loss" in terms and "g/adv" in terms
    assert any(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))


def test_held_out_patches_share_no_pixel_with_training_patches():
    from gankit.data.split import split_holdout

    s = DATASETS.build("patches", size=32, stride=8, max_patches=0)
    train, test = split_holdout(s, 20, seed=0)
    assert len(test) == 20 and (test.coords[:, 1:] % 32 == 0).all()
    for photo, top, left in test.coords.tolist():
        same = train.coords[train.coords[:, 0] == photo]
        clash = ((same[:, 1] - top).abs() < 32) & ((same[:, 2] - left).abs() < 32)
        assert not clash.any()
    # Only the overlapping neighbours go: each held-out patch removes at most 7 x 7 positions.
    assert len(s) - 20 * 49 <= len(train) < len(s) - 20
    i = int(train.coords[:, 0].eq(0).nonzero()[0])  # the stored pixels are the photo's at the coordinates
    photo0 = DATASETS.build("patches", size=32, stride=8).images  # same order
    k = int(((s.coords == train.coords[i]).all(1)).nonzero()[0])
    assert torch.equal(train.images[i], photo0[k])


def test_translate_upsamples_whole_images_of_any_size(tmp_path):
    from PIL import Image

    from gankit.cli import main

    start_run(load_recipe("srgan-photos", SR_FAST + ["schedule.steps=1", "eval.every=0"]), out=tmp_path / "run")
    (tmp_path / "in").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(
        tmp_path / "in" / "a.png"
    )
    assert (
        main(["translate", str(tmp_path / "run"), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 0
    )
    assert Image.open(tmp_path / "o" / "a.png").size == (80, 48)  # x4, width x height
