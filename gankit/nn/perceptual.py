"""VGG-19 feature maps for perceptual (content) losses (Johnson et al. 2016; SRGAN's VGG loss,
Ledig et al. 2017, Eq. 5). The weights come from a file the user names (torchvision's ImageNet
``vgg19`` state dict, as .pth or .safetensors): nothing is downloaded, and loading never runs code.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_cut(layer: str) -> int:
    """How many modules of torchvision's ``vgg19().features`` give phi_{i,j} (Ledig et al.: the j-th
    convolution's activation before the i-th max pooling); ``layer`` is "relu{i}_{j}", e.g. "relu5_4"."""
    import re

    from torchvision.models import vgg19

    m = re.fullmatch(r"relu(\d)_(\d)", str(layer))
    if m is None:
        raise ValueError(
            f"vgg_layer={layer!r} must be 'relu{{i}}_{{j}}' (block i, convolution j), e.g. relu5_4 or relu2_2"
        )
    block, conv = int(m[1]), int(m[2])
    with torch.device("meta"):  # the layer list only: no 143M-parameter initialisation
        features = vgg19().features
    i, j = 1, 0
    for k, m in enumerate(features):
        if isinstance(m, nn.Conv2d):
            j += 1
        elif isinstance(m, nn.ReLU) and (i, j) == (block, conv):
            return k + 1
        elif isinstance(m, nn.MaxPool2d):
            i, j = i + 1, 0
    raise ValueError(f"VGG-19 has no layer {layer!r}: blocks 1-5 hold 2, 2, 4, 4, 4 convolutions")


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors or a tensor-only torch file (``weights_only=True``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (a pickle with code, a corrupt file: all bad input)
        raise ValueError(f"cannot read weights from {str(path)!r} as a tensor-only file: {err}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict")
    return state


class VGGFeatures(nn.Module):
    """phi_{i,j} of VGG-19 on images in [-1, 1] (grey images repeated to RGB), frozen, eval mode,
    divided by ``rescale`` (SRGAN's 1/12.75, which brings the VGG loss to the MSE loss's scale)."""

    mean: torch.Tensor  # buffers: ImageNet's per-channel mean and std
    std: torch.Tensor

    def __init__(self, weights: str | Path, layer: str = "relu5_4", rescale: float = 12.75) -> None:
        super().__init__()
        from torchvision.models import vgg19

        cut = vgg19_cut(layer)
        with torch.device("meta"):  # every weight comes from the file
            features = vgg19().features[:cut]
        self.features = features.to_empty(device="cpu")
        state = load_weights_file(weights)
        wanted = {f"features.{k}": v for k, v in self.features.state_dict().items()}
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise ValueError(
                f"{str(weights)!r} is not a torchvision vgg19 state dict: it lacks {', '.join(missing[:4])}"
                f"{' ...' if len(missing) > 4 else ''}"
            )
        self.features.load_state_dict({k[len("features.") :]: state[k] for k in wanted})
        self.features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.rescale = rescale

    def train(self, mode: bool = True) -> VGGFeatures:
        super().train(mode)
        self.features.eval()  # a fixed feature extractor: never batch statistics or dropout
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = ((x + 1) / 2 - self.mean) / self.std
        return self.features(x) / self.rescale
