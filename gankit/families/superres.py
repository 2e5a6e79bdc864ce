"""SRGAN: photo-realistic single-image super-resolution (Ledig et al. 2017)."""

from __future__ import annotations

import warnings
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F

from gankit.families.base import FAMILIES
from gankit.families.step import Batch, Phase, StepContext
from gankit.families.translation import Translation
from gankit.nn.perceptual import VGGFeatures


def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-resolution input: bicubic (antialiased) downsampling by ``scale`` (Ledig et al. Sec. 2.1)."""
    return F.interpolate(x, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


@FAMILIES.register("srgan")
class SRGAN(Translation):
    """SRGAN (Ledig et al. 2017): x2 / x4 / x8 super-resolution, content loss + 1e-3 adversarial loss.

    The perceptual loss l^SR = l^SR_X + 10^-3 l^SR_Gen (Eq. 3), with

        l_MSE     = 1/(r^2 W H) sum (I^HR - G(I^LR))^2                         (Eq. 4)
        l_VGG/i,j = 1/(W_ij H_ij) sum (phi_ij(I^HR) - phi_ij(G(I^LR)))^2        (Eq. 5)
        l_Gen     = sum_n -log D(G(I^LR))                                       (Eq. 6)

    I^LR is the target downsampled by ``scale`` (bicubic). ``content``: ``mse`` (SRGAN-MSE), ``vgg``
    (SRGAN-VGG54 with ``vgg_weights``, a torchvision vgg19 state dict file; ``vgg_layer`` relu5_4 or e.g.
    relu2_2; features / 12.75), or ``d-features`` (MSE on the discriminator's own last conv maps). Offline
    with no VGG weights, ``vgg`` falls back to ``d-features`` and says so (a warning, and the scores'
    protocol names the content loss used). ``pretrain_steps``: G first trains on the content loss
    alone, D idle (the paper initialises SRGAN with a trained SRResNet). Baseline: bicubic
    upsampling of I^LR.
    """

    family_name = "srgan"
    baseline_name = "bicubic upsampling"

    def __init__(
        self,
        *args: Any,
        scale: Literal[2, 4, 8] = 4,
        content: Literal["mse", "vgg", "d-features"] = "mse",
        vgg_weights: str | None = None,
        vgg_layer: str = "relu5_4",
        content_weight: float = 1.0,
        adv_weight: float = 1e-3,
        pretrain_steps: int = 0,
        heldout: Any = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, heldout=heldout, **kw)
        if adv_weight < 0 or content_weight < 0:
            raise ValueError("family srgan: adv_weight and content_weight must be >= 0")
        if pretrain_steps < 0:
            raise ValueError(f"family srgan: pretrain_steps={pretrain_steps} must be >= 0")
        self.scale, self.adv_weight, self.content_weight = int(scale), adv_weight, content_weight
        self.pretrain_steps = pretrain_steps
        self.vgg = None
        if content == "vgg" and not vgg_weights:
            warnings.warn(
                "family srgan: content=vgg needs family.vgg_weights=/path/to/vgg19.pth (torchvision's "
                "ImageNet VGG-19, which gankit never downloads); using the discriminator's own features "
                "(content=d-features) instead",
                UserWarning,
                stacklevel=2,
            )
            content = "d-features"
        elif content == "vgg":
            assert vgg_weights is not None  # given: the branch above took content=vgg without weights
            self.vgg = VGGFeatures(vgg_weights, vgg_layer).to(self.device)
        self.content = content
        self.baseline_name = f"bicubic upsampling (content loss: {content})"

    @classmethod
    def g_in_shape(
        cls, shape: tuple[int, ...], in_shape: tuple[int, ...] | None, options: dict[str, Any]
    ) -> tuple[int, ...]:
        s = int(options.get("scale", 4))
        if len(shape) != 3 or shape[1] % s or shape[2] % s:
            raise ValueError(
                f"family srgan: the {'x'.join(map(str, shape[1:]))} images are not divisible by "
                f"scale={s}; pick data.size (or resolution) a multiple of {s}"
            )
        return (shape[0], shape[1] // s, shape[2] // s)

    def example(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return downsample(x, self.scale), x

    def recon(self, inp: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.content == "mse":
            loss = (out - target).square().mean()
        else:
            D = self.D
            assert D is not None
            phi = self.vgg if self.vgg is not None else (lambda t: D(t).features)
            with torch.no_grad():
                want = phi(target)
            loss = (phi(out) - want).square().mean()
        return {f"content_{self.content}": self.content_weight * loss}

    def baseline(self, inp: torch.Tensor) -> torch.Tensor:
        return bicubic_upsample(inp, self.scale)

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        if ctx.step >= self.pretrain_steps:
            return super().g_terms(batch, ctx)
        assert batch is not None
        inp, target = self.pair(batch)  # SRResNet pre-training: the content loss alone, D idle
        out = self.G(inp)
        terms = self.recon(inp, out, target)
        return self.finish_g_terms(out, None, terms, cast(torch.Tensor, sum(terms.values())), ctx)

    def phases(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None, n_critic: int) -> list[Phase]:
        d_phase, g_phase = super().phases(opt_g, opt_d, n_critic)
        d_phase.start = self.pretrain_steps
        return [d_phase, g_phase]
