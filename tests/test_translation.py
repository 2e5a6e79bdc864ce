"""Image-to-image translation: paired data, U-Net, PatchGAN, fidelity scores, pix2pix and the
context encoder (inpainting) end to end."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.config import ConfigError
from gankit.data import DATASETS
from gankit.data.base import to_float
from gankit.data.paired import PairedImages, class_colours, edge_map, square_holes
from gankit.data.split import split_holdout
from gankit.families.translation import hole_masks
from gankit.metrics.fidelity import psnr, ssim
from gankit.models import DISCRIMINATORS, GENERATORS
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.runlog import read_metrics
from gankit.training.run import resume_run, start_run
from gankit.training.trainer import Trainer

P2P_FAST = [
    "generator.width=8",
    "generator.max_width=16",
    "discriminator.width=8",
    "schedule.batch_size=8",
    "log.tensorboard=false",
]


# -- data -----------------------------------------------------------------------------------------
def _pairs(n=6, ca=1, cb=3, size=8):
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (n, ca, size, size), generator=g, dtype=torch.uint8)
    b = torch.randint(0, 256, (n, cb, size, size), generator=g, dtype=torch.uint8)
    return a, b


def test_paired_images_keep_pairs_through_streams_and_holdout():
    a, b = _pairs()
    src = PairedImages("t", a, b, torch.arange(6), 6)
    assert src.shape == (3, 8, 8) and src.in_shape == (1, 8, 8) and src.channels_a == 1
    x, y = src.stream(6, 0).next()
    for i in range(6):  # every streamed item is one whole (A, B) pair with its label
        k = int(y[i])
        assert torch.equal(x[i, :1], to_float(a[k : k + 1])[0]) and torch.equal(x[i, 1:], to_float(b[k : k + 1])[0])
    train, test = split_holdout(src, 2, seed=0)
    assert isinstance(train, PairedImages) and isinstance(test, PairedImages)
    assert test.in_shape == (1, 8, 8) and len(train) == 4 and len(test) == 2
    for part in (train, test):
        for i, k in enumerate(part.labels.tolist()):
            assert torch.equal(part.a[i], a[k]) and torch.equal(part.b[i], b[k])


def test_paired_folder_side_by_side_and_two_folders(tmp_path):
    a, b = _pairs(n=3, ca=3, cb=3, size=8)
    sbs, two = tmp_path / "sbs", tmp_path / "two"
    sbs.mkdir()
    for side in "AB":
        (two / side).mkdir(parents=True)
    for i in range(3):
        left, right = a[i].permute(1, 2, 0).numpy(), b[i].permute(1, 2, 0).numpy()
        Image.fromarray(np.concatenate([left, right], axis=1)).save(sbs / f"{i}.png")
        Image.fromarray(left).save(two / "A" / f"{i}.png")
        Image.fromarray(right).save(two / "B" / f"{i}.png")
    s = DATASETS.build("paired-folder", path=str(sbs), resolution=8)
    t = DATASETS.build("paired-folder", path=str(two), layout="folders", resolution=8)
    assert torch.equal(s.a, a) and torch.equal(s.b, b)  # same size: no resampling
    assert torch.equal(t.a, a) and torch.equal(t.b, b)
    r = DATASETS.build("paired-folder", path=str(sbs), resolution=8, direction="b-to-a", channels_b=1)
    assert r.in_shape == (1, 8, 8) and r.shape == (3, 8, 8)
    assert torch.equal(r.b, a)  # B -> A: the left halves are now the targets
    (two / "B" / "2.png").rename(two / "B" / "x.png")
    with pytest.raises(ValueError, match=r"only in A/: 2\.png.*only in B/: x\.png"):
        DATASETS.build("paired-folder", path=str(two), layout="folders", resolution=8)
    with pytest.raises(FileNotFoundError, match="needs subfolders A/ and B/"):
        DATASETS.build("paired-folder", path=str(sbs), layout="folders", resolution=8)


def test_edge_map_marks_the_border_of_a_square_only():
    img = torch.zeros(1, 1, 12, 12, dtype=torch.uint8)
    img[..., 3:9, 3:9] = 255
    e = edge_map(img)[0, 0] > 0
    assert e[3, 5] and e[5, 3] and e[8, 5] and e[2, 5]  # both sides of each edge of the square
    assert not e[5, 5] and not e[0, 0] and not e[11, 11]  # flat inside and outside


def test_builtin_pair_tasks():
    colour = DATASETS.build("pairs", task="colour", resolution=16)
    hue = class_colours(10)
    k = int(colour.labels[0])
    grey, rgb = colour.a[0, 0].float(), colour.b[0].float()
    bright = grey > 200
    assert torch.allclose(rgb[:, bright].mean(1) / 255, hue[k] * grey[bright].mean() / 255, atol=0.02)
    mask = DATASETS.build("pairs", task="mask", resolution=16)
    changed = (mask.a != mask.b).flatten(1).sum(1)
    assert (changed <= 64).all() and (mask.a == 127).flatten(1).sum(1).ge(64).all()  # an 8x8 grey hole each
    holes = square_holes(torch.zeros(5, 1, 16, 16, dtype=torch.uint8), 8, seed=3)
    assert torch.equal(holes, square_holes(torch.zeros(5, 1, 16, 16, dtype=torch.uint8), 8, seed=3))
    with pytest.raises(ValueError, match="needs data.path"):
        DATASETS.build("pairs", task="edges", base="mnist")


# -- networks -------------------------------------------------------------------------------------
def test_unet_shapes_depth_and_dropout():
    G = GENERATORS.build("unet", in_shape=(1, 32, 32), out_shape=(3, 32, 32), num_classes=0, width=8)
    assert G.depth == 5 and G(torch.randn(2, 1, 32, 32)).shape == (2, 3, 32, 32) and G.z_dim == 0
    assert sum(isinstance(m, torch.nn.Dropout) for m in G.modules()) == 3  # the 3 innermost decoder layers
    G28 = GENERATORS.build("unet", in_shape=(1, 28, 28), out_shape=(1, 28, 28), num_classes=0, width=8)
    assert G28.depth == 2  # 28 = 4 * 7: two halvings keep the size whole
    with pytest.raises(ValueError, match="divisible by 2"):
        GENERATORS.build("unet", in_shape=(1, 28, 28), out_shape=(1, 28, 28), num_classes=0, depth=3)
    # The skips carry fine detail past the bottleneck: an input pixel reaches the output at its own place.
    G.eval()
    x = torch.zeros(1, 1, 32, 32, requires_grad=True)
    G(x)[0, :, 10, 20].sum().backward()
    assert x.grad[0, 0, 10, 20].abs() > 0


@pytest.mark.parametrize("field", [1, 16, 34, 70])
def test_patchgan_receptive_field(field):
    """Each logit depends on exactly a field x field window of the input (norm off so the batch does not mix)."""
    D = DISCRIMINATORS.build(
        "patchgan", in_shape=(2, 96, 96), num_classes=0, receptive_field=field, norm="none", width=8
    )
    x = torch.randn(1, 2, 96, 96, requires_grad=True)
    logits = D(x).logits
    i, j = logits.shape[1] // 2, logits.shape[2] // 2
    logits[0, i, j].backward()
    touched = x.grad.abs().sum((0, 1)) > 0
    rows, cols = touched.any(1).nonzero(), touched.any(0).nonzero()
    assert rows.max() - rows.min() + 1 == field and cols.max() - cols.min() + 1 == field


def test_patchgan_full_covers_the_image_and_refuses_tiny_images():
    D = DISCRIMINATORS.build("patchgan", in_shape=(2, 32, 32), num_classes=0, receptive_field="full")
    assert D.receptive_field == 34
    with pytest.raises(ValueError, match="needs larger images"):
        DISCRIMINATORS.build("patchgan", in_shape=(2, 8, 8), num_classes=0, receptive_field=70)


# -- fidelity -------------------------------------------------------------------------------------
def test_psnr_and_ssim_analytic():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    d = 0.1
    assert torch.allclose(psnr(x, x + d), torch.full((2,), 10 * np.log10(4 / d**2)), atol=1e-4)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-6)
    # Flat images: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 2)^2.
    a, b, c1 = 0.5, -0.2, 0.02**2
    flat = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b))
    assert flat.item() == pytest.approx((2 * a * b + c1) / (a**2 + b**2 + c1), rel=1e-6)


def test_psnr_and_ssim_match_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 3, 24, 20, generator=g) * 2 - 1
    y = (x + 0.3 * torch.randn(3, 3, 24, 20, generator=g)).clamp(-1, 1)
    s, p = ssim(x, y), psnr(x, y)
    for i in range(3):
        a, b = x[i].permute(1, 2, 0).numpy(), y[i].permute(1, 2, 0).numpy()
        ref = metrics.structural_similarity(
            a, b, data_range=2, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert abs(s[i].item() - ref) < 1e-5
        assert abs(p[i].item() - metrics.peak_signal_noise_ratio(a, b, data_range=2)) < 1e-4


# -- the families ---------------------------------------------------------------------------------
def test_hole_masks():
    m = hole_masks(3, (1, 8, 8), "centre", 0.5, torch.device("cpu"))
    assert m.sum().item() == 3 * 16 and torch.equal(m[0, 0, 2:6, 2:6], torch.ones(4, 4))
    r = hole_masks(50, (1, 8, 8), "random", 0.25, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert (r.flatten(1).sum(1) == 4).all() and len({tuple(t.nonzero()[0].tolist()) for t in r}) > 5


def test_family_options_are_validated():
    r = load_recipe("pix2pix-digits", ["family.l1_weight=10"])
    assert r.family.name == "pix2pix" and r.family.options == {"l1_weight": 10.0}
    with pytest.raises(ConfigError, match="family 'pix2pix' has no option 'lambda'.*l1_weight"):
        load_recipe("pix2pix-digits", ["family.lambda=10"])
    assert load_recipe("gan-ring", ["family=unconditional", "objective=hinge"]).objective.name == "hinge"


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["generator=dcgan"], "needs an image-to-image generator.*unet"),
        (["data={name: digits}", "family=unconditional"], "maps images to images"),
        (["data={name: digits, resolution: 32}"], "needs paired data"),
        (["eval.metrics=[{name: fid, features: pixels}]"], "remove eval.metrics"),
    ],
)
def test_translation_refusals(tmp_path, overrides, match):
    r = load_recipe("pix2pix-digits", P2P_FAST + overrides)
    with pytest.raises(ConfigError, match=match):
        Trainer(r, tmp_path / "run")


def _heldout_l1(run):
    return [row["eval/l1"] for row in read_metrics(run) if "eval/l1" in row]


@pytest.mark.slow
def test_pix2pix_learns_edges_to_digits(tmp_path):
    r = load_recipe("pix2pix-digits", P2P_FAST + ["schedule.steps=150", "eval.every=0", "log.sample_every=150"])
    t = Trainer(r, tmp_path / "run")
    before, _ = t.family.scores(t.G)
    res = start_run(r, out=tmp_path / "run")
    after = res["eval"]
    assert after["l1"] < 0.6 * before["l1"], (before, after)
    assert after["l1"] < after["baseline_l1"] and after["psnr"] > after["baseline_psnr"] + 5
    assert after["baseline_l1"] == pytest.approx(before["baseline_l1"])  # the baseline ignores G
    rows = [row for row in read_metrics(tmp_path / "run") if "g/l1" in row]
    assert rows[-1]["g/l1"] < rows[0]["g/l1"]
    from PIL import Image as I

    w, h = I.open(res["samples"]).size
    assert w > h / 8 * 6 * 0.9  # six cells a row: two (input, output, target) triples


@pytest.mark.slow
def test_inpainting_learns_to_fill_holes(tmp_path):
    r = load_recipe("inpainting-digits", P2P_FAST + ["schedule.steps=150", "log.sample_every=150"])
    res = start_run(r, out=tmp_path / "run")
    s = res["eval"]
    assert s["l1"] < s["baseline_l1"] and s["psnr"] > s["baseline_psnr"], s
    t = Trainer(r, tmp_path / "other")
    x = to_float(t.family.heldout.images[:4])
    inp, target = t.family.example(x)
    out = t.family.output(inp, torch.full_like(x, 0.123))
    m = inp[:, -1:]
    assert torch.equal(out * (1 - m), x * (1 - m))  # visible pixels pass through untouched
    assert torch.allclose(out[m.expand_as(out) > 0], torch.tensor(0.123))


@pytest.mark.parametrize(
    "name,extra",
    [
        ("pix2pix-digits", P2P_FAST),
        (
            "dae-mnist",
            [
                "data={name: digits, resolution: 16, holdout: 100}",
                "generator.width=8",
                "generator.max_channels=16",
                "schedule.batch_size=16",
                "log.tensorboard=false",
            ],
        ),  # no discriminator
        (
            "cyclegan-mnist",
            [
                "data.base=digits",
                "data.path=null",
                "data.split=train",
                "data.holdout=50",
                "generator.width=8",
                "generator.blocks=1",
                "discriminator.width=8",
                "schedule.batch_size=4",
                "family.history=2",
                "log.tensorboard=false",
            ],
        ),  # two Gs, two Ds and the histories of fakes
    ],
)
def test_image_to_image_resume_is_bit_identical(tmp_path, name, extra):
    extra = extra + ["log.checkpoint_every=3", "eval.every=0"]
    start_run(load_recipe(name, extra + ["schedule.steps=6"]), out=tmp_path / "full")
    start_run(load_recipe(name, extra + ["schedule.steps=3"]), out=tmp_path / "half")
    resume_run(tmp_path / "half", ["schedule.steps=6"])
    a, b = (ck.load_weights(ck.find_checkpoint(tmp_path / n))[0] for n in ("full", "half"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_sampling_a_translation_run_explains(tmp_path):
    from gankit.sampling import write_samples

    start_run(load_recipe("pix2pix-digits", P2P_FAST + ["schedule.steps=1", "eval.every=0"]), out=tmp_path / "run")
    with pytest.raises(ValueError, match="translates images"):
        write_samples(tmp_path / "run", tmp_path / "s.png", num=4)


def test_translate_command_applies_a_trained_run(tmp_path):
    from gankit.cli import main

    start_run(load_recipe("pix2pix-digits", P2P_FAST + ["schedule.steps=2", "eval.every=0"]), out=tmp_path / "run")
    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 50), 60 * i, dtype=np.uint8)).save(tmp_path / "in" / f"img{i}.png")
    assert (
        main(["translate", str(tmp_path / "run"), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "o")]) == 0
    )
    outs = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert outs == ["img0.png", "img1.png", "img2.png"] and Image.open(tmp_path / "o" / "img0.png").size == (32, 32)
    # The written image is G's output for the resized input.
    from gankit.translating import translate_images

    t = Trainer(load_recipe("pix2pix-digits", P2P_FAST + ["schedule.steps=2"]), tmp_path / "x")
    t.load_checkpoint(ck.find_checkpoint(tmp_path / "run"))
    t.G.eval()
    with torch.no_grad():
        want = t.G(torch.full((1, 1, 32, 32), 60 / 127.5 - 1))
    got = torch.from_numpy(np.asarray(Image.open(tmp_path / "o" / "img1.png"), dtype=np.float32)) / 127.5 - 1
    assert (got - want[0, 0]).abs().max() < 1.5 / 127.5
    start_run(
        load_recipe(
            "dcgan-digits",
            [
                "generator.width=8",
                "discriminator.width=8",
                "schedule.steps=1",
                "schedule.batch_size=8",
                "log.tensorboard=false",
            ],
        ),
        out=tmp_path / "z",
    )
    with pytest.raises(ValueError, match="draws from noise"):
        translate_images(tmp_path / "z", tmp_path / "in", tmp_path / "o2")
