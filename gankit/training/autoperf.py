"""``perf: auto``: the fastest numerically safe way to run a recipe's step on the machine at hand.

Every field of ``recipe.perf`` left at ``"auto"`` (the default) is decided here from what the device
can do, each with the reason; a field the recipe sets is kept as set. The trainer prints the plan at
start and ``environment.json`` (and so the run report) keeps it for every start and resume.

What the choices rest on (``python benchmarks/step_time.py --options``, alternating blocks):

- **amp.** bf16 autocast pays only where the hardware computes in bf16: CUDA GPUs from Ampere on, and
  CPUs with AVX512-BF16 or AMX (oneDNN's bf16 kernels). On an AVX2-only CPU the same autocast runs
  emulated and measured 13x *slower* (dcgan-mnist 108.8 -> 1467.9 ms a step). CUDA GPUs without bf16
  get fp16 with a GradScaler (``training/precision.py``). Point data (the toy MLPs) stays fp32: its
  matrices are too small for low precision to pay for the casts.
- **channels_last.** NHWC is the layout oneDNN and cuDNN prefer for convolutions: 1.15x on
  dcgan-mnist on the 2-core CPU, neutral (0.99x) on stylegan-mnist. Image networks only.
- **compile.** ``torch.compile`` is left off by auto: on a CPU its first steps take minutes of
  compilation (and a C++ compiler), more than a CPU-sized run saves, and a gradient penalty's double
  backward cannot be compiled at all. Set ``perf.compile`` to try it.
- **cudnn_benchmark, data_on_device.** On CUDA: cuDNN picks its fastest convolution algorithm for
  the (fixed) batch shapes, and an in-memory dataset (uint8, e.g. 47 MB for MNIST) is kept on the
  GPU, so a batch costs an index, not a host-to-device copy (other streams' batches are pinned and
  copied without blocking).

``GANKIT_CPU_BF16=1`` (or ``0``) overrides the CPU's bf16 detection, e.g. to check what auto does
on a machine with bf16 kernels.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch

from gankit.config import Performance

Amp = Literal["none", "bf16", "fp16"]


@dataclass(frozen=True)
class Machine:
    """What the device can do that the choices depend on."""

    device_type: str  # "cpu", "cuda", "mps"
    name: str  # the CPU's vector extension (torch's capability) or the GPU's name
    fast_bf16: bool  # bf16 matrix kernels in hardware (CPU: AVX512-BF16 / AMX; CUDA: sm 8.0+)


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX (torch's own probes); ``GANKIT_CPU_BF16`` overrides."""
    forced = os.environ.get("GANKIT_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def probe(device: torch.device) -> Machine:
    """The :class:`Machine` behind ``device``."""
    if device.type == "cuda":
        return Machine("cuda", torch.cuda.get_device_name(device), torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return Machine("cpu", torch.backends.cpu.get_cpu_capability(), cpu_has_bf16())
    return Machine(device.type, device.type, False)


@dataclass(frozen=True)
class PerfPlan:
    """The concrete settings a run uses, and why each."""

    amp: Amp = "none"
    channels_last: bool = False
    compile: Literal["none", "g", "d", "both"] = "none"
    cudnn_benchmark: bool = False
    data_on_device: bool = False
    reasons: dict[str, str] = field(default_factory=dict)

    def place(self, net: torch.nn.Module, device: torch.device, kind: str) -> torch.nn.Module:
        """``net`` on ``device`` in this plan's memory format (NHWC for image networks where chosen):
        the trainer and ``load_generator`` both place G here, so a reloaded G draws the same samples."""
        fmt = torch.channels_last if self.channels_last and kind == "image" else torch.preserve_format
        # Module.to takes memory_format beside a device; torch's overloads list it alone
        return net.to(device, memory_format=fmt)  # type: ignore[call-overload]

    def settings(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "reasons"}

    def summary(self) -> str:
        """Two lines for the console: the settings (amp with its reason), then where the rest are."""
        parts = [f"{k}={_show(v)}" for k, v in self.settings().items()]
        if "amp" in self.reasons:
            parts[0] += f" ({self.reasons['amp']})"
        return "perf: " + ", ".join(parts) + "\n  (each reason in environment.json; perf.<field>=... overrides)"

    def record(self) -> dict[str, str]:
        """For environment.json: ``perf.<field>`` -> value, with the reason where auto chose it."""
        return {
            f"perf.{k}": _show(v) + (f" ({self.reasons[k]})" if k in self.reasons else " (set by the recipe)")
            for k, v in self.settings().items()
        }


def _show(value: Any) -> str:
    return {True: "on", False: "off"}.get(value, str(value)) if isinstance(value, bool) else str(value)


def resolve(perf: Performance, machine: Machine, *, image: bool, in_memory: bool = False) -> PerfPlan:
    """The plan for ``perf`` on ``machine``; ``image``: the networks see images (convolutions);
    ``in_memory``: the training set is an in-memory tensor that can move to the device."""
    reasons: dict[str, str] = {}
    cuda = machine.device_type == "cuda"

    amp: Amp
    if perf.amp != "auto":
        amp = perf.amp
    elif not image:
        amp, reasons["amp"] = "none", "point data: matrices too small for low precision to pay"
    elif machine.fast_bf16:
        amp, reasons["amp"] = "bf16", f"{machine.name} computes in bf16"
    elif cuda:
        amp, reasons["amp"] = "fp16", f"{machine.name} has no bf16: fp16 with loss scaling"
    elif machine.device_type == "cpu":
        amp, reasons["amp"] = "none", f"{machine.name} CPU without AVX512-BF16/AMX: bf16 would be emulated, slower"
    else:
        amp, reasons["amp"] = "none", f"no autocast gain measured on {machine.device_type}"

    if perf.channels_last != "auto":
        channels_last = perf.channels_last
    else:
        channels_last = image and machine.device_type in ("cpu", "cuda")
        reasons["channels_last"] = "image networks: NHWC convolutions" if channels_last else "no convolutions"

    if perf.compile != "auto":
        compile_ = perf.compile
    else:
        compile_, reasons["compile"] = "none", "its compile time outweighs the gain at gankit's run lengths"

    if perf.cudnn_benchmark != "auto":
        cudnn = perf.cudnn_benchmark
    else:
        cudnn = cuda and image
        reasons["cudnn_benchmark"] = "fixed batch shapes on CUDA" if cudnn else "CUDA image networks only"

    if perf.data_on_device != "auto":
        on_device = perf.data_on_device
    else:
        on_device = cuda and in_memory
        reasons["data_on_device"] = "in-memory set kept on the GPU" if on_device else "CUDA with an in-memory set only"
    return PerfPlan(amp, channels_last, compile_, cudnn, on_device, reasons)
