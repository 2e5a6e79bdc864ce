from typing import Literal

import pytest

from gankit.registry import Registry, RegistryError


def make() -> Registry:
    reg = Registry("widget")

    @reg.register("round-thing")
    class Round:
        """A round widget."""

        def __init__(self, size: tuple[int, ...], radius: float = 1.0, style: Literal["a", "b"] = "a") -> None:
            self.size, self.radius, self.style = size, radius, style

    reg.register("square-thing", injected=("size",))(Round)
    return reg


def test_names_describe_and_lookup():
    reg = make()
    assert reg.names() == ["round-thing", "square-thing"]
    assert reg.describe()["round-thing"] == "A round widget."
    assert "round-thing" in reg and "nope" not in reg


def test_unknown_name_lists_choices():
    with pytest.raises(RegistryError, match=r"unknown widget 'nope'; valid choices: round-thing, square-thing"):
        make().get("nope")


def test_build_coerces_types_and_passes_injected():
    w = make().build("square-thing", size=(1, 2), radius="2.5", style="b")
    assert w.radius == 2.5 and isinstance(w.radius, float) and w.style == "b" and w.size == (1, 2)


def test_bad_option_and_bad_type_are_named():
    reg = make()
    with pytest.raises(RegistryError, match=r"no option 'radus'; valid options: radius, style"):
        reg.build("square-thing", size=(1,), radus=3)
    with pytest.raises(RegistryError, match=r"radius"):
        reg.build("square-thing", size=(1,), radius="wide")
    with pytest.raises(RegistryError, match=r"style"):
        reg.build("square-thing", size=(1,), style="c")


def test_required_option_is_reported():
    with pytest.raises(RegistryError, match=r"option 'size' is required"):
        make().validate("round-thing", {})


def test_names_must_be_lowercase_hyphenated_and_unique():
    reg = make()
    with pytest.raises(ValueError):
        reg.register("Bad_Name")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("round-thing")(object)


def test_every_project_registry_has_descriptions():
    from gankit.cli import KINDS, _registry

    for kind in KINDS:
        reg = _registry(kind)
        for name, desc in reg.describe().items():
            assert desc, f"{kind} {name!r} has no one-line description (docstring)"


def test_describe_long_gives_the_whole_text():
    reg = Registry("gadget")

    @reg.register("spring")
    def spring(k: float = 1.0) -> float:
        """A spring with stiffness ``k``.

        Hooke's law: F = -k x [Hooke 1678]."""
        return k

    reg.register("given", description="A given description.")(spring)
    assert reg.describe() == {"given": "A given description.", "spring": "A spring with stiffness ``k``."}
    assert reg.describe(long=True)["spring"] == "A spring with stiffness ``k``.\n\nHooke's law: F = -k x [Hooke 1678]."
    assert reg.describe(long=True)["given"] == "A given description."
