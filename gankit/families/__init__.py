"""Families: how a batch flows through the networks (unconditional, conditional, ...).

A family (``gankit.families.base.Family``) turns built pieces into a list of training phases
(``gankit.families.step.Phase``); the trainer draws each phase's batch and calls its loss.
"""

from gankit.families import (  # noqa: F401  (registers)
    acgan,
    bidirectional,
    conditional,
    cyclegan,
    semi_supervised,
    superres,
    translation,
    unconditional,
)
from gankit.families.base import FAMILIES, Family
from gankit.families.step import Batch, Phase, StepContext

__all__ = ["FAMILIES", "Batch", "Family", "Phase", "StepContext"]
