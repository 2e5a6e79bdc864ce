"""CycleGAN: unpaired image-to-image translation (Zhu et al. 2017)."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from gankit.data.base import to_float
from gankit.families.base import FAMILIES
from gankit.families.step import Batch, Phase, StepContext
from gankit.families.unconditional import Unconditional
from gankit.metrics.classifier import load_or_train
from gankit.models.cyclegan import TwoWay
from gankit.nn.mode import eval_mode
from gankit.tricks import ImageHistory


def _as_channels(x: torch.Tensor, c: int) -> torch.Tensor:
    return x if x.shape[1] == c else x[:, :1].expand(-1, c, -1, -1)


@FAMILIES.register("cyclegan")
class CycleGAN(Unconditional):
    """CycleGAN (Zhu et al. 2017): unpaired translation, two Gs and two Ds tied by cycle consistency.

    G: A -> B and F: B -> A with discriminators D_B and D_A,

        L(G, F, D_A, D_B) = L_GAN(G, D_B, A, B) + L_GAN(F, D_A, B, A) + lambda L_cyc(G, F)       (Eq. 3)
        L_cyc(G, F) = E_a[||F(G(a)) - a||_1] + E_b[||G(F(b)) - b||_1]                           (Eq. 2)

    lambda = 10 (``cycle_weight``); the identity loss lambda_id lambda (E||G(b) - b||_1 + E||F(a) - a||_1)
    (Sec. 5.2; ``identity_weight`` 0.5 as in the authors' code, 0 turns it off; needs A and B with one
    channel count); least-squares objective (Sec. 4, the paper's choice; any objective works); D is
    shown a history of 50 earlier fakes (``history``). D's loss is not halved as in the authors'
    code. Evaluations on ``data.holdout`` report the cycle errors and, with labelled data, how often
    a classifier of the target domain recognises the translated digits' class.
    """

    family_name = "cyclegan"
    translates = True
    two_way = True
    distributed = False
    grid_legend = "a | G(a) | F(G(a)) | b | F(b) | G(F(b)) in each row"
    G: TwoWay  # G (``ab``: A -> B) and F (``ba``: B -> A), built by training/build.py
    D: TwoWay  # D_B (``b``) and D_A (``a``)

    @classmethod
    def check(cls, objective: str, tricks: list[str]) -> None:
        super().check(objective, tricks)
        if tricks:
            raise ValueError(
                f"family 'cyclegan' does not compose with trick(s) {', '.join(tricks)}: they assume one "
                "G and one D; its own history of fakes is family.history"
            )

    @classmethod
    def g_in_shape(
        cls, shape: tuple[int, ...], in_shape: tuple[int, ...] | None, options: dict[str, Any]
    ) -> tuple[int, ...]:
        if in_shape is None:
            raise ValueError(
                "family cyclegan needs two image collections: data.name=unpaired (built-in tasks) "
                "or data.name=unpaired-folder (your trainA/ and trainB/)"
            )
        return in_shape

    def __init__(
        self,
        *args: Any,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        history: int = 50,
        heldout: Any = None,
        probe_train: Any = None,
        **kw: Any,
    ) -> None:
        super().__init__(*args, **kw)
        if self.d_penalties or self.g_penalties:
            raise ValueError("family 'cyclegan' takes no penalties (they are written for one G and one D); remove them")
        if cycle_weight < 0 or identity_weight < 0:
            raise ValueError("family cyclegan: cycle_weight and identity_weight must be >= 0")
        ab = self.G.ab  # A -> B: it reads A's channels and writes B's
        self.ca, self.cb = int(cast(tuple[int, ...], ab.in_shape)[0]), int(cast(tuple[int, ...], ab.out_shape)[0])
        if identity_weight and self.ca != self.cb:
            raise ValueError(
                f"family cyclegan: the identity loss compares G(b) with b, but A has {self.ca} channels "
                f"and B {self.cb}; set family.identity_weight=0"
            )
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        self.history = {"a": ImageHistory(history, seed=1), "b": ImageHistory(history, seed=2)}
        self.heldout, self.train_source = heldout, probe_train
        self._classifiers: dict[str, Any] = {}

    @classmethod
    def extra_inputs(cls, recipe: Any, source: Any) -> dict[str, Any]:
        # the class-agreement classifiers train on the training sides
        super().extra_inputs(recipe, source)
        heldout = getattr(source, "heldout", None)
        return {**({"heldout": heldout} if heldout is not None else {}), "probe_train": source}

    def _split(self, batch: Batch | None) -> tuple[torch.Tensor, torch.Tensor]:
        assert batch is not None
        return batch.x[:, : self.ca], batch.x[:, self.ca :]

    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        a, b = self._split(batch)
        with torch.no_grad():
            fake_b, fake_a = self.history["b"](self.G.ab(a)), self.history["a"](self.G.ba(b))
        rb, fb = self.D.b(b).logits, self.D.b(fake_b).logits
        ra, fa = self.D.a(a).logits, self.D.a(fake_a).logits
        loss_b, loss_a = self.adversarial_d_loss(rb, fb), self.adversarial_d_loss(ra, fa)
        self.objective.update(
            torch.cat([rb.flatten(), ra.flatten()]).detach(), torch.cat([fb.flatten(), fa.flatten()]).detach()
        )
        return {
            "adv_b": loss_b,
            "adv_a": loss_a,
            "real": (rb.mean() + ra.mean()) / 2,
            "fake": (fb.mean() + fa.mean()) / 2,
            "loss": loss_a + loss_b,
        }

    def g_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        a, b = self._split(batch)
        fake_b, fake_a = self.G.ab(a), self.G.ba(b)
        terms = {
            "adv_ab": self.adversarial_g_loss(self.D.b(fake_b).logits, lambda: self.D.b(b).logits),
            "adv_ba": self.adversarial_g_loss(self.D.a(fake_a).logits, lambda: self.D.a(a).logits),
            "cycle": self.cycle_weight * ((self.G.ba(fake_b) - a).abs().mean() + (self.G.ab(fake_a) - b).abs().mean()),
        }
        if self.identity_weight:
            terms["identity"] = (
                self.cycle_weight
                * self.identity_weight
                * ((self.G.ab(b) - b).abs().mean() + (self.G.ba(a) - a).abs().mean())
            )
        terms["loss"] = sum(terms.values())
        return terms

    def phases(self, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer | None, n_critic: int) -> list[Phase]:
        assert opt_d is not None
        self.opt_d = opt_d
        return [
            Phase("D", self.D, opt_d, self.d_terms, frozen=(self.G,), repeats=n_critic),
            Phase("G", self.G, opt_g, self.g_terms, frozen=(self.D,), batch="reuse"),
        ]

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {side: h.state_dict() for side, h in self.history.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for side, h in self.history.items():
            if side in state:
                h.load_state_dict(state[side], self.device)

    # -- pictures and scores ----------------------------------------------------------------------
    @torch.no_grad()
    def _both_ways(self, G: TwoWay, a: torch.Tensor, b: torch.Tensor, batch: int = 250) -> dict[str, torch.Tensor]:
        """a, G(a), F(G(a)), b, F(b), G(F(b)) for uint8 images, G in eval mode, on the CPU."""
        out: dict[str, list[torch.Tensor]] = {k: [] for k in ("a", "ab", "aba", "b", "ba", "bab")}
        with eval_mode(G):
            for xa, xb in zip(a.split(batch), b.split(batch)):
                xa, xb = to_float(xa).to(self.device), to_float(xb).to(self.device)
                ab, ba = G.ab(xa), G.ba(xb)
                for k, v in (("a", xa), ("ab", ab), ("aba", G.ba(ab)), ("b", xb), ("ba", ba), ("bab", G.ab(ba))):
                    out[k].append(v.float().cpu())
        return {k: torch.cat(v) for k, v in out.items()}

    def sample_grid(self, G: nn.Module, train_images: torch.Tensor, n: int = 8) -> tuple[torch.Tensor, int]:
        """Rows a | G(a) | F(G(a)) | b | F(b) | G(F(b)), on held-out images when there are some."""
        if self.heldout is not None:
            a, b = self.heldout.a.images[:n], self.heldout.b.images[:n]
        else:  # the first training batch: drawing a new one would shift the training stream
            x = train_images[:n]
            a, b = x[:, : self.ca], x[:, self.ca :]
        m = min(len(a), len(b))
        r = self._both_ways(cast(TwoWay, G), a[:m], b[:m])  # the sampling generator: the pair or its average
        c = max(self.ca, self.cb)
        cols = [_as_channels(r[k], c) for k in ("a", "ab", "aba", "b", "ba", "bab")]
        return torch.stack(cols, dim=1).flatten(0, 1), 6

    def _classifier(self, side: str) -> Any:
        if side not in self._classifiers:
            source = getattr(self.train_source, side)
            with torch.enable_grad():  # trained once (then cached) when first asked for, maybe under no_grad
                self._classifiers[side] = load_or_train(source, device=self.device, progress=False).eval()
        return self._classifiers[side]

    @torch.no_grad()
    def _agreement(self, side: str, images: torch.Tensor, labels: torch.Tensor) -> float:
        net = self._classifier(side)
        pred = torch.cat([net(x.to(self.device))["logits"].argmax(1).cpu() for x in images.split(500)])
        return (pred == labels).float().mean().item()

    def scores(self, G: nn.Module | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        """``cycle_a`` = mean |F(G(a)) - a| and ``cycle_b`` on held-out images ([-1, 1] scale). With
        labels on both sides: ``agreement_ab`` / ``agreement_ba``, the fraction of translated held-out
        images a classifier trained on the target side's training images labels with their class,
        beside ``baseline_agreement_*`` (the untranslated images, same classifier) and the classifiers'
        own held-out accuracy (``classifier_accuracy_*``)."""
        if self.heldout is None:
            return {}, {}
        ha, hb = self.heldout.a, self.heldout.b
        r = self._both_ways(cast(TwoWay, G) if G is not None else self.G, ha.images, hb.images)
        found = {"cycle_a": (r["aba"] - r["a"]).abs().mean().item(), "cycle_b": (r["bab"] - r["b"]).abs().mean().item()}
        proto: dict[str, Any] = {"metric": "cycle", "num_test": len(ha) + len(hb)}
        train = self.train_source
        if train is not None and all(s.labels is not None for s in (ha, hb, train.a, train.b)):
            found.update(
                {
                    "agreement_ab": self._agreement("b", r["ab"], ha.labels),
                    "agreement_ba": self._agreement("a", r["ba"], hb.labels),
                    "baseline_agreement_ab": self._agreement("b", r["a"], ha.labels),
                    "baseline_agreement_ba": self._agreement("a", r["b"], hb.labels),
                    "classifier_accuracy_a": self._agreement("a", r["a"], ha.labels),
                    "classifier_accuracy_b": self._agreement("b", r["b"], hb.labels),
                }
            )
            proto["baseline"] = "the untranslated images, judged by the target side's classifier"
        proto["scores"] = sorted(found)
        return found, proto
