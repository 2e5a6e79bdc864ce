"""Trainer overhead: gankit's phase machinery vs a hand-written PyTorch GAN loop, same networks.

Both sides train identical G/D (same registry builds, same Adam settings, non-saturating loss,
n_critic = 1) on pre-drawn real batches, so the ratio isolates what the trainer adds: phases,
freezing, the non-finite flag, EMA and the data stream. Ratios are measured in one process.

    python benchmarks/train_overhead.py [--steps 300] [--recipes gan-grid dcgan-digits]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from gankit.config import load_recipe
from gankit.train.build import Shapes, build_networks, make_optimizer
from gankit.train.trainer import Trainer


def reference_loop(recipe, shapes: Shapes, batches: list[torch.Tensor]) -> float:
    torch.manual_seed(recipe.seed)
    G, D = build_networks(recipe, shapes)
    opt_g = make_optimizer(recipe.optim.g, G.parameters())
    opt_d = make_optimizer(recipe.optim.d, D.parameters())
    t0 = time.perf_counter()
    for x in batches:
        z = torch.randn(x.shape[0], G.z_dim)
        with torch.no_grad():
            fake = G(z)
        opt_d.zero_grad(set_to_none=True)
        loss_d = F.softplus(-D(x).logits).mean() + F.softplus(D(fake).logits).mean()
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_g = F.softplus(-D(G(torch.randn(x.shape[0], G.z_dim))).logits).mean()
        loss_g.backward()
        opt_g.step()
    return time.perf_counter() - t0


def gankit_loop(recipe, steps: int) -> float:
    t = Trainer(recipe, "/nonexistent")
    t0 = time.perf_counter()
    for _ in range(steps):
        t.train_step(want_log=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--recipes", nargs="+", default=["gan-grid", "dcgan-digits"])
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps each")
    print(f"{'recipe':<16}{'reference s':>12}{'gankit s':>10}{'gankit/ref':>12}{'gankit it/s':>13}")
    for name in args.recipes:
        recipe = load_recipe(name, ["log.tensorboard=false", "ema.enabled=false", "objective.name=non-saturating",
                                    "penalties=[]", "schedule.n_critic=1"])
        probe = Trainer(recipe, "/nonexistent")
        shapes = probe.shapes
        stream = probe.source.stream(recipe.schedule.batch_size, recipe.seed)
        batches = [stream.next()[0] for _ in range(args.steps)]
        gankit_loop(recipe, 20)  # warm-up: allocator, first-call costs
        ref = reference_loop(recipe, shapes, batches)
        ours = gankit_loop(recipe, args.steps)
        print(f"{name:<16}{ref:>12.2f}{ours:>10.2f}{ours / ref:>12.2f}{args.steps / ours:>13.1f}")


if __name__ == "__main__":
    main()
