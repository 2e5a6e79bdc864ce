"""gankit: train, evaluate and study generative adversarial networks."""

__version__ = "0.1.0"
