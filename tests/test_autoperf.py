"""perf: auto picks the device's fast, safe settings (bf16 only where the hardware computes in bf16,
fp16 on CUDA without it, NHWC for convolutions, data on the GPU), keeps what a recipe sets, and the
run prints and records what it chose."""

import json

import pytest
import torch

from gankit.config import Performance
from gankit.data.base import FiniteStream
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.sampling import load_generator
from gankit.training import autoperf
from gankit.training.autoperf import Machine, resolve
from gankit.training.run import resume_run, start_run
from gankit.training.trainer import Trainer

AVX2 = Machine("cpu", "AVX2", fast_bf16=False)
AMX = Machine("cpu", "AVX512", fast_bf16=True)
H100 = Machine("cuda", "NVIDIA H100", fast_bf16=True)
T4 = Machine("cuda", "Tesla T4", fast_bf16=False)
QUIET = ["log.tensorboard=false", "eval.metrics=[]", "eval.best=null", "log.sample_every=0"]
DIGITS = QUIET + ["generator.width=8", "discriminator.width=8", "schedule.batch_size=16"]


@pytest.mark.parametrize(
    "machine,image,in_memory,want",
    [
        (AVX2, True, True, ("none", True, False, False)),  # bf16 emulated on AVX2: 13x slower, measured
        (AMX, True, True, ("bf16", True, False, False)),
        (AMX, False, False, ("none", False, False, False)),  # toy MLPs stay fp32
        (H100, True, True, ("bf16", True, True, True)),
        (H100, True, False, ("bf16", True, True, False)),  # a stream that is not one tensor stays on the host
        (T4, True, True, ("fp16", True, True, True)),
        (T4, False, True, ("none", False, False, True)),
        (Machine("mps", "mps", False), True, True, ("none", False, False, False)),
    ],
)
def test_auto_decides_by_what_the_device_computes_fast(machine, image, in_memory, want):
    plan = resolve(Performance(), machine, image=image, in_memory=in_memory)
    assert (plan.amp, plan.channels_last, plan.cudnn_benchmark, plan.data_on_device) == want
    assert plan.compile == "none"
    assert set(plan.reasons) == {"amp", "channels_last", "compile", "cudnn_benchmark", "data_on_device"}
    assert all(plan.reasons.values())


def test_a_field_the_recipe_sets_is_kept_and_recorded_as_set():
    perf = Performance(amp="none", channels_last=False, compile="g", cudnn_benchmark=False, data_on_device=False)
    plan = resolve(perf, H100, image=True, in_memory=True)
    assert plan.settings() == {
        "amp": "none",
        "channels_last": False,
        "compile": "g",
        "cudnn_benchmark": False,
        "data_on_device": False,
    }
    assert plan.reasons == {}
    assert set(plan.record().values()) >= {"none (set by the recipe)", "g (set by the recipe)"}
    mixed = resolve(Performance(amp="bf16"), AVX2, image=True)
    assert mixed.amp == "bf16" and "amp" not in mixed.reasons and mixed.channels_last


def test_the_cpu_bf16_probe_follows_torch_and_the_override(monkeypatch):
    monkeypatch.delenv("GANKIT_CPU_BF16", raising=False)
    native = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert autoperf.cpu_has_bf16() == native
    monkeypatch.setenv("GANKIT_CPU_BF16", "1")
    assert autoperf.probe(torch.device("cpu")).fast_bf16
    monkeypatch.setenv("GANKIT_CPU_BF16", "0")
    assert not autoperf.probe(torch.device("cpu")).fast_bf16
    assert autoperf.probe(torch.device("cpu")).name == torch.backends.cpu.get_cpu_capability()


def test_the_trainer_runs_what_auto_chose(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CPU_BF16", "1")  # as on a CPU with AMX: bf16 autocast, NHWC
    t = Trainer(load_recipe("dcgan-digits", DIGITS), tmp_path / "a")
    assert t.perf.amp == "bf16" and t.precision.amp == "bf16" and t.perf.channels_last
    conv = next(p for p in t.D.parameters() if p.ndim == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    seen = []
    t.D.register_forward_hook(lambda m, i, o: seen.append(o.logits.dtype))
    t.train_step(want_log=False)
    assert torch.bfloat16 in seen
    monkeypatch.setenv("GANKIT_CPU_BF16", "0")
    t = Trainer(load_recipe("dcgan-digits", DIGITS), tmp_path / "b")
    assert t.precision.amp == "none" and t.perf.channels_last
    t = Trainer(load_recipe("gan-grid", QUIET), tmp_path / "c")
    assert (t.perf.amp, t.perf.channels_last) == ("none", False)


@pytest.mark.parametrize("bf16", ["0", "1"])  # this CPU's own plan, and one with bf16 autocast
def test_the_run_prints_and_records_its_plan_and_resumes_exactly_under_it(tmp_path, monkeypatch, bf16):
    from rich.console import Console

    monkeypatch.setenv("GANKIT_CPU_BF16", bf16)
    console = Console(record=True, width=200)
    extra = DIGITS + ["log.checkpoint_every=3"]
    start_run(load_recipe("dcgan-digits", extra + ["schedule.steps=6"]), out=tmp_path / "full", console=console)
    plan = Trainer(load_recipe("dcgan-digits", extra), tmp_path / "x").perf
    assert plan.summary().splitlines()[0] in console.export_text()
    env = json.loads((tmp_path / "full" / "environment.json").read_text())
    assert env[0]["perf.channels_last"] == "on (image networks: NHWC convolutions)"
    assert env[0]["perf.amp"].startswith(plan.amp + " (") and plan.amp == {"0": "none", "1": "bf16"}[bf16]
    assert "perf.channels_last" in (tmp_path / "full" / "report.html").read_text()

    start_run(load_recipe("dcgan-digits", extra + ["schedule.steps=3"]), out=tmp_path / "half")
    resume_run(tmp_path / "half", ["schedule.steps=6"])
    a = ck.load_weights(ck.find_checkpoint(tmp_path / "full"))[0]
    b = ck.load_weights(ck.find_checkpoint(tmp_path / "half"))[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(json.loads((tmp_path / "half" / "environment.json").read_text())) == 2  # start and resume

    # `gankit sample` / gankit.load build G in the format the trainer used: the same samples, bit for bit
    G = load_generator(tmp_path / "full", device="cpu")[0]
    conv = next(p for p in G.parameters() if p.ndim == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    start_run(
        load_recipe("dcgan-digits", extra + ["schedule.steps=1", "perf.channels_last=false"]), out=tmp_path / "nchw"
    )
    conv = next(p for p in load_generator(tmp_path / "nchw")[0].parameters() if p.ndim == 4 and p.shape[1] > 1)
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)


def test_a_stream_on_the_device_draws_the_same_batches():
    images = torch.randint(0, 256, (10, 1, 4, 4), dtype=torch.uint8)
    labels = torch.arange(10)
    a = FiniteStream(images, labels, 4, seed=3)
    b = FiniteStream(images.clone(), labels.clone(), 4, seed=3).to(torch.device("cpu"))
    for _ in range(7):  # across epoch ends (the tail of 2 is dropped)
        (xa, ya), (xb, yb) = a.next(), b.next()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.next()[0], b.next()[0])
