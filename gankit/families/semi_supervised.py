"""Semi-supervised GAN (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 5).

D is a classifier over K + 1 classes, the K real ones and "generated". Fixing the logit of the extra
class to l_{K+1} = 0 leaves an ordinary K-way classifier with logits l_1..l_K and
    D(x) = Z(x) / (Z(x) + 1),   Z(x) = sum_k exp(l_k(x)),
so the realness logit is log Z(x) = logsumexp_k l_k(x). The loss is
    L = L_supervised + L_unsupervised,
    L_supervised   = -E_{(x, y) ~ labelled} log p(y | x, y < K + 1)      (cross-entropy on l)
    L_unsupervised = -E_{x ~ data} log D(x) - E_{z} log(1 - D(G(z)))     (the logistic GAN loss on log Z)
and G is trained by feature matching (the ``feature-matching`` trick, Sec. 3.1), which the paper
found far better for classification than fooling D. The unlabelled stream's labels are never read.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.config import ConfigError
from gankit.data.split import labelled_subset
from gankit.families.base import FAMILIES, eval_batches
from gankit.families.step import Batch, StepContext
from gankit.families.unconditional import Unconditional
from gankit.models.base import DOut
from gankit.tricks import LOGISTIC


@FAMILIES.register("semi-supervised")
class SemiSupervised(Unconditional):
    """K+1-class discriminator with l_{K+1} = 0; supervised + unsupervised D loss; unconditional G.

    The family needs ``data.labels_per_class`` (the labelled subset, drawn from the training images)
    and reports ``test_error`` of D's classifier on ``data.holdout`` images at every evaluation.
    """

    family_name = "semi-supervised"
    classifier_d = True  # D gets the dataset's K classes as outputs; G stays unconditional
    d_options = {"conditioning": "auxiliary"}
    unsupported_tricks = ("pacgan", "unrolled")
    tricks_reason = "pacgan would classify packed samples, unrolling looks ahead on the GAN loss alone"
    objectives = LOGISTIC
    objectives_reason = "D(x) = Z/(Z+1) is a probability, which only the logistic objectives model"

    def __init__(
        self, *args: Any, labelled: tuple[torch.Tensor, torch.Tensor] | None = None, heldout: Any = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        if labelled is None:
            raise ValueError(
                "family 'semi-supervised' needs labelled examples: set data.labels_per_class "
                "(e.g. 10 for Salimans et al.'s 100 MNIST labels)"
            )
        bad = [n for n, p in self.d_penalties if p.adds_loss]
        if bad:
            raise ValueError(
                f"family 'semi-supervised' does not compose with D penalties {', '.join(bad)}: they "
                "act on DOut.logits, while this D's realness is logsumexp of its class logits"
            )
        self.labelled_x, self.labelled_y = labelled[0].to(self.device), labelled[1].to(self.device)
        self.heldout = heldout

    @classmethod
    def extra_inputs(cls, recipe: Any, source: Any) -> dict[str, Any]:
        """The labelled subset (``data.labels_per_class`` per class, drawn from the training images) and
        the held-out test images (``data.holdout``)."""

        per_class = int(recipe.data.options.get("labels_per_class", 0))
        if not per_class:
            raise ConfigError(
                "family 'semi-supervised' needs data.labels_per_class (e.g. 10: Salimans et al.'s 100 MNIST labels)"
            )
        try:
            labelled = labelled_subset(source, per_class, recipe.seed)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        return {"labelled": labelled, "heldout": getattr(source, "heldout", None)}

    @staticmethod
    def realness(out: DOut) -> torch.Tensor:
        """log Z(x) = logsumexp_k l_k(x): the logit of D(x) = Z / (Z + 1) when l_{K+1} = 0."""
        if out.class_logits is None:
            raise ValueError(
                "family 'semi-supervised' needs a discriminator with a class head "
                "(DOut.class_logits): use discriminator.name=dcgan or resnet"
            )
        return torch.logsumexp(out.class_logits, dim=1)

    def _labelled_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n labelled examples, cycling through shuffles of the small labelled set (the global RNG, which
        checkpoints keep, so a resumed run draws the same batches)."""
        m = len(self.labelled_y)
        idx = torch.cat([torch.randperm(m) for _ in range(-(-n // m))])[:n]
        idx = idx.to(self.device)
        return self.labelled_x.index_select(0, idx), self.labelled_y.index_select(0, idx)

    def d_terms(self, batch: Batch | None, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The unconditional D terms on log Z (``realness``), plus cross-entropy on a labelled batch; the
        unlabelled stream's labels are ignored."""
        terms = super().d_terms(batch, ctx)
        xl, yl = self._labelled_batch(ctx.batch_size)
        for _, t in self.tricks:  # DiffAugment: the classifier sees augmented labelled images too
            xl = t.augment(xl)
        assert self.D is not None
        labelled = self.D(xl).class_logits
        sup = F.cross_entropy(labelled, yl)
        terms.update(supervised=sup, labelled_acc=(labelled.argmax(1) == yl).float().mean(), loss=terms["loss"] + sup)
        return terms

    def scores(self, G: nn.Module | None = None, batch: int = 500) -> tuple[dict[str, float], dict[str, Any]]:
        """``test_error``: the fraction of held-out images D's classifier gets wrong (eval mode)."""
        if self.heldout is None:
            return {}, {}
        labels = self.heldout.labels
        assert self.D is not None
        pred = eval_batches(self.D, self.heldout.images, self.device, lambda out: out.class_logits.argmax(1), batch)
        wrong = int((pred != labels).sum())
        return (
            {"test_error": wrong / len(labels)},
            {
                "metric": "test-error",
                "scores": ["test_error"],
                "num_test": len(labels),
                "labelled": len(self.labelled_y),
            },
        )
