"""Training tricks, registered by name in ``TRICKS``: small hooks the family calls at fixed points.

A trick may override any of these (the base class does nothing):

* ``check(objective_name)``: refuse meaningless combinations up front, with the reason;
* ``d_in_shape(shape)``: the discriminator's input shape (PacGAN packs m samples together);
* ``d_inputs(real, fake, step)``: transform what D sees, in the D step and the G step alike
  (``real`` is None in the G step);
* ``augment(x)``: transform real images D classifies outside the game (the semi-supervised
  family's labelled batch), as ``d_inputs`` transforms the real ones in it;
* ``d_loss(objective, real_logits, fake_logits)``: replace the discriminator loss;
* ``g_critic(family, fake, real, ctx)``: the discriminator G plays against in its step (unrolled GAN),
  or None; ``real`` is the G step's real batch (the trainer draws one when ``needs_batch_in_g_step``),
  ``ctx`` the step context, and only the family's public methods are used (``D``, ``opt_d``,
  ``d_inputs``, ``adversarial_d_loss``);
* ``g_loss(fake_out, real_out, adversarial)``: replace the generator loss (feature matching);
* ``extra_loss(net_name, net)``: a term added to that network's loss (historical averaging);
* ``observe(real_logits, fake_logits)``: D's detached outputs after every D loss (ADA steers p by them);
* ``log_values()``: scalars logged as ``tricks/<name>/<key>`` (and plotted in the report);
* ``state_dict()`` / ``load_state_dict()``: state that a checkpoint keeps for exact resume.
"""

from __future__ import annotations

from typing import Any

from gankit.tricks.augment import ADA, DiffAugment
from gankit.tricks.base import LOGISTIC, TRICKS, Trick
from gankit.tricks.features import FeatureMatching, HistoricalAveraging, PullingAway
from gankit.tricks.game import PacGAN, Unrolled
from gankit.tricks.history import ImageHistory
from gankit.tricks.labels import InstanceNoise, LabelSmoothing, smoothed_terms

__all__ = [
    "ADA",
    "LOGISTIC",
    "TRICKS",
    "DiffAugment",
    "FeatureMatching",
    "HistoricalAveraging",
    "ImageHistory",
    "InstanceNoise",
    "LabelSmoothing",
    "PacGAN",
    "PullingAway",
    "Trick",
    "Unrolled",
    "build_tricks",
    "smoothed_terms",
]


def build_tricks(components: list[Any], objective: str) -> list[tuple[str, Trick]]:
    """Recipe components -> built tricks, each checked against the objective. PacGAN goes last, so
    that noise is added per sample before packing."""
    tricks = [(c.name, TRICKS.build(c.name, **c.options)) for c in components]
    names = [n for n, _ in tricks]
    for n in set(names):
        if names.count(n) > 1:
            raise ValueError(f"trick {n!r} is listed twice; give it once with the options you want")
    for _name, t in tricks:
        try:
            t.check(objective)
        except ValueError as err:
            raise ValueError(f"tricks: {err}") from None
    return sorted(tricks, key=lambda nt: isinstance(nt[1], PacGAN))
