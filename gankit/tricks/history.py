"""A history of generated images for D (Shrivastava et al. 2017; CycleGAN's buffer)."""

from __future__ import annotations

from typing import Any

import torch


class ImageHistory:
    """A history of generated images (Shrivastava et al. 2017, Sec. 2.3; CycleGAN's buffer of 50,
    Zhu et al. 2017, Sec. 4): D is shown a mix of fresh fakes and earlier ones, which damps the
    oscillation of G and D chasing each other. Until the buffer is full every fake is stored and
    shown; then each fake, with probability 1/2, is swapped for a stored one (which is shown) and
    otherwise shown itself. Its own seeded generator and its images are kept by checkpoints."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ValueError(f"history size must be >= 0, got {size}")
        self.size = size
        self.images: torch.Tensor | None = None  # (n <= size, C, H, W)
        self.rng = torch.Generator().manual_seed(seed)

    def __call__(self, fake: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fake
        fake = fake.detach()
        out = fake.clone()
        for i in range(fake.shape[0]):
            held = 0 if self.images is None else self.images.shape[0]
            if held < self.size:
                item = fake[i : i + 1]
                self.images = item.clone() if self.images is None else torch.cat([self.images, item])
            elif torch.rand((), generator=self.rng) < 0.5:
                assert self.images is not None  # full: held = size > 0
                k = int(torch.randint(0, held, (), generator=self.rng))
                out[i] = self.images[k]
                self.images[k] = fake[i]
        return out

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"rng": self.rng.get_state(), "size": self.size}
        if self.images is not None:
            state["images"] = self.images.detach().cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.rng.set_state(state["rng"])
        self.images = state["images"].to(device) if "images" in state else None
