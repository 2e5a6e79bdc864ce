from gankit.registry import Registry

FAMILIES = Registry("family")
