"""``gankit translate``: apply a trained image-to-image generator to the user's own images.

pix2pix reads the image as it is; SRGAN upsamples each image whole, at its own size; CycleGAN goes A -> B
or B -> A (``direction``); the context encoder cuts the recipe's hole (centre masks; random ones at a
seeded place) and fills it; an autoencoder reconstructs (denoises) the image. Except for SRGAN, each
input is resized and centre-cropped to the size the generator was trained on. Outputs are written as PNGs
with the inputs' names. Loading never executes code (safetensors weights).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from gankit.data.base import make_generator, to_float
from gankit.data.folder import find_images, load_square
from gankit.families import FAMILIES
from gankit.files import atomic_write
from gankit.runlog import checkpoint as ck
from gankit.sampling import read_checkpoint, to_uint8_nhwc
from gankit.seeds import StreamWord
from gankit.training.build import build_generator, resolve_device


def _inputs(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = find_images(path)
        if files:
            return files
        raise FileNotFoundError(f"no images under {str(path)!r}")
    raise FileNotFoundError(f"--input {str(path)!r} does not exist")


def _write(out: Path, source: Path, img: np.ndarray) -> Path:
    target = out / f"{source.stem}.png"
    picture = Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img)
    return atomic_write(target, lambda tmp: picture.save(tmp, format="png"))


@torch.no_grad()
def translate_images(
    source: str | Path,
    inputs: str | Path,
    out: str | Path,
    direction: str = "ab",
    device: str = "auto",
    use_ema: bool = True,
    batch: int = 64,
) -> dict[str, Any]:
    tensors, meta, recipe, shapes = read_checkpoint(source)
    family: Any = FAMILIES.get(recipe.family.name)  # the registered class (its mask-and-paste for inpainting)
    if not family.translates:
        raise ValueError(
            f"{meta['checkpoint']} is a {recipe.family.name!r} run, which draws from noise; use `gankit sample` for it"
        )
    # an image-to-image generator (or one of CycleGAN's pair, chosen by name below): its in_shape and
    # out_shape, and SRGAN's scale, are the model contract's attributes
    G: Any = build_generator(recipe, shapes)
    prefix = "G_ema" if use_ema and any(k.startswith("G_ema.") for k in tensors) else "G"
    ck.load_into(G, tensors, prefix, meta.get("checkpoint", source))
    dev = resolve_device(device)
    G.to(dev).eval()
    if family.two_way:
        if direction not in ("ab", "ba"):
            raise ValueError(f"--direction must be ab (A -> B) or ba (B -> A), got {direction!r}")
        G = getattr(G, direction)
    c, h, w = G.in_shape
    name = recipe.family.name
    if name == "inpainting":
        c -= 1  # the mask is the last input channel
    if h != w:
        raise ValueError(f"the generator reads {h}x{w} images; gankit translate handles square inputs only")
    files = _inputs(Path(inputs).expanduser())
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    mode: Literal["L", "RGB"] = "L" if c == 1 else "RGB"
    opts = recipe.family.options
    written = []
    if getattr(G, "fully_convolutional", False):  # SRGAN: each image whole, at its own size
        sizes = set()
        for f in files:
            try:
                with Image.open(f) as img:
                    arr = np.asarray(img.convert(mode)).reshape(img.height, img.width, c)
            except (OSError, ValueError, SyntaxError) as err:
                raise ValueError(f"cannot read image {str(f)!r}: {err}") from None
            y = G(to_float(torch.from_numpy(arr.copy()).permute(2, 0, 1)[None]).to(dev)).clamp(-1, 1)
            written.append(_write(out, f, to_uint8_nhwc(y.float().cpu())[0]))
            sizes.add(f"{arr.shape[0]}x{arr.shape[1]} -> {y.shape[2]}x{y.shape[3]}")
        return {
            "num": len(written),
            "out": out,
            "weights": prefix,
            "checkpoint": meta["checkpoint"],
            "size": ", ".join(sorted(sizes)) if len(sizes) <= 3 else f"{len(sizes)} sizes, x{G.scale}",
        }
    # The inpainting family's own mask-and-paste (example, output): a family built around G alone.
    holes = family(G, None, None, [], dev, **opts) if name == "inpainting" else None
    for i in range(0, len(files), batch):
        chunk = files[i : i + batch]
        arr = np.stack([load_square(f, h, mode).reshape(h, h, c) for f in chunk])
        x = to_float(torch.from_numpy(arr).permute(0, 3, 1, 2)).to(dev)
        if holes is not None:
            inp, _ = holes.example(x, make_generator(i, StreamWord.TRANSLATE_MASKS))
            y = holes.output(inp, G(inp))
        else:
            y = G(x)
        for f, img in zip(chunk, to_uint8_nhwc(y.float().cpu())):
            written.append(_write(out, f, img))
    return {
        "num": len(written),
        "out": out,
        "weights": prefix,
        "checkpoint": meta["checkpoint"],
        "size": f"{h}x{w} -> {G.out_shape[1]}x{G.out_shape[2]}",
    }
