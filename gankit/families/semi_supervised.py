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

from gankit.data.base import to_float
from gankit.families.base import FAMILIES
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
    semi_supervised = True
    d_options = {"conditioning": "auxiliary"}
    unsupported_tricks = ("pacgan", "unrolled")
    tricks_reason = "pacgan would classify packed samples, unrolling looks ahead on the GAN loss alone"
    objectives = LOGISTIC
    objectives_reason = "D(x) = Z/(Z+1) is a probability, which only the logistic objectives model"

    def __init__(self, *args: Any, labelled: tuple[torch.Tensor, torch.Tensor] | None = None,
                 heldout: Any = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if labelled is None:
            raise ValueError("family 'semi-supervised' needs labelled examples: set data.labels_per_class "
                             "(e.g. 10 for Salimans et al.'s 100 MNIST labels)")
        bad = [n for n, p in self.d_penalties if p.adds_loss]
        if bad:
            raise ValueError(f"family 'semi-supervised' does not compose with D penalties {', '.join(bad)}: they "
                             "act on DOut.logits, while this D's realness is logsumexp of its class logits")
        self.labelled_x, self.labelled_y = labelled[0].to(self.device), labelled[1].to(self.device)
        self.heldout = heldout

    @staticmethod
    def realness(out: DOut) -> torch.Tensor:
        """log Z(x) = logsumexp_k l_k(x): the logit of D(x) = Z / (Z + 1) when l_{K+1} = 0."""
        if out.class_logits is None:
            raise ValueError("family 'semi-supervised' needs a discriminator with a class head "
                             "(DOut.class_logits): use discriminator.name=dcgan or resnet")
        return torch.logsumexp(out.class_logits, dim=1)

    def _labelled_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """n labelled examples, cycling through shuffles of the small labelled set (the global RNG, which
        checkpoints keep, so a resumed run draws the same batches)."""
        m = len(self.labelled_y)
        idx = torch.cat([torch.randperm(m) for _ in range(-(-n // m))])[:n]
        idx = idx.to(self.device)
        return self.labelled_x.index_select(0, idx), self.labelled_y.index_select(0, idx)

    def d_terms(self) -> dict[str, torch.Tensor]:
        real = self._real()  # labels of the unlabelled stream are dropped by _real
        with torch.no_grad():
            fake = self.G(self.noise(real.shape[0]))
        real_in, fake_in = self._d_inputs(real, fake)
        xl, yl = self._labelled_batch(real.shape[0])
        r, f = self.realness(self.D(real_in)), self.realness(self.D(fake_in))
        labelled = self.D(xl).class_logits
        unsup = self.adversarial_d_loss(r, f)
        sup = F.cross_entropy(labelled, yl)
        terms = {"adv": unsup, "supervised": sup, "real": r.mean(), "fake": f.mean(),
                 "labelled_acc": (labelled.argmax(1) == yl).float().mean()}
        return self.finish_d_terms(real_in, fake_in, None, r, f, terms, unsup + sup)

    def g_terms(self) -> dict[str, torch.Tensor]:
        n = self.batch_size or 64
        fake = self.G(self.noise(n))
        real = self._real() if any(t.needs_real_in_g_step for _, t in self.tricks) else None
        real_in, fake_in = self._d_inputs(real, fake)
        out = self.D(fake_in)
        loss = self.objective.g_loss(self.realness(out))
        terms = {"adv": loss}
        for name, t in self.tricks:
            replaced = t.g_loss(out, self.D(real_in) if real_in is not None else None, loss)
            if replaced is not None:
                terms[f"trick/{name}"] = replaced
                loss = replaced
        return self.finish_g_terms(fake, None, terms, loss)

    @torch.no_grad()
    def scores(self, batch: int = 500) -> tuple[dict[str, float], dict[str, Any]]:
        """``test_error``: the fraction of held-out images D's classifier gets wrong (eval mode)."""
        if self.heldout is None:
            return {}, {}
        was = self.D.training
        self.D.eval()
        try:
            images, labels = self.heldout.images, self.heldout.labels
            wrong = 0
            for i in range(0, len(labels), batch):
                x = to_float(images[i:i + batch]).to(self.device)
                pred = self.D(x).class_logits.argmax(1).cpu()
                wrong += int((pred != labels[i:i + batch]).sum())
        finally:
            self.D.train(was)
        return ({"test_error": wrong / len(labels)},
                {"metric": "test-error", "scores": ["test_error"], "num_test": len(labels),
                 "labelled": len(self.labelled_y)})
