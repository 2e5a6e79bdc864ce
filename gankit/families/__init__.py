"""Families: how a batch flows through the networks (unconditional, conditional, ...).

A family turns built pieces into a list of training phases (gankit.training.phases.Phase).
"""

from gankit.families.base import FAMILIES
from gankit.families import acgan, bidirectional, conditional, cyclegan, semi_supervised, superres, translation, unconditional  # noqa: F401  (registers)

__all__ = ["FAMILIES"]
