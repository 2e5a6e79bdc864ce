"""One tiny registry type for every kind of named piece (objectives, penalties, models, ...).

A registered entry is a factory (usually a class). Its keyword arguments are the recipe's options:
``build(name, **kw)`` checks the keys against the factory's signature and coerces the values with
pydantic, so a typo or a wrong type fails before any training starts, with the valid choices named.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pydantic


class RegistryError(ValueError):
    """A bad registry name or option; the message lists the valid choices."""


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    description: str  # one line: the given description, or the docstring's first line
    injected: tuple[str, ...]  # arguments the framework supplies (shapes, class counts), not the recipe
    doc: str = ""  # the whole text (`gankit list --long`): the given description, or the full docstring


def _first_doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Named factories of one kind.

    ``REG.register(name)`` decorates a factory; ``REG.build(name, **kw)`` validates and calls it;
    ``REG[name]`` builds the entry with its defaults; ``REG.get(name)`` returns the factory itself.
    """

    def __init__(self, kind: str, injected: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.injected = injected  # what the framework supplies to every entry of this kind
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, description: str | None = None, injected: tuple[str, ...] = ()
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        if name != name.lower() or " " in name or "_" in name:
            raise ValueError(f"registry names are lowercase-hyphenated, got {name!r}")

        def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            desc = description if description is not None else _first_doc_line(factory)
            doc = description if description is not None else (inspect.getdoc(factory) or "").strip()
            self._entries[name] = Entry(name, factory, desc, tuple(self.injected) + tuple(injected), doc)
            return factory

        return deco

    # -- lookup -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> Entry:
        if name not in self._entries:
            choices = ", ".join(self.names()) or "(none registered yet)"
            raise RegistryError(f"unknown {self.kind} {name!r}; valid choices: {choices}")
        return self._entries[name]

    def get(self, name: str) -> Callable[..., Any]:
        return self.entry(name).factory

    def describe(self, long: bool = False) -> dict[str, str]:
        """name -> its one-line description, or with ``long`` its whole text (docstring paragraphs)."""
        return {
            n: (self._entries[n].doc or self._entries[n].description) if long else self._entries[n].description
            for n in self.names()
        }

    def __getitem__(self, name: str) -> Any:
        return self.build(name)

    # -- options ------------------------------------------------------------------------------
    def options(self, name: str) -> dict[str, inspect.Parameter]:
        """The recipe-settable keyword arguments of ``name`` (injected ones excluded)."""
        entry = self.entry(name)
        params = inspect.signature(entry.factory).parameters
        return {
            k: p
            for k, p in params.items()
            if k not in entry.injected and k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    def validate(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Check ``kwargs`` against the options of ``name`` and return them type-coerced."""
        opts = self.options(name)
        unknown = sorted(set(kwargs) - set(opts))
        if unknown:
            valid = ", ".join(sorted(opts)) or "(it takes no options)"
            raise RegistryError(
                f"{self.kind} {name!r} has no option {', '.join(map(repr, unknown))}; valid options: {valid}"
            )
        fields: dict[str, Any] = {}
        for k, p in opts.items():
            ann = p.annotation if p.annotation is not inspect.Parameter.empty else Any
            if isinstance(ann, str):  # postponed annotations: resolve in the factory's module
                ann = _resolve(ann, self.entry(name).factory)
            default = p.default if p.default is not inspect.Parameter.empty else ...
            fields[k] = (ann, default)
        model = pydantic.create_model(
            f"{self.kind}_{name}_options",
            __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        try:
            checked = model(**kwargs)
        except pydantic.ValidationError as err:
            problems = "; ".join(
                f"option {'.'.join(map(str, e['loc']))!r} is required"
                if e["type"] == "missing"
                else f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in err.errors()
            )
            raise RegistryError(f"bad options for {self.kind} {name!r}: {problems}") from None
        return {k: getattr(checked, k) for k in kwargs}

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Validate the recipe options and call the factory; injected arguments pass through."""
        entry = self.entry(name)
        injected = {k: kwargs.pop(k) for k in list(kwargs) if k in entry.injected}
        return entry.factory(**self.validate(name, kwargs), **injected)


def _resolve(annotation: str, factory: Callable[..., Any]) -> Any:
    import sys
    import typing

    module = sys.modules.get(getattr(factory, "__module__", ""), None)
    namespace = dict(vars(typing))
    if module is not None:
        namespace.update(vars(module))
    try:
        return eval(annotation, namespace)  # noqa: S307 - annotations of our own registered code
    except Exception:
        return Any
