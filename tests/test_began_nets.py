"""BEGAN's networks (Berthelot et al. 2017, Sec. 3.5, Fig. 1) against the paper's description."""

import pytest
import torch
from torch import nn

from gankit.models import DISCRIMINATORS, GENERATORS


def test_autoencoder_energy_is_the_reconstruction_error():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    for energy, err in (("l1", lambda d: d.abs()), ("mse", lambda d: d.square())):
        D = DISCRIMINATORS.build("began", in_shape=(1, 16, 16), width=4, code_dim=5, energy=energy)
        out = D(x)
        code = D.encoder(x)
        torch.testing.assert_close(out.features, code)
        torch.testing.assert_close(out.recon, D.decoder(code))
        torch.testing.assert_close(out.logits, err(D.decoder(code) - x).mean(dim=(1, 2, 3)))


def test_encoder_channels_grow_linearly_and_decoder_upsamples_from_8x8():
    D = DISCRIMINATORS.build("began", in_shape=(3, 32, 32), width=4, code_dim=6)
    strided = [m for m in D.encoder if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert [m.out_channels for m in strided] == [8, 12]  # 32 -> 16 (2n) -> 8 (3n)
    assert D.encoder[-1].in_features == 12 * 8 * 8 and D.encoder[-1].out_features == 6
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.ConvTranspose2d, nn.Tanh)) for m in D.modules())
    ups = [m for m in D.decoder.net if isinstance(m, nn.Upsample)]
    assert len(ups) == 2 and all(m.mode == "nearest" for m in ups)
    assert all(isinstance(m, nn.ELU) for m in D.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ELU)))


def test_generator_is_the_decoder_with_a_linear_output():
    torch.manual_seed(0)
    G = GENERATORS.build("began", out_shape=(1, 16, 16), z_dim=8, width=4)
    D = DISCRIMINATORS.build("began", in_shape=(1, 16, 16), width=4, code_dim=8)
    assert [type(m) for m in G.decoder.net] == [type(m) for m in D.decoder.net]
    with torch.no_grad():
        G.decoder.net[-1].bias.fill_(3.0)  # no tanh: the output can leave [-1, 1]
    assert G(torch.randn(2, 8)).min() > 1.0


def test_began_nets_refuse_labels_and_bad_shapes():
    with pytest.raises(ValueError, match="unconditional"):
        GENERATORS.build("began", out_shape=(1, 16, 16), num_classes=10)
    with pytest.raises(ValueError, match="power of two"):
        DISCRIMINATORS.build("began", in_shape=(1, 24, 24))
    with pytest.raises(ValueError, match="energy"):
        DISCRIMINATORS.build("began", in_shape=(1, 16, 16), energy="l2")
