"""Training tricks (label smoothing, instance noise, feature matching, PacGAN, ...).

The registry exists now so that recipes can name tricks and unknown names fail up front; the tricks
themselves are added with the stability toolbox.
"""

from gankit.registry import Registry

TRICKS = Registry("trick")
