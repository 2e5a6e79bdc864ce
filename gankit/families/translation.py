"""Image-to-image families: G maps an input image to an output image, no latent z.

They share one shape (``Translation``): a data batch becomes (input, target); D judges what the
family says it judges (pix2pix: the (input, output) pair; the context encoder and SRGAN: the output
alone); G minimises a weighted adversarial term plus a reconstruction term; with ``data.holdout``
every evaluation scores the outputs on the held-out images against their targets (L1, PSNR, SSIM:
gankit.metrics.fidelity) beside the same scores of a no-learning baseline (the input itself, a
mean-filled hole, bicubic upsampling), and sample grids show input | output | target.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, cast

import torch
import torch.nn.functional as F
from torch import nn

from gankit.data.base import make_generator, to_float
from gankit.families.base import FAMILIES
from gankit.families.step import Batch, BatchRule, Phase, StepContext
from gankit.families.unconditional import Unconditional
from gankit.metrics.fidelity import psnr, ssim
from gankit.models.autoencoder import Autoencoder
from gankit.nn.mode import eval_mode
from gankit.seeds import StreamWord


class Translation(Unconditional):
    """What the image-to-image families share; subclasses define ``example``, ``judged``, ``recon``
    and ``baseline``."""

    translates = True  # G(input image) -> image; the trainer asks the family for grids and scores
    # Tricks that replace G's critic or loss, or reshape what D sees, assume the z -> x game.
    unsupported_tricks: ClassVar[tuple[str, ...]] = ("feature-matching", "unrolled", "pacgan", "pulling-away")
    tricks_reason = "they assume G maps noise to samples; use them with family=unconditional"
    adv_weight = 1.0
    grid_legend = "input | output | target, two triples a row"
    baseline_name = ""  # what ``baseline`` computes, for the scores' protocol

    def __init__(self, *args: Any, heldout: Any = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.heldout = heldout

    @classmethod
    def extra_inputs(cls, recipe: Any, source: Any) -> dict[str, Any]:
        super().extra_inputs(recipe, source)
        heldout = getattr(source, "heldout", None)
        return {"heldout": heldout} if heldout is not None else {}

    # -- what a subclass says ---------------------------------------------------------------------
    @classmethod
    def g_in_shape(
        cls, shape: tuple[int, ...], in_shape: tuple[int, ...] | None, options: dict[str, Any]
    ) -> tuple[int, ...]:
        """The input image shape G reads, given the data's target ``shape`` (and paired data's ``in_shape``)."""
        return shape

    def example(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) from a batch of data (random masks drawn from ``generator`` when given)."""
        raise NotImplementedError

    def output(self, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The image G's raw output stands for (the context encoder pastes its fill into the hole)."""
        return out

    def judged(self, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """What D sees for an output (or target) ``out`` of input ``inp``."""
        return out

    def recon(self, inp: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """G's weighted reconstruction term(s)."""
        raise NotImplementedError

    def baseline(self, inp: torch.Tensor) -> torch.Tensor:
        """The no-learning answer the scores are compared with."""
        raise NotImplementedError

    def display(self, inp: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The input drawn beside outputs like ``like``: channels matched, size matched (nearest)."""
        x = inp[:, : like.shape[1]] if inp.shape[1] >= like.shape[1] else inp[:, :1].expand(-1, like.shape[1], -1, -1)
        if x.shape[2:] != like.shape[2:]:
            x = F.interpolate(x, size=like.shape[2:], mode="nearest")
        return x

    # -- the game ---------------------------------------------------------------------------------
    def pair(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(input, target) of a batch, derived once: the G step that reuses D's batch sees the same masks."""
        return batch.derive("pair", lambda: self.example(batch.x))

    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        inp, target = self.pair(batch)
        with torch.no_grad():
            out = self.output(inp, self.G(inp))
        return self.d_loss_terms(self.judged(inp, target), self.judged(inp, out), ctx)

    def g_batch(self) -> BatchRule:
        return "reuse"  # G trains on the batch D just saw, as in the authors' code

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        inp, target = self.pair(batch)
        out = self.output(inp, self.G(inp))
        real = self.judged(inp, target) if self.objective.g_uses_real else None
        real_in, fake_in = self.d_inputs(real, self.judged(inp, out), ctx.step)
        D = self.D
        assert D is not None
        real_logits = (lambda: self.realness(D(real_in))) if real_in is not None else None
        adv = self.adv_weight * self.adversarial_g_loss(self.realness(D(fake_in)), real_logits)
        terms = {"adv": adv, **self.recon(inp, out, target)}
        return self.finish_g_terms(out, None, terms, cast(torch.Tensor, sum(terms.values())), ctx)

    # -- pictures and scores ----------------------------------------------------------------------
    @torch.no_grad()
    def _translate(
        self, G: nn.Module, images: torch.Tensor, batch: int = 250
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input, output, target) for uint8 data ``images``, G in eval mode, on the CPU."""
        gen = make_generator(0, StreamWord.SCORE_MASKS)  # the same held-out masks at every evaluation
        parts: list[tuple[torch.Tensor, ...]] = []
        with eval_mode(G):
            for xb in images.split(batch):
                inp, target = self.example(to_float(xb).to(self.device), gen)
                out = self.output(inp, G(inp)).clamp(-1, 1)
                parts.append((inp.cpu(), out.float().cpu(), target.cpu()))
        return tuple(torch.cat(p) for p in zip(*parts))  # type: ignore[return-value]

    def sample_grid(self, G: nn.Module, train_images: torch.Tensor, n: int = 16) -> tuple[torch.Tensor, int]:
        """Rows of (input, output, target) triples, two per row, on held-out images when there are
        some (else on ``train_images``, the first training batch); returns (images, images per row)."""
        images = self.heldout.images[:n] if self.heldout is not None else train_images[:n]
        inp, out, target = self._translate(G, images)
        triples = torch.stack([self.display(inp, target), out, target], dim=1)  # (n, 3, C, H, W)
        return triples.flatten(0, 1), 6

    def fidelity(self, out: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return {
            "l1": (out - target).abs().mean().item(),
            "psnr": psnr(out, target).mean().item(),
            "ssim": ssim(out, target).mean().item(),
        }

    def scores(self, G: nn.Module | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        """L1 (mean absolute error on the [-1, 1] scale), PSNR (dB) and SSIM of G's outputs on the
        held-out images, and the same for the baseline (``baseline_*``)."""
        if self.heldout is None:
            return {}, {}
        inp, out, target = self._translate(G if G is not None else self.G, self.heldout.images)
        base = self.baseline(inp).clamp(-1, 1)
        found = {**self.fidelity(out, target), **{f"baseline_{k}": v for k, v in self.fidelity(base, target).items()}}
        return found, {
            "metric": "fidelity",
            "scores": sorted(found),
            "num_test": len(self.heldout),
            "baseline": self.baseline_name,
            "data_range": 2.0,
            "ssim_window": "gaussian 11x11, sigma 1.5",
        }


@FAMILIES.register("pix2pix")
class Pix2Pix(Translation):
    """pix2pix (Isola et al. 2017): paired translation, a conditional PatchGAN D plus lambda L1.

    G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G) (Eq. 4), with

        L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_x[log(1 - D(x, G(x)))]   (Eq. 1, no z: dropout is the noise)
        L_L1(G)      = E_{x,y}[||y - G(x)||_1]                             (Eq. 3)

    D judges (input, output) pairs stacked on channels, patch by patch (PatchGAN); lambda = 100.
    The objective is any of gankit's (the paper's non-saturating form by default); D's loss is not
    halved as in the authors' code (Adam is nearly invariant to the scale). Needs paired data
    (``pairs`` or ``paired-folder``). Baseline: the input itself (channels broadcast).
    """

    family_name = "pix2pix"
    baseline_name = "identity (the input as the output)"

    def __init__(self, *args: Any, l1_weight: float = 100.0, heldout: Any = None, **kw: Any) -> None:
        super().__init__(*args, heldout=heldout, **kw)
        if l1_weight < 0:
            raise ValueError(f"family pix2pix: l1_weight={l1_weight} must be >= 0")
        self.l1_weight = l1_weight
        self.channels_a = int(cast(tuple[int, ...], self.G.in_shape)[0])  # G's input image shape

    @classmethod
    def g_in_shape(
        cls, shape: tuple[int, ...], in_shape: tuple[int, ...] | None, options: dict[str, Any]
    ) -> tuple[int, ...]:
        if in_shape is None:
            raise ValueError(
                "family pix2pix needs paired data: data.name=pairs (built-in tasks) or "
                "data.name=paired-folder (your own A|B pairs)"
            )
        return in_shape

    @classmethod
    def d_in_shape(cls, shape: tuple[int, ...], z_dim: int, in_shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
        a = in_shape or shape
        return (a[0] + shape[0], *shape[1:])  # D sees (input, output) stacked on channels

    def example(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return x[:, : self.channels_a], x[:, self.channels_a :]

    def judged(self, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return torch.cat([inp, out], dim=1)

    def recon(self, inp: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"l1": self.l1_weight * (out - target).abs().mean()}

    def baseline(self, inp: torch.Tensor) -> torch.Tensor:
        c = cast(tuple[int, ...], self.G.out_shape)[0]
        return inp[:, :c] if inp.shape[1] >= c else inp[:, :1].expand(-1, c, -1, -1)


def hole_masks(
    n: int,
    shape: tuple[int, ...],
    kind: str,
    size: float,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, 1, H, W) masks, 1 in the hole: a centred square of side ``size`` * H (``centre``, as in
    Pathak et al.'s centre-region experiments) or one at a random position per image (``random``)."""
    _, h, w = shape
    sh, sw = max(1, round(size * h)), max(1, round(size * w))
    m = torch.zeros(n, 1, h, w, device=device)
    if kind == "centre":
        top, left = torch.full((n,), (h - sh) // 2), torch.full((n,), (w - sw) // 2)
    else:
        top = torch.randint(0, h - sh + 1, (n,), generator=generator)
        left = torch.randint(0, w - sw + 1, (n,), generator=generator)
    rows = torch.arange(h)[None, :, None]
    cols = torch.arange(w)[None, None, :]
    inside = (
        (rows >= top[:, None, None])
        & (rows < (top + sh)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + sw)[:, None, None])
    )
    m[:, 0] = inside.to(device=device, dtype=m.dtype)
    return m


@FAMILIES.register("inpainting")
class Inpainting(Translation):
    """Context encoder (Pathak et al. 2016): fills a masked hole; masked L2 plus adversarial loss.

    L = lambda_rec L_rec + lambda_adv L_adv (Sec. 3.2) with

        L_rec = ||M (x) (x - F((1 - M) (x) x))||_2^2                                  (Eq. 1)
        L_adv = max_D E_x[log D(x) + log(1 - D(F((1 - M) (x) x)))]                     (Eq. 2)

    and lambda_rec = 0.999, lambda_adv = 0.001 (Sec. 3.2). G reads the image with the hole filled
    with 0 (mid grey) plus the mask as one more channel (so random holes are visible to it); its
    output is pasted into the hole. L_rec is the mean over hole pixels. Deviation: D judges the whole
    completed image rather than the hole region alone. Baseline: the hole filled with the mean of the
    visible pixels (per image and channel).
    """

    family_name = "inpainting"
    baseline_name = "the hole filled with the mean of the visible pixels"

    def __init__(
        self,
        *args: Any,
        mask: Literal["centre", "random"] = "centre",
        mask_size: float = 0.5,
        rec_weight: float = 0.999,
        adv_weight: float = 0.001,
        heldout: Any = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, heldout=heldout, **kw)
        if not 0 < mask_size < 1:
            raise ValueError(
                f"family inpainting: mask_size={mask_size} must be in (0, 1) (the hole's side / the image's)"
            )
        if rec_weight < 0 or adv_weight < 0:
            raise ValueError("family inpainting: rec_weight and adv_weight must be >= 0")
        self.mask, self.mask_size = mask, mask_size
        self.rec_weight, self.adv_weight = rec_weight, adv_weight
        self.image_shape = tuple(cast(tuple[int, ...], self.G.out_shape))

    @classmethod
    def g_in_shape(
        cls, shape: tuple[int, ...], in_shape: tuple[int, ...] | None, options: dict[str, Any]
    ) -> tuple[int, ...]:
        if len(shape) != 3:
            raise ValueError("family inpainting fills holes in images; the data is not images")
        return (shape[0] + 1, *shape[1:])  # the holed image and the mask

    def example(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        m = hole_masks(x.shape[0], self.image_shape, self.mask, self.mask_size, x.device, generator)
        return torch.cat([x * (1 - m), m], dim=1), x

    def output(self, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        m = inp[:, -1:]
        return inp[:, :-1] * (1 - m) + out * m

    def recon(self, inp: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        m = inp[:, -1:]
        sq = ((out - target) * m).square().sum() / (m.sum() * out.shape[1]).clamp_min(1)
        return {"rec": self.rec_weight * sq}

    def baseline(self, inp: torch.Tensor) -> torch.Tensor:
        x, m = inp[:, :-1], inp[:, -1:]
        visible = (1 - m).sum(dim=(2, 3), keepdim=True).clamp_min(1)
        mean = (x * (1 - m)).sum(dim=(2, 3), keepdim=True) / visible
        return x * (1 - m) + mean * m


@FAMILIES.register("autoencoder")
class AutoencoderFamily(Translation):
    """An autoencoder trained alone (no discriminator): plain, denoising or sparse.

    x -> corrupt -> encode -> decode -> x_hat, minimising the reconstruction error of the *clean* x plus an
    optional sparsity penalty:

        L = ||x - g(f(c(x)))||^2 + lambda |f(c(x))|_1

    ``corruption``: ``none`` (a plain autoencoder), ``mask`` (each pixel set to black, -1, with
    probability ``noise``: Vincent et al. 2008's masking noise) or ``gaussian`` (x + N(0, noise^2),
    Vincent et al. 2010); ``sparsity`` lambda > 0 gives a sparse autoencoder (the L1 code penalty of
    sparse coding and predictive sparse decomposition, Kavukcuoglu et al. 2009); mean-squared error.
    These are also the building blocks of the EBGAN/BEGAN discriminators. Baseline: the corrupted
    input itself. Grids show corrupted | reconstruction | clean.
    """

    family_name = "autoencoder"
    adversarial = False
    grid_legend = "corrupted | reconstruction | clean, two triples a row"
    baseline_name = "the corrupted input"
    unsupported_tricks = ()  # every trick is refused (check): there is no adversarial game
    G: Autoencoder  # generator=autoencoder, with its encode step (checked in __init__)

    @classmethod
    def check(cls, objective: str, tricks: list[str]) -> None:
        if tricks:
            raise ValueError(
                f"family 'autoencoder' trains no GAN, so trick(s) {', '.join(tricks)} do not apply; remove them"
            )

    def __init__(
        self,
        *args: Any,
        corruption: Literal["none", "mask", "gaussian"] = "mask",
        noise: float = 0.25,
        sparsity: float = 0.0,
        heldout: Any = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, heldout=heldout, **kw)
        if corruption == "mask" and not 0 <= noise < 1:
            raise ValueError(f"family autoencoder: masking noise={noise} is a probability in [0, 1)")
        if noise < 0 or sparsity < 0:
            raise ValueError("family autoencoder: noise and sparsity must be >= 0")
        if not callable(getattr(self.G, "encode", None)):
            raise ValueError("family autoencoder needs generator=autoencoder (a network with an encode step)")
        self.corruption, self.noise, self.sparsity = corruption, noise, sparsity

    @classmethod
    def g_in_shape(
        cls, shape: tuple[int, ...], in_shape: tuple[int, ...] | None, options: dict[str, Any]
    ) -> tuple[int, ...]:
        return shape

    def example(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.corruption == "none" or self.noise == 0:
            return x, x
        if generator is not None:  # held-out scoring: the same corruption at every evaluation
            u = torch.rand(x.shape, generator=generator).to(x.device)
            e = torch.randn(x.shape, generator=generator).to(x.device)
        else:
            u, e = torch.rand_like(x), torch.randn_like(x)
        if self.corruption == "mask":
            return torch.where(u < self.noise, torch.full_like(x, -1.0), x), x
        return x + self.noise * e, x

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert batch is not None
        inp, target = self.pair(batch)
        code = self.G.encode(inp)
        out = self.G.decoder(code)
        terms = {"recon": (out - target).square().mean()}
        if self.sparsity:
            terms["sparsity"] = self.sparsity * code.abs().mean()
        return self.finish_g_terms(out, None, terms, sum(terms.values()), ctx)

    def phases(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None, n_critic: int) -> list[Phase]:
        return [Phase("G", self.G, opt_g, self.g_terms)]

    def baseline(self, inp: torch.Tensor) -> torch.Tensor:
        return inp

    def scores(self, G: nn.Module | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        """The held-out reconstruction scores, plus ``code_l1`` (mean |code|) and ``code_zero`` (the
        fraction of code units below 1e-3 in magnitude: the sparsity a sparse autoencoder buys)."""
        found, proto = super().scores(G)
        if not found:
            return found, proto
        if self.corruption == "none" or self.noise == 0:  # the input is the target: no baseline to beat
            found = {k: v for k, v in found.items() if not k.startswith("baseline_")}
            proto.pop("baseline", None)
        net = cast(Autoencoder, G) if G is not None else self.G  # the sampling generator: G or its average
        with eval_mode(net), torch.no_grad():
            codes = torch.cat([net.encode(to_float(xb).to(self.device)).cpu() for xb in self.heldout.images.split(500)])
        found.update({"code_l1": codes.abs().mean().item(), "code_zero": (codes.abs() < 1e-3).float().mean().item()})
        proto["scores"] = sorted(found)
        return found, proto
