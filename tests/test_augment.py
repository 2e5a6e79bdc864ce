"""DiffAugment (Zhao et al. 2020): each op checked against a reference built by slicing, and the trick's
wiring (both real and generated images, the labelled batch of the semi-supervised family, refusals)."""

import pytest
import torch
import torch.nn.functional as F

from gankit.config import ConfigError
from gankit.nn.augment import color, cutout, diff_augment, translate
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer
from gankit.tricks import TRICKS


def _candidates(x: torch.Tensor, sh: int, sw: int) -> list[torch.Tensor]:
    """Every whole-pixel shift of x within (sh, sw), by slicing a reflect-padded copy."""
    h, w = x.shape[-2:]
    p = F.pad(x, (sw, sw, sh, sh), mode="reflect")
    return [p[..., sh + a : sh + a + h, sw + b : sw + b + w] for a in range(-sh, sh + 1) for b in range(-sw, sw + 1)]


def test_translate_returns_one_reflect_padded_shift_per_sample_and_uses_them_all():
    torch.manual_seed(0)
    x = torch.randn(200, 2, 16, 16)  # random pixels: every shift of an image is distinct
    out = translate(x, ratio=0.125)  # up to 2 pixels each way
    seen = set()
    for i in range(len(x)):
        hits = [k for k, c in enumerate(_candidates(x[i], 2, 2)) if torch.equal(c, out[i])]
        assert len(hits) == 1, i
        seen.add(hits[0])
    assert seen == set(range(25))
    assert torch.equal(translate(x, ratio=0.0), x)


def test_translate_gradient_routes_every_output_pixel_to_one_input_pixel():
    x = torch.randn(8, 3, 12, 10, requires_grad=True)
    translate(x, 0.25).sum().backward()
    assert x.grad.sum().item() == pytest.approx(x.numel())  # each output pixel has gradient 1 on its source
    assert (x.grad >= 0).all() and (x.grad == x.grad.round()).all()


def test_cutout_zeroes_one_square_of_the_ratio_per_sample_at_most():
    torch.manual_seed(1)
    x = torch.ones(300, 1, 16, 16)
    out = cutout(x, ratio=0.5)
    full = 0
    for img in out[:, 0]:
        zero = (img == 0).nonzero()
        assert len(zero) > 0  # the centre is inside the image, so some of the square always is
        (r0, c0), (r1, c1) = zero.min(0).values, zero.max(0).values
        assert (img[r0 : r1 + 1, c0 : c1 + 1] == 0).all()  # one solid rectangle
        assert r1 - r0 + 1 <= 8 and c1 - c0 + 1 <= 8
        full += int(len(zero) == 64)
        assert ((img == 0) | (img == 1)).all()
    assert full > 50  # squares away from the border are whole


def test_color_is_an_affine_map_of_each_grey_image_within_the_papers_ranges():
    # One channel: brightness then contrast: out = c (x + b - mean(x + b)) + mean(x + b), c in [0.5, 1.5].
    torch.manual_seed(2)
    x = torch.rand(100, 1, 8, 8) * 2 - 1
    out = color(x)
    xc = x - x.mean(dim=(1, 2, 3), keepdim=True)
    oc = out - out.mean(dim=(1, 2, 3), keepdim=True)
    scale = (oc * xc).sum(dim=(1, 2, 3)) / (xc * xc).sum(dim=(1, 2, 3))
    assert torch.allclose(oc, scale.view(-1, 1, 1, 1) * xc, atol=1e-5)
    assert scale.min() >= 0.5 - 1e-5 and scale.max() <= 1.5 + 1e-5
    shift = out.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))
    assert shift.abs().max() <= 0.5 + 1e-5 and shift.std() > 0.2  # U(-0.5, 0.5): std 0.29


def test_saturation_keeps_the_grey_level_of_each_pixel_before_contrast():
    # A grey image (equal channels) has no saturation to scale: colour acts on it as on one channel.
    torch.manual_seed(3)
    g = torch.rand(50, 1, 8, 8)
    out = color(g.expand(50, 3, 8, 8).clone())
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-6) and torch.allclose(out[:, 1], out[:, 2], atol=1e-6)


def test_diff_augment_applies_only_the_policy():
    torch.manual_seed(4)
    x = torch.randn(4, 1, 8, 8)
    torch.manual_seed(5)
    a = diff_augment(x, ("translation",), translation=0.25)
    torch.manual_seed(5)
    assert torch.equal(a, translate(x, 0.25))


# -- the trick --------------------------------------------------------------------------------------
def test_trick_augments_real_and_generated_images_and_g_gets_gradient_through_it():
    t = TRICKS.build("diffaugment", policy=["translation", "cutout"])
    real = torch.randn(16, 1, 16, 16)
    fake = torch.randn(16, 1, 16, 16, requires_grad=True)
    torch.manual_seed(0)
    r, f = t.d_inputs(real, fake, step=0)
    assert not torch.equal(r, real) and not torch.equal(f, fake.detach())
    f.sum().backward()
    assert fake.grad is not None and (fake.grad != 0).any()
    none, _ = t.d_inputs(None, fake, step=0)  # the G step
    assert none is None


def test_trick_is_refused_with_the_reason_for_points_and_bad_options():
    with pytest.raises(ConfigError, match="images"):
        Trainer(load_recipe("gan-grid", ["tricks=[{name: diffaugment}]", "log.tensorboard=false"]), "/nonexistent")
    with pytest.raises(ConfigError, match="policy"):
        Trainer(load_recipe("dcgan-digits", ["tricks=[{name: diffaugment, policy: [rotate]}]"]), "/nonexistent")


def test_semi_supervised_classifier_sees_augmented_labelled_images():
    data = "data={name: digits, resolution: 16, holdout: 400, labels_per_class: 5}"
    small = ["log.tensorboard=false", "generator.width=16", "discriminator.width=16", "schedule.batch_size=8"]
    trick = "tricks=[{name: feature-matching}, {name: diffaugment, policy: [translation]}]"
    t = Trainer(load_recipe("ssgan-mnist", [data, *small, trick]), "/nonexistent")
    seen = []
    forward = t.D.forward
    t.D.forward = lambda x, *a, **k: (seen.append(x.detach().clone()), forward(x, *a, **k))[1]
    torch.manual_seed(0)
    t.family.d_terms(t.draw_batch(), t.ctx)
    labelled_in, pool = seen[-1], t.family.labelled_x  # the last D call classifies the labelled batch
    shifted = 0
    for img in labelled_in:
        found = [k for j in range(len(pool)) for k, c in enumerate(_candidates(pool[j], 2, 2)) if torch.equal(c, img)]
        assert found, "every labelled input is a shift of a labelled image"
        shifted += 12 not in found  # 12: the zero shift
    assert shifted >= 4


@pytest.mark.parametrize(
    "recipe,extra",
    [
        ("dcgan-digits", []),
        ("cgan-mnist", ["data={name: digits, resolution: 16}", "generator.width=8", "discriminator.width=8"]),
        ("acgan-mnist", ["data={name: digits, resolution: 16}", "generator.width=8", "discriminator.width=8"]),
        ("pix2pix-digits", []),
        ("progan-digits", []),
    ],
)
def test_diffaugment_trains_with_the_image_families(recipe, extra):
    trick = "tricks=[{name: diffaugment}]"
    t = Trainer(load_recipe(recipe, ["log.tensorboard=false", "schedule.batch_size=8", *extra, trick]), "/nonexistent")
    before = [p.detach().clone() for p in t.G.parameters()]
    terms = t.train_step(want_log=True)
    assert all(torch.isfinite(v).all() for v in terms.values()), terms
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))
