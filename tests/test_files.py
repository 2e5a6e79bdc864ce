"""The shared helpers: atomic writes (gankit/files.py), eval_mode (gankit/nn/mode.py), the named seeds
(gankit/seeds.py) and the image-shape check (gankit/data/base.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from gankit.data.base import check_images, make_generator
from gankit.files import atomic_write, save_figure
from gankit.nn import eval_mode
from gankit.seeds import SeedPurpose, StreamWord, rank_seed, seed_for, seeded


def _leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_atomic_write_bytes_text_and_callable(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "a.bin"  # parent folders are created
    assert atomic_write(target, b"\x00\x01") == target
    assert target.read_bytes() == b"\x00\x01"
    text = tmp_path / "b.json"
    atomic_write(text, '{"é": 1}')
    assert text.read_bytes() == '{"é": 1}'.encode()
    atomic_write(text, "second", durable=True)  # replaces the old file
    assert text.read_text() == "second"
    seen: list[Path] = []

    def writer(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("via a path")

    pic = tmp_path / "c.png"
    atomic_write(pic, writer)
    assert pic.read_text() == "via a path"
    # The writer got a hidden temp path beside the target with the target's suffix (PIL, np.savez).
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".") and seen[0].suffix == ".png"
    assert _leftovers(tmp_path, "deep") == ["b.json", "c.png"]


def test_atomic_write_failure_leaves_the_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path, "weights.bin") == []
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "new.bin", half_then_fail)
    assert _leftovers(tmp_path, "weights.bin") == []  # no target made, no temp left


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sub" / "plot.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (100, 100)
    assert not plt.fignum_exists(fig.number)
    assert _leftovers(path.parent, "plot.png") == []


def _mixed() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.BatchNorm1d(2))
    net.train()
    net[1].eval()  # a submodule deliberately kept in eval mode (a frozen feature extractor)
    return net


def test_eval_mode_restores_every_prior_flag() -> None:
    a, b = _mixed(), nn.Linear(2, 2).eval()
    before = [m.training for m in (*a.modules(), b)]
    with eval_mode(a, b):
        assert not any(m.training for m in (*a.modules(), b))
    assert [m.training for m in (*a.modules(), b)] == before == [True, True, False, True, False]


def test_eval_mode_restores_on_exception() -> None:
    a = _mixed()
    with pytest.raises(KeyError):
        with eval_mode(a):
            assert not a.training
            raise KeyError("boom")
    assert [m.training for m in a.modules()] == [True, True, False, True]


def test_seed_purposes_keep_their_values() -> None:
    # Renumbering any of these changes every result drawn with it (grids, scores, splits).
    assert {p.name: int(p) for p in SeedPurpose} == {
        "GRID_LATENTS": 1,
        "EVAL_LATENTS": 2,
        "DENSITY_LATENTS": 3,
        "SHARDING": 4,
        "STANDING_STATS": 5,
        "RANK_NOISE": 1000,
    }
    assert {w.name: int(w) for w in StreamWord} == {
        "STREAM": 0,
        "EVAL": 1,
        "HOLDOUT": 2,
        "LABELLED": 3,
        "MASKS": 4,
        "SCORE_MASKS": 5,
        "HALVES": 6,
        "STACKING": 7,
    }
    assert StreamWord.TRANSLATE_MASKS == 7
    assert seed_for(10, SeedPurpose.EVAL_LATENTS) == 12
    assert rank_seed(10, 0) == 10 and rank_seed(10, 3) == 3010
    with pytest.raises(ValueError, match="rank_seed"):
        seed_for(10, SeedPurpose.RANK_NOISE)
    assert torch.equal(
        torch.randn(3, generator=seeded(5, SeedPurpose.GRID_LATENTS)),
        torch.randn(3, generator=torch.Generator().manual_seed(6)),
    )
    assert torch.equal(
        torch.rand(3, generator=make_generator(5, StreamWord.STACKING)), torch.rand(3, generator=make_generator(5, 7))
    )


def test_check_images_messages() -> None:
    check_images(torch.zeros(2, 3, 8, 8), channels=(1, 3), size=8, dtype="float")
    with pytest.raises(ValueError, match=r"^images must be uint8 \(N, C, H, W\), got torch.float32 \(2, 3\)$"):
        check_images(torch.zeros(2, 3), dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"x must be \(N, C, H, W\) with 1 channel, got .*; retry$"):
        check_images(torch.zeros(2, 3, 8, 8), "x", channels=1, hint="retry")
    with pytest.raises(ValueError, match=r"float \(N, C, H, W\) with 1 or 3 channels of 4x4 pixels"):
        check_images(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), channels=(1, 3), size=4, dtype="float")


def test_json_safe_turns_every_non_finite_float_into_null():
    import json
    import math

    from gankit.files import json_safe

    value = {"a": [1.0, math.nan, (math.inf, -math.inf)], "b": {"c": 2, "d": "nan"}}
    text = json.dumps(json_safe(value), allow_nan=False)
    assert json.loads(text) == {"a": [1.0, None, [None, None]], "b": {"c": 2, "d": "nan"}}
