"""gankit's version, on the ground floor: checkpoints, caches and reports record it."""

__version__ = "0.1.0"
