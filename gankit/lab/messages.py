"""What the lab's page may send, checked with pydantic before anything acts on it (docs/lab-protocol.md).

Every limit here is one a page could otherwise use to stall or exhaust the server (huge batches,
thousands of steps per update, megabytes of drawn points); a message outside them is refused with
an error that names the field, the value and the allowed range.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

DATASETS = ("ring", "grid", "line", "clusters", "drawn")
PENALTIES = ("r1", "r2", "wgan-gp", "spectral-norm")
TRICKS = ("unrolled", "pacgan", "instance-noise", "label-smoothing")
LR_MAX, BATCH_MAX, STEPS_PER_UPDATE_MAX, Z_DIM_MAX, POINTS_MAX = 1.0, 2048, 200, 32, 2000
LIMITS = {
    "lr_max": LR_MAX,
    "batch_max": BATCH_MAX,
    "steps_per_update_max": STEPS_PER_UPDATE_MAX,
    "z_dim_max": Z_DIM_MAX,
    "points_max": POINTS_MAX,
}
MESSAGE_MAX = 256 * 1024  # characters of one message: 2000 drawn points fit with room to spare

Coordinate = Annotated[float, Field(ge=-10.0, le=10.0, allow_inf_nan=False)]
Point = tuple[Coordinate, Coordinate]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Settings(_Strict):
    """One lab session's settings; what ``settings`` messages change (docs/lab-protocol.md)."""

    dataset: Literal["ring", "grid", "line", "clusters", "drawn"] = "ring"
    points: list[Point] = Field(default_factory=list, max_length=POINTS_MAX)
    objective: str = "non-saturating"
    penalties: list[Literal["r1", "r2", "wgan-gp", "spectral-norm"]] = Field(default_factory=list, max_length=4)
    gamma: float = Field(default=1.0, ge=0.0, le=1000.0)
    tricks: list[Literal["unrolled", "pacgan", "instance-noise", "label-smoothing"]] = Field(
        default_factory=list, max_length=4
    )
    lr_g: float = Field(default=1e-3, gt=0.0, le=LR_MAX)
    lr_d: float = Field(default=1e-3, gt=0.0, le=LR_MAX)
    n_critic: int = Field(default=1, ge=1, le=10)
    batch_size: int = Field(default=128, ge=2, le=BATCH_MAX)
    z_dim: int = Field(default=2, ge=1, le=Z_DIM_MAX)
    steps_per_update: int = Field(default=10, ge=1, le=STEPS_PER_UPDATE_MAX)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


#: the settings that change only how fast the page is fed, not what trains
LIVE = frozenset({"steps_per_update"})
#: the settings applied to the running networks (the optimisers' rates, the critic count)
RUNNING = frozenset({"lr_g", "lr_d", "n_critic"})


class Play(_Strict):
    type: Literal["play"]


class Pause(_Strict):
    type: Literal["pause"]


class Step(_Strict):
    type: Literal["step"]
    n: int = Field(default=1, ge=1, le=1000)


class Reset(_Strict):
    type: Literal["reset"]


class ChangeSettings(_Strict):
    type: Literal["settings"]
    settings: dict[str, Any]


class Points(_Strict):
    type: Literal["points"]
    points: list[Point] = Field(min_length=1, max_length=POINTS_MAX)


class Export(_Strict):
    type: Literal["export"]


class Dirac(_Strict):
    type: Literal["dirac"]
    method: str = "gan"
    h: float = Field(default=0.1, gt=0.0, le=2.0)
    steps: int = Field(default=500, ge=1, le=20000)
    alternating: bool = False
    d_steps: int = Field(default=1, ge=1, le=20)
    gamma: float = Field(default=1.0, ge=0.0, le=100.0)
    start: tuple[Annotated[float, Field(ge=-5, le=5)], Annotated[float, Field(ge=-5, le=5)]] = (1.0, 1.0)


Message = Annotated[Play | Pause | Step | Reset | ChangeSettings | Points | Export | Dirac, Field(discriminator="type")]
_MESSAGE: TypeAdapter[Any] = TypeAdapter(Message)


class BadMessage(ValueError):
    """A message the lab refuses; ``str()`` says what was wrong and what is allowed."""


def describe(err: ValidationError, prefix: str = "") -> str:
    """pydantic's errors as one line: ``field: problem (got value)`` for each, at most three."""
    parts = []
    for e in err.errors()[:3]:
        where = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in _TYPES))
        got = json.dumps(e.get("input"), default=str)
        got = got if len(got) <= 40 else got[:37] + "..."
        parts.append(f"{prefix}{where}: {e['msg']} (got {got})")
    more = f" and {len(err.errors()) - 3} more" if len(err.errors()) > 3 else ""
    return "; ".join(parts) + more


_TYPES = frozenset({"play", "pause", "step", "reset", "settings", "points", "export", "dirac"})


def parse(text: str) -> Any:
    """The message in ``text`` (a model above), or ``BadMessage`` naming what is wrong."""
    if len(text) > MESSAGE_MAX:
        raise BadMessage(f"message of {len(text)} characters refused: the lab takes at most {MESSAGE_MAX}")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadMessage(f"not JSON: {err.msg} at character {err.pos}") from None
    if not isinstance(raw, dict) or raw.get("type") not in _TYPES:
        kind = raw.get("type") if isinstance(raw, dict) else type(raw).__name__
        raise BadMessage(f"unknown message type {kind!r}; the lab takes: {', '.join(sorted(_TYPES))}")
    try:
        return _MESSAGE.validate_python(raw)
    except ValidationError as err:
        raise BadMessage(describe(err, prefix=f"{raw['type']}: ")) from None


def merged(current: Settings, patch: dict[str, Any]) -> Settings:
    """``current`` with ``patch`` applied, validated as a whole (unknown keys refused by name)."""
    try:
        return Settings.model_validate({**current.model_dump(), **patch})
    except ValidationError as err:
        raise BadMessage(describe(err, prefix="settings.")) from None
