"""Standing batch-norm statistics of the averaged generator (BigGAN's "standing statistics",
``ema.bn_batches``): recomputed from the averaged weights, against an independent computation."""

import torch
from torch import nn

from gankit.nn.standing import standing_statistics
from gankit.recipes.load import load_recipe
from gankit.seeds import SeedPurpose, seeded
from gankit.training.trainer import Trainer


class TinyG(nn.Module):
    def __init__(self, num_classes: int = 0) -> None:
        super().__init__()
        self.z_dim, self.num_classes = 3, num_classes
        self.linear = nn.Linear(3, 4)
        self.embed = nn.Embedding(num_classes, 4) if num_classes else None
        self.bn = nn.BatchNorm1d(4, momentum=0.3)

    def forward(self, z, y=None):
        h = self.linear(z)
        if self.embed is not None:
            h = h + self.embed(y)
        return self.bn(h)


def test_statistics_are_the_mean_of_the_batch_statistics():
    torch.manual_seed(0)
    G = TinyG(num_classes=2).eval()
    with torch.no_grad():
        G.bn.running_mean.fill_(5.0)  # stale statistics, as an average of live networks leaves them
    g7 = torch.Generator().manual_seed(7)
    assert standing_statistics(G, 3, batches=4, batch_size=6, generator=g7, labels=torch.arange(6) % 2) == 1
    g = torch.Generator().manual_seed(7)
    y = torch.arange(6) % 2
    with torch.no_grad():
        hs = [G.linear(torch.randn(6, 3, generator=g)) + G.embed(y) for _ in range(4)]
    expected_mean = torch.stack([h.mean(0) for h in hs]).mean(0)
    expected_var = torch.stack([h.var(0, unbiased=True) for h in hs]).mean(0)
    assert torch.allclose(G.bn.running_mean, expected_mean, atol=1e-6)
    assert torch.allclose(G.bn.running_var, expected_var, atol=1e-6)
    assert not G.training and G.bn.momentum == 0.3  # mode and momentum put back
    assert standing_statistics(nn.Linear(3, 3), 3, 2, 2, torch.Generator()) == 0  # nothing to recompute


def test_trainer_saves_the_averaged_generator_with_its_own_statistics():
    """With ema.bn_batches the checkpoint's G_ema holds statistics recomputed from its own weights
    (BN layers of the DCGAN G), not the average of the live G's running statistics."""

    def trainer(bn_batches):
        base = ["log.tensorboard=false", "eval.metrics=[]", "eval.best=null", "schedule.steps=6"]
        ema = f"ema={{enabled: true, decay: 0.5, start: 0, bn_batches: {bn_batches}}}"
        t = Trainer(load_recipe("dcgan-digits", [*base, ema]), "/x")
        for _ in range(4):
            t.train_step(want_log=False)
        return t

    plain, standing = trainer(0), trainer(3)
    a, b = plain.checkpoint_tensors(), standing.checkpoint_tensors()
    means = [k for k in a if k.startswith("G_ema.") and k.endswith("running_mean")]
    assert means
    for k in a:  # the same training: weights equal, only the statistics differ
        if not k.startswith("G_ema.") or k.endswith("weight") or k.endswith("bias"):
            assert torch.equal(a[k], b[k]), k
    assert all(not torch.allclose(a[k], b[k]) for k in means)
    # Independent recomputation from the averaged weights with the documented seed and batch size.
    G = standing.ema.module
    state = {k: v.clone() for k, v in G.state_dict().items()}
    standing_statistics(
        G, G.z_dim, 3, standing.recipe.schedule.batch_size, seeded(standing.recipe.seed, SeedPurpose.STANDING_STATS)
    )
    for k in means:
        k = k.removeprefix("G_ema.")
        assert torch.allclose(G.state_dict()[k], state[k], atol=1e-6)
