"""Multi-process training on PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

``torchrun --nproc_per_node=N -m gankit.cli train RECIPE ...`` (or ``--nnodes`` for several machines)
starts N copies; each finds its rank in the environment torchrun sets, joins the process group (NCCL
on CUDA, gloo on CPU) and trains a replica; DDP averages the gradients, so the replicas stay equal.

* ``schedule.batch_size`` is the **global** batch: each rank takes its ``batch_size / world`` rows
  of the one global batch the data stream draws (``ShardedStream``), and its slice of one global
  draw of latents and labels (``Sharding``). A W-rank run therefore sees exactly the data and noise
  of a 1-rank run of the same global batch, and (without batch norm, whose statistics are per rank
  unless ``perf.sync_batchnorm``) reaches the same weights up to float summation order.
* Every other random draw (dropout, WGAN-GP interpolation, instance noise, style mixing) comes from
  the global RNG seeded ``seed + 1000 * rank`` (``gankit.seeds.rank_seed``): independent across
  ranks, as per-sample noise should be.
* Rank 0 alone writes the run directory (config, metrics, samples, checkpoints, report); the logged
  losses are averaged over ranks at logging steps, and each evaluation's feature extraction is split
  over the ranks and gathered, so every rank scores the whole set. Checkpoints hold every
  rank's RNG state, so a resumed run with the same world size continues exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    enabled: bool = False  # inside a process group (torchrun), even with one process

    @property
    def main(self) -> bool:
        return self.rank == 0


def from_environment() -> DistInfo:
    """The rank and world torchrun describes in the environment; a single process when it is absent."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)), True)


def init(info: DistInfo, device: torch.device) -> None:
    """Join the process group once (NCCL for CUDA devices, gloo otherwise)."""
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world)


def device_for(info: DistInfo, device: torch.device) -> torch.device:
    """One GPU per local rank; CPU ranks share the CPU."""
    if info.enabled and device.type == "cuda":
        return torch.device("cuda", info.local_rank)
    return device


@dataclass
class Sharding:
    """Latents and labels drawn once for the global batch and sliced per rank, from a generator seeded
    the same on every rank (its state travels in checkpoints)."""

    rank: int
    world: int
    seed: int
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def _slice(self, full: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
        return full[self.rank * n : (self.rank + 1) * n].to(device, non_blocking=True)

    def randn(self, n: int, dim: int, device: torch.device) -> torch.Tensor:
        return self._slice(torch.randn(n * self.world, dim, generator=self.generator), n, device)

    def randint(self, high: int, n: int, device: torch.device) -> torch.Tensor:
        return self._slice(torch.randint(high, (n * self.world,), generator=self.generator), n, device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self.generator.set_state(state["generator"])


class ShardedStream:
    """This rank's rows of each global batch of ``stream`` (every rank draws the same global batch)."""

    def __init__(self, stream: Any, rank: int, world: int) -> None:
        self.stream, self.rank, self.world = stream, rank, world

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = self.stream.next()
        n = x.shape[0] // self.world
        part = slice(self.rank * n, (self.rank + 1) * n)
        return x[part], (y[part] if y is not None else None)

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around ``module`` (parameters broadcast from rank 0 here, gradients averaged in backward)."""
    from torch.nn.parallel import DistributedDataParallel

    class Replica(DistributedDataParallel):
        """DDP that still answers the wrapped network's attributes (``G.z_dim``, ``D.features``)."""

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.module, name)

    ids = [device.index] if device.type == "cuda" else None
    # Buffers (BN running stats, spectral-norm vectors) are synced from rank 0 at the start, then stay per
    # rank rather than being overwritten by rank 0's at every forward (which would also break a second
    # forward in one step). The option's name changed in recent PyTorch releases.
    import inspect

    no_forward_sync: dict[str, Any] = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
        else {"broadcast_buffers": False}
    )
    return Replica(module, device_ids=ids, **no_forward_sync)


def mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Average logged scalars over ranks (called at logging steps only)."""
    if not dist.is_initialized() or dist.get_world_size() == 1 or not values:
        return values
    keys = sorted(values)
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys])
    dist.all_reduce(stacked)
    stacked /= dist.get_world_size()
    return dict(zip(keys, stacked))


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (a stop request, say)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` from every rank, in rank order (a list of one outside a process group)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


@contextmanager
def closing_group() -> Iterator[None]:
    """Around a whole training command (``gankit train``, :func:`gankit.train`): when the body returns,
    every rank meets at a barrier, then the process group the body made is destroyed (one that was there
    before is the caller's, and stays). Without the barrier a gloo rank that closed its group while rank 0
    was still writing the report aborted once (SIGABRT) under load; PyTorch's own tests end the same way."""
    was_initialised = dist.is_available() and dist.is_initialized()
    try:
        yield
        barrier()
    finally:
        if not was_initialised and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
