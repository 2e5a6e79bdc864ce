"""Each trick changes exactly what it claims, composes with the trainer, and rejects nonsense."""

import math

import pytest
import torch
from family_steps import batch, context

from gankit.config import ConfigError
from gankit.models.base import DOut
from gankit.objectives import OBJECTIVES
from gankit.recipes.load import load_recipe
from gankit.training.trainer import Trainer
from gankit.tricks import TRICKS, smoothed_terms


def trainer(name="gan-grid", *overrides):
    return Trainer(load_recipe(name, ["log.tensorboard=false", "schedule.steps=10", *overrides]), "/nonexistent")


@pytest.mark.parametrize("alpha,beta,p,q", [(0.9, 0.0, 0.7, 0.3), (0.9, 0.0, 0.2, 0.8), (0.8, 0.1, 0.5, 0.5)])
def test_label_smoothing_moves_the_optimal_discriminator(alpha, beta, p, q):
    # Pointwise D objective p * l_real(t) + q * l_fake(t) is minimised at sigma(t) = (alpha p + beta q)/(p + q).
    t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([t], lr=1, max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        r, f = smoothed_terms(t, t, alpha, beta)
        loss = p * r + q * f
        loss.backward()
        return loss

    opt.step(closure)
    assert torch.sigmoid(t).item() == pytest.approx((alpha * p + beta * q) / (p + q), abs=1e-6)


def test_label_smoothing_with_alpha_one_is_the_plain_logistic_loss():
    r, f = torch.randn(16), torch.randn(16)
    smooth = TRICKS.build("label-smoothing", alpha=1.0, beta=0.0)
    plain = OBJECTIVES["non-saturating"].d_loss(r, f)
    assert smooth.d_loss(None, r, f).item() == pytest.approx(plain.item(), rel=1e-6)


def test_label_smoothing_rejects_non_logistic_objectives():
    with pytest.raises(ConfigError, match="least-squares"):
        trainer("lsgan-grid", "tricks=[{name: label-smoothing}]")
    with pytest.raises(ConfigError, match="alpha"):
        trainer("gan-grid", "tricks=[{name: label-smoothing, alpha: 0.5, beta: 0.6}]")


def test_instance_noise_adds_annealed_gaussian_noise():
    t = TRICKS.build("instance-noise", sigma=0.5, anneal_steps=100)
    assert t.sigma_at(0) == 0.5 and t.sigma_at(50) == pytest.approx(0.25) and t.sigma_at(200) == 0.0
    x = torch.zeros(20000, 2)
    torch.manual_seed(0)
    real, fake = t.d_inputs(x, x + 1, step=50)
    assert real.std().item() == pytest.approx(0.25, rel=0.02)
    assert (fake - 1).std().item() == pytest.approx(0.25, rel=0.02)
    r2, f2 = t.d_inputs(x, x, step=100)
    assert torch.equal(r2, x) and torch.equal(f2, x)


def test_feature_matching_is_the_squared_distance_of_mean_features():
    fm = TRICKS.build("feature-matching")
    real = DOut(logits=torch.zeros(4), features=torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 0.0], [3.0, 2.0]]))
    fake = DOut(logits=torch.zeros(2), features=torch.tensor([[0.0, 0.0], [2.0, 2.0]], requires_grad=True))
    loss = fm.g_loss(fake, real, torch.tensor(5.0))
    assert loss.item() == pytest.approx((2 - 1) ** 2 + (2 - 1) ** 2)  # means (2, 2) vs (1, 1)
    loss.backward()
    assert torch.allclose(fake.features.grad, torch.full((2, 2), -1.0))  # d/df_j = -2 (mu_r - mu_f) / n
    assert fm.g_loss(real, real, torch.tensor(5.0)).item() == 0.0
    with_adv = TRICKS.build("feature-matching", adversarial_weight=0.5)
    assert with_adv.g_loss(real, real, torch.tensor(5.0)).item() == pytest.approx(2.5)


def test_feature_matching_trains_g_through_d_features():
    t = trainer("gan-grid", "tricks=[{name: feature-matching}]")
    terms = t.train_step(want_log=True)
    assert "g/trick/feature-matching" in terms
    assert terms["g/loss"].item() == pytest.approx(terms["g/trick/feature-matching"].item())


def test_historical_averaging_penalises_distance_to_the_running_mean():
    ha = TRICKS.build("historical-averaging", weight=2.0, networks="D")
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    assert ha.extra_loss("G", net) is None
    assert ha.extra_loss("D", net).item() == 0.0  # first call: the mean is the parameters themselves
    with torch.no_grad():
        net.weight.fill_(3.0)
    # running mean of (1, 3) is 2; penalty 2 * (3 - 2)^2
    assert ha.extra_loss("D", net).item() == pytest.approx(2.0)
    state = ha.state_dict()
    again = TRICKS.build("historical-averaging", weight=2.0, networks="D")
    again.load_state_dict(state)
    with torch.no_grad():
        net.weight.fill_(5.0)
    assert again.extra_loss("D", net).item() == pytest.approx(2.0 * (5 - 3) ** 2)  # mean of 1, 3, 5


def test_pacgan_packs_consecutive_samples_and_m1_is_plain():
    x = torch.arange(24.0).reshape(6, 2, 1, 2)
    one, two = TRICKS.build("pacgan", m=1), TRICKS.build("pacgan", m=2)
    assert torch.equal(one.d_inputs(x, x, 0)[0], x)
    packed = two.d_inputs(None, x, 0)[1]
    assert packed.shape == (3, 4, 1, 2)
    assert torch.equal(packed[1], torch.cat([x[2], x[3]]))
    assert two.d_in_shape((2, 1, 2)) == (4, 1, 2) and two.d_in_shape((2,)) == (4,)
    with pytest.raises(ValueError, match="divisible"):
        TRICKS.build("pacgan", m=4).pack(x)


def test_pacgan_trainer_builds_a_packed_discriminator():
    t = trainer("gan-grid", "tricks=[{name: pacgan, m: 4}]")
    assert t.D.in_shape == (8,)
    t.train_step(want_log=False)  # D sees (64, 8): 256 samples in packs of 4
    plain = trainer("gan-grid", "tricks=[{name: pacgan, m: 1}]")
    ref = trainer("gan-grid")
    for a, b in zip(plain.D.parameters(), ref.D.parameters()):
        assert torch.equal(a, b)


def test_tricks_compose_and_resume_exactly(tmp_path):
    from gankit.training.run import resume_run, start_run

    over = [
        "log.tensorboard=false",
        "log.checkpoint_every=3",
        "tricks=[{name: instance-noise, sigma: 0.1, anneal_steps: 10}, {name: historical-averaging}, "
        "{name: pacgan, m: 2}]",
    ]
    full = start_run(load_recipe("gan-grid", [*over, "schedule.steps=6"]), out=tmp_path / "full")
    start_run(load_recipe("gan-grid", [*over, "schedule.steps=3"]), out=tmp_path / "half")
    resumed = resume_run(tmp_path / "half", ["schedule.steps=6"])
    from gankit.runlog.checkpoint import load_weights

    a, _ = load_weights(full["checkpoint"])
    b, _ = load_weights(resumed["checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_or_duplicate_tricks_fail_up_front():
    with pytest.raises(ConfigError, match="label-smoothing"):
        load_recipe("gan-grid", ["tricks=[{name: label-smoothin}]"])
    with pytest.raises(ConfigError, match="twice"):
        trainer("gan-grid", "tricks=[{name: pacgan}, {name: pacgan, m: 3}]")


def test_every_trick_is_registered_with_a_citation():
    assert set(TRICKS.names()) >= {
        "label-smoothing",
        "instance-noise",
        "feature-matching",
        "historical-averaging",
        "pacgan",
    }
    for name in TRICKS.names():
        doc = TRICKS.get(name).__doc__
        assert any(str(y) in doc for y in range(2014, 2025)), name
    assert math.isfinite(TRICKS.build("instance-noise").sigma_at(5))


# -- unrolled GAN ---------------------------------------------------------------------------------
def _family(tricks, opt="sgd", lr=0.1, seed=0):
    from gankit.families import FAMILIES
    from gankit.models import DISCRIMINATORS, GENERATORS

    torch.manual_seed(seed)
    G = GENERATORS.build("mlp", out_shape=(2,), num_classes=0, z_dim=2, hidden=[8])
    D = DISCRIMINATORS.build("mlp", in_shape=(2,), num_classes=0, hidden=[8])
    real = torch.randn(16, 2)
    fam = FAMILIES.get("unconditional")(
        G,
        D,
        OBJECTIVES.build("non-saturating"),
        [],
        torch.device("cpu"),
        [(n, TRICKS.build(n, **o)) for n, o in tricks],
    )
    opt_d = torch.optim.SGD(D.parameters(), lr=lr) if opt == "sgd" else torch.optim.Adam(D.parameters(), lr=lr)
    fam.phases(torch.optim.SGD(G.parameters(), lr=0.1), opt_d, 1)
    fam.test_args = (batch(real), context(16))
    return fam, real


def test_unrolled_with_k0_is_the_plain_generator_loss():
    fam0, _ = _family([("unrolled", {"k": 0})])
    plain, _ = _family([])
    torch.manual_seed(1)
    a = fam0.g_terms(*fam0.test_args)["loss"]
    torch.manual_seed(1)
    b = plain.g_terms(*plain.test_args)["loss"]
    assert a.item() == b.item()


def test_unrolled_sgd_step_is_differentiated_through():
    import torch.nn.functional as F
    from torch.func import functional_call

    fam, real = _family([("unrolled", {"k": 1})], opt="sgd", lr=0.5)
    torch.manual_seed(3)
    z = torch.randn(16, 2)
    fam.test_args = (batch(real), context(16, z=z))
    loss = fam.g_terms(*fam.test_args)["loss"]
    g_grad = torch.autograd.grad(loss, list(fam.G.parameters()))
    # Independent computation: theta_1 = theta_0 - eta grad L_D(theta_0), then -log sigma(D_theta_1(G(z))).
    names = [n for n, _ in fam.D.named_parameters()]
    theta0 = [p.detach().clone().requires_grad_(True) for p in fam.D.parameters()]
    fake = fam.G(z)
    d = lambda ps, x: functional_call(fam.D, dict(zip(names, ps)), (x,)).logits
    l_d = F.softplus(-d(theta0, real)).mean() + F.softplus(d(theta0, fake)).mean()
    grads = torch.autograd.grad(l_d, theta0, create_graph=True)
    theta1 = [p - 0.5 * g for p, g in zip(theta0, grads)]
    expected = F.softplus(-d(theta1, fake)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    e_grad = torch.autograd.grad(expected, list(fam.G.parameters()))
    for a, b in zip(g_grad, e_grad):
        assert torch.allclose(a, b, atol=1e-6)
    # The look-ahead changes G's gradient, and the second-order path is part of it.
    first, _ = _family([("unrolled", {"k": 1, "second_order": False})], opt="sgd", lr=0.5)
    first.test_args = (batch(real), context(16, z=z))
    f_grad = torch.autograd.grad(first.g_terms(*first.test_args)["loss"], list(first.G.parameters()))
    assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(g_grad, f_grad))


def test_unrolled_adam_look_ahead_matches_real_adam_steps_and_leaves_d_alone():
    import copy

    fam, real = _family([("unrolled", {"k": 3, "second_order": False})], opt="adam", lr=0.01)
    for _ in range(2):  # give D's Adam some state first
        fam.opt_d.zero_grad()
        fam.d_terms(*fam.test_args)["loss"].backward()
        fam.opt_d.step()
    torch.manual_seed(5)
    z = torch.randn(16, 2)
    fam.test_args = (batch(real), context(16, z=z))
    D_before = copy.deepcopy(fam.D.state_dict())
    critic = fam.tricks[0][1].g_critic(fam, fam.G(z).detach(), real, fam.test_args[1])
    # The same three updates with torch's Adam on a copy of D and its optimiser state.
    D2 = copy.deepcopy(fam.D)
    opt2 = torch.optim.Adam(D2.parameters(), lr=0.01)
    opt2.load_state_dict(fam.opt_d.state_dict())
    fake = fam.G(z).detach()
    for _ in range(3):
        opt2.zero_grad()
        fam.objective.d_loss(D2(real).logits, D2(fake).logits).backward()
        opt2.step()
    x = torch.randn(32, 2)
    assert torch.allclose(critic(x).logits, D2(x).logits, atol=1e-5)
    assert all(torch.equal(v, fam.D.state_dict()[k]) for k, v in D_before.items())


def test_unrolled_trains_in_the_trainer():
    t = trainer("gan-grid", "tricks=[{name: unrolled, k: 2}]")
    before = [p.clone() for p in t.G.parameters()]
    terms = t.train_step(want_log=True)
    assert math.isfinite(terms["g/loss"].item())
    assert any(not torch.equal(a, b) for a, b in zip(before, t.G.parameters()))


def test_every_trick_composes_with_every_objective_or_is_rejected_with_the_reason():
    # The documented rules (README, "What composes"): label smoothing needs a logistic D loss; BiGAN
    # takes the objectives whose labels can be swapped; VEEGAN needs the logistic density-ratio D;
    # feature matching and unrolling assume G alone plays against D(x), so not the paired families.
    from gankit.families.bidirectional import BiGAN
    from gankit.tricks import LOGISTIC

    torch.set_num_threads(1)
    outcomes = {}
    for family in ("unconditional", "bigan", "veegan"):
        for objective in OBJECTIVES.names():
            for trick in TRICKS.names():
                reasons = []
                if family == "bigan" and objective not in BiGAN.objectives:
                    reasons.append(objective)
                if family == "veegan" and objective not in LOGISTIC:
                    reasons.append(objective)
                if family != "unconditional" and trick in ("feature-matching", "unrolled"):
                    reasons.append(trick)
                if trick == "label-smoothing" and objective not in LOGISTIC:
                    reasons.append("logistic")
                if trick in ("diffaugment", "ada"):  # points (and the (x, z) pairs of BiGAN / VEEGAN) are not images
                    reasons.append("images")
                if trick == "ada" and objective in ("ebgan", "began"):  # ADA steers p by the sign of D's logits
                    reasons.append("energies")
                over = [
                    f"objective.name={objective}",
                    f"tricks=[{{name: {trick}}}]",
                    f"family={family}",
                    "schedule.batch_size=32",
                    "generator.hidden=[16]",
                    "discriminator.hidden=[16]",
                ]
                if family != "unconditional":
                    over.append("encoder={name: mlp-encoder, hidden: [16]}")
                try:
                    t = trainer("gan-grid", *over)
                except ConfigError as err:
                    assert reasons and any(r in str(err) for r in reasons), (family, objective, trick, err)
                    outcomes[family, objective, trick] = "rejected"
                    continue
                assert not reasons, (family, objective, trick, "should have been rejected")
                terms = t.train_step(want_log=True)
                assert all(math.isfinite(v.item()) for v in terms.values()), (family, objective, trick, terms)
                outcomes[family, objective, trick] = "trains"
    assert list(outcomes.values()).count("trains") >= 60
