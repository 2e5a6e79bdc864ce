"""Atomic file writes: one way for every file gankit writes whole (JSON records, reports, arrays,
weights, pictures).

A run directory is read while it is written: ``gankit report`` and a browser read the report page and
sample grids of a live run, a resumed or parallel job reads the caches another wrote, and a killed
process must not leave a truncated file that a later run trusts. Each writer therefore writes a temp
file in the target's folder and renames it over the target with ``os.replace``, which is atomic on
one filesystem: readers see the old file or the new one, never half of one.

Ground floor: the standard library only (matplotlib is imported by ``save_figure`` when called).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

_COUNTER = itertools.count()  # two writers in one process (threads) never share a temp name


def temp_path(path: str | Path) -> Path:
    """A temp name beside ``path`` that keeps its name and suffix (``.tmp-PID-K-name.png``): writers
    that choose the format from the suffix (PIL, matplotlib) or append one (``np.savez``) act on the
    temp file as they would on the target, and the leading dot hides it from globs like ``*.png``."""
    path = Path(path)
    return path.with_name(f".tmp-{os.getpid()}-{next(_COUNTER)}-{path.name}")


def atomic_write(path: str | Path, data: bytes | str | Callable[[Path], Any], *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` so that readers never see a half-written file; returns ``path``.

    ``data`` is the bytes, the text (UTF-8), or a writer called with the temp path (for writers that
    want a path: ``torch.save``, ``safetensors.torch.save_file``, ``fig.savefig``, PIL's ``save``).
    The temp file lies in the target's folder (``os.replace`` is atomic only within one filesystem)
    and is removed if writing fails, leaving any previous file untouched. Parent folders are created.
    ``durable=True`` also flushes the bytes to disk before the rename, so a power cut cannot leave an
    empty file under the final name (worth its cost for expensive artefacts such as trained weights).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        if callable(data):
            data(tmp)
            if durable:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
        else:
            with open(tmp, "wb") as fh:
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def save_figure(fig: Any, path: str | Path, **savefig_kw: Any) -> Path:
    """Save a matplotlib figure atomically (format from ``path``'s suffix unless ``format=`` is given)
    and close it, also on failure: pyplot keeps every open figure alive, so a long run that plots
    often would otherwise grow without bound. Returns ``path``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix and "format" not in savefig_kw:
        savefig_kw["format"] = path.suffix[1:].lower()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, **savefig_kw))
    finally:
        plt.close(fig)


def json_safe(x: Any) -> Any:
    """NaN/Inf -> None in nested dicts, lists and tuples, so ``json.dumps`` writes strict JSON (a NaN
    literal is not JSON: browsers' ``JSON.parse`` and most readers refuse it)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x
