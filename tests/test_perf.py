"""Performance options change how a step runs, not what it computes: autocast really runs in low
precision, fp16 loss scaling reaches the gradient penalty's inner gradient and survives resume,
accumulation sums micro-batch gradients exactly, channels_last / optimiser implementations / compile
give the eager float32 result (up to rounding), and combinations that cannot work are refused."""

import pytest
import torch
from torch import nn

from gankit.amp import penalty_scale, scaling
from gankit.config import ConfigError
from gankit.families import Phase, StepContext
from gankit.penalties import input_gradients
from gankit.recipes.load import load_recipe
from gankit.runlog import checkpoint as ck
from gankit.training.build import make_optimizer
from gankit.training.phases import run_phase
from gankit.training.precision import Precision
from gankit.training.run import resume_run, start_run
from gankit.training.trainer import Trainer

GRID = [
    "generator.hidden=[32, 32]",
    "discriminator.hidden=[32, 32]",
    "schedule.batch_size=32",
    "log.tensorboard=false",
    "eval.metrics=[]",
    "eval.every=0",
    "eval.best=null",
    "log.sample_every=0",
]
# Adam turns rounding noise in near-zero gradients into full-size steps; SGD keeps rounding small.
SGD = ["optim.g={type: sgd, lr: 0.01}", "optim.d={type: sgd, lr: 0.01}"]
DIGITS = [
    "generator.width=8",
    "discriminator.width=8",
    "schedule.batch_size=16",
    "log.tensorboard=false",
    "eval.metrics=[]",
    "eval.best=null",
    "log.sample_every=0",
]


def _steps(trainer, n):
    torch.manual_seed(5)  # the noise comes from the global RNG: the same draws for each trainer compared
    for _ in range(n):
        trainer.train_step(want_log=False)
    return {k: v.detach().clone() for k, v in trainer.G.state_dict().items()}


def test_bf16_autocast_runs_the_networks_in_bf16_and_stays_close_to_fp32(tmp_path):
    fp32 = Trainer(load_recipe("gan-grid", GRID + ["perf.amp=none"]), tmp_path / "a")
    bf16 = Trainer(load_recipe("gan-grid", GRID + ["perf.amp=bf16"]), tmp_path / "b")
    seen = []
    last = [m for m in bf16.D.modules() if isinstance(m, nn.Linear)][-1]
    last.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    a, b = _steps(fp32, 5), _steps(bf16, 5)
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in bf16.G.parameters())  # master weights stay fp32
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert 0 < diff < 2e-3, diff  # rounding differs, the training does not


def test_fp16_scaling_reaches_the_penalty_inner_gradient():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    x = torch.randn(8, 2)
    plain = input_gradients(D, x)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    seen = []
    with scaling(scaler, torch.device("cpu")):
        seen.append(float(penalty_scale()))
        scaled = input_gradients(D, x)
    assert seen == [2.0**16] and penalty_scale() is None
    torch.testing.assert_close(scaled, plain, rtol=1e-6, atol=0)  # scaled in, unscaled out


def test_fp16_with_a_gradient_penalty_trains_and_resumes_exactly(tmp_path):
    extra = GRID + [
        "perf.amp=fp16",
        "penalties=[{name: wgan-gp}]",
        "objective.name=wasserstein",
        "log.checkpoint_every=4",
        "log.every=2",
    ]
    start_run(load_recipe("gan-grid", extra + ["schedule.steps=8"]), out=tmp_path / "full")
    start_run(load_recipe("gan-grid", extra + ["schedule.steps=4"]), out=tmp_path / "half")
    state = ck.load_state(ck.find_checkpoint(tmp_path / "half"))
    assert set(state["scalers"]) == {"D", "G"} and state["scalers"]["D"]["scale"] > 0
    resume_run(tmp_path / "half", ["schedule.steps=8"])
    a = ck.load_weights(ck.find_checkpoint(tmp_path / "full"))[0]
    b = ck.load_weights(ck.find_checkpoint(tmp_path / "half"))[0]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.isfinite(v).all() for v in a.values())
    init = Trainer(load_recipe("gan-grid", extra + ["schedule.steps=8"]), tmp_path / "init").G.state_dict()
    assert any(not torch.equal(v, a[f"G.{k}"]) for k, v in init.items()), "fp16 skipped every step"


def test_accumulation_sums_micro_batch_gradients_exactly():
    torch.manual_seed(0)
    data = torch.randn(8, 3)
    target = torch.randn(8, 1)

    def run(k):
        torch.manual_seed(1)
        net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        chunks = iter(zip(data.chunk(k), target.chunk(k)))

        def loss_fn(batch, ctx):
            x, t = next(chunks)
            err = ((net(x) - t) ** 2).mean()
            return {"loss": err, "err": err}

        phase = Phase("G", net, opt, loss_fn, batch="none")
        out = run_phase(phase, StepContext(torch.device("cpu"), 8 // k), lambda: None, accumulate=k)
        return net, out

    one, out1 = run(1)
    four, out4 = run(4)
    for p, q in zip(one.parameters(), four.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out4["err"], out1["err"])  # the mean of equal-size micro-batch means


def test_accumulation_draws_micro_batches_and_must_divide_the_batch(tmp_path):
    t = Trainer(load_recipe("gan-grid", GRID + ["perf.accumulate=4"]), tmp_path / "r")
    assert t.stream.next()[0].shape[0] == 8
    _steps(t, 2)
    with pytest.raises(ConfigError, match="perf.accumulate=3 must divide schedule.batch_size=32"):
        load_recipe("gan-grid", GRID + ["perf.accumulate=3"])


def test_channels_last_networks_train_and_checkpoint_like_the_plain_ones(tmp_path):
    plain = Trainer(load_recipe("dcgan-digits", DIGITS + SGD + ["perf.channels_last=false"]), tmp_path / "a")
    nhwc = Trainer(load_recipe("dcgan-digits", DIGITS + SGD + ["perf.channels_last=true"]), tmp_path / "b")
    conv = next(p for p in nhwc.D.parameters() if p.ndim == 4 and p.shape[1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    a, b = _steps(plain, 3), _steps(nhwc, 3)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    (tmp_path / "b").mkdir()
    nhwc.save_checkpoint()
    again = Trainer(load_recipe("dcgan-digits", DIGITS + SGD + ["perf.channels_last=false"]), tmp_path / "c")
    again.load_checkpoint(nhwc.last_checkpoint)
    for k, v in again.G.state_dict().items():
        assert torch.equal(v, nhwc.G.state_dict()[k])


@pytest.mark.parametrize("impl", ["foreach", "for-loop", "fused"])
def test_optimiser_implementations_agree(impl):
    from gankit.config import Optim

    def run(cfg):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        opt = make_optimizer(cfg, net.parameters())
        for i in range(5):
            opt.zero_grad()
            net(torch.randn(16, 4, generator=torch.Generator().manual_seed(i))).pow(2).mean().backward()
            opt.step()
        return list(net.parameters())

    ref = run(Optim(type="adam", lr=1e-2))
    for p, q in zip(ref, run(Optim(type="adam", lr=1e-2, impl=impl))):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="impl=fused exists for adam, adamw and sgd"):
        make_optimizer(Optim(type="rmsprop", impl="fused"), ref)


def test_compile_gives_the_eager_result_and_refuses_double_backward(tmp_path):
    eager = Trainer(load_recipe("gan-grid", GRID + SGD + ["perf.compile=none"]), tmp_path / "a")
    compiled = Trainer(load_recipe("gan-grid", GRID + SGD + ["perf.compile=both"]), tmp_path / "b")
    assert compiled.family.G is not compiled.G and compiled.family.G._orig_mod is compiled.G
    a, b = _steps(eager, 3), _steps(compiled, 3)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    assert not any("_orig_mod" in k for k in compiled.checkpoint_tensors())
    with pytest.raises(ConfigError, match="perf.compile=d with the gradient penalty wgan-gp.*perf.compile=g"):
        Trainer(load_recipe("gan-grid", GRID + ["perf.compile=d", "penalties=[{name: wgan-gp}]"]), tmp_path / "c")


def test_precision_none_is_a_no_op():
    p = Precision()
    assert not p.enabled and p.make_scaler() is None
    assert Precision("fp16").make_scaler() is not None and Precision("bf16").make_scaler() is None


@pytest.mark.parametrize(
    "recipe,extra",
    [
        (
            "stylegan-mnist",
            [
                "generator={name: stylegan, z_dim: 16, w_dim: 16, mapping_layers: 2, width: 8, max_channels: 16}",
                "discriminator={name: stylegan, width: 8, max_channels: 16}",
                "penalties=[{name: r1, gamma: 1.0, every: 2}]",
            ],
        ),
        ("sagan-mnist", ["generator.width=4", "discriminator.width=4"]),
    ],
)
def test_bf16_trains_the_style_and_attention_architectures(tmp_path, recipe, extra):
    """Buffers kept in float32 (StyleGAN's w_avg) and attention softmax must accept bf16 activations."""
    r = load_recipe(
        recipe,
        [
            "log.tensorboard=false",
            "eval.metrics=[]",
            "eval.best=null",
            "schedule.batch_size=8",
            "perf.amp=bf16",
            "data={name: digits, resolution: 32}",
            *extra,
        ],
    )
    t = Trainer(r, tmp_path / "run")
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    _steps(t, 3)
    t.check_finite()
    assert any(not torch.equal(v, t.G.state_dict()[k]) for k, v in before.items())
    assert all(torch.isfinite(v).all() for v in t.G.state_dict().values() if v.is_floating_point())
