"""The theory lab: Dirac-GAN (Mescheder et al. 2018) and the seeds' game-theory identities."""

import argparse
import ast
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats
from scipy.spatial.distance import jensenshannon

from gankit.dynamics import dirac
from gankit.dynamics import identities as ids
from gankit.dynamics.cli import add_commands
from gankit.dynamics.dirac.methods import _t
from gankit.registry import RegistryError

METHODS = dirac.METHODS
# a few options per method, so the closed forms are checked beyond the defaults
VARIANTS = [(m, {}) for m in METHODS] + [
    ("r1", {"gamma": 0.3}),
    ("r2", {"gamma": 2.5}),
    ("consensus", {"gamma": 0.1}),
    ("instance-noise", {"sigma": 0.5}),
    ("instance-noise", {"sigma": 3.0}),
    ("wgan-gp", {"gamma": 10.0}),
]


def _id(v):
    return v[0] + "".join(f"-{k}={x}" for k, x in v[1].items())


# -- Dirac-GAN ----------------------------------------------------------------------------------
def test_registry_holds_the_papers_methods():
    assert dirac.DIRAC.names() == sorted(METHODS) == sorted(dirac.CONVERGES)
    with pytest.raises(RegistryError, match="valid choices: consensus, gan"):
        dirac.build("r3")
    assert dirac.build("r1", gamma=0.5).gamma == 0.5
    assert isinstance(dirac.build("gan", gamma=0.5), dirac.Gan)  # --gamma is ignored where it means nothing


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_field_is_the_gradient_of_the_losses(variant):
    method = dirac.build(variant[0], **variant[1])
    for theta, psi in [(0.7, -0.4), (-1.3, 0.9), (0.2, 1.7)]:
        analytic = np.array([float(x) for x in method.field(_t(theta), _t(psi))])
        np.testing.assert_allclose(analytic, dirac.autograd_field(method, theta, psi), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_analytic_eigenvalues_match_autograd_jacobian(variant):
    method = dirac.build(variant[0], **variant[1])
    jac = dirac.autograd_jacobian(method)
    np.testing.assert_allclose(method.jacobian(), jac, atol=1e-12)
    numeric = np.sort_complex(np.linalg.eigvals(jac))
    np.testing.assert_allclose(method.eigenvalues(), numeric, atol=1e-6)


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("alternating,d_steps", [(False, 1), (True, 1), (True, 3)])
def test_update_jacobian_matches_autograd_of_one_step(name, alternating, d_steps):
    method = dirac.build(name)
    h = 0.1

    def f(x):
        return torch.stack(dirac.step(method, x[0], x[1], h, alternating, d_steps))

    jac = torch.autograd.functional.jacobian(f, _t(method.jacobian_point)).numpy()
    np.testing.assert_allclose(dirac.update_jacobian(method, h, alternating, d_steps), jac, atol=1e-12)


def test_unregularised_eigenvalues_are_imaginary():
    for name, a in (("gan", 0.5), ("ns-gan", 0.5), ("wgan", 1.0)):
        np.testing.assert_allclose(dirac.build(name).eigenvalues(), [-a * 1j, a * 1j], atol=1e-15)


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.99, 1.0, 1.01, 2.0, 5.0])
def test_r1_eigenvalue_formula(gamma):
    fp0 = 0.5  # f'(0) of the GAN
    expected = np.sort_complex(np.array([(-gamma + s * np.sqrt(complex(gamma**2 - 4 * fp0**2))) / 2 for s in (-1, 1)]))
    method = dirac.build("r1", gamma=gamma)
    np.testing.assert_allclose(method.eigenvalues(), expected, atol=1e-12)
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(dirac.autograd_jacobian(method))), expected, atol=1e-6)
    assert (expected.real < 0).all()


def test_r1_critical_damping_at_gamma_one():
    under, critical, over = (dirac.build("r1", gamma=g).eigenvalues() for g in (0.9, 1.0, 1.1))
    np.testing.assert_array_equal(critical, [-0.5, -0.5])  # double real root -gamma/2
    assert (np.abs(under.imag) > 0).all() and np.allclose(under.real, -0.45)  # underdamped: spirals in
    assert (over.imag == 0).all() and over[0].real < -0.55 < -0.5 < over[1].real  # overdamped: two real roots


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("alternating", [False, True], ids=["simultaneous", "alternating"])
def test_verdicts_reproduce_the_paper(name, alternating):
    v = dirac.verdict(name, h=0.1, steps=2000, alternating=alternating)
    assert v.converges is dirac.CONVERGES[name]
    if dirac.CONVERGES[name]:
        assert v.spectral_radius < 0.99 and v.distance < 1e-10
    else:
        assert v.distance > 0.1
        if name != "wgan-gp":  # imaginary eigenvalues: rho = sqrt(1 + h^2 |lambda|^2) > 1, or 1 alternating
            assert v.spectral_radius > 1.0 if not alternating else v.spectral_radius == pytest.approx(1.0, abs=1e-12)


def test_verdicts_hold_with_more_discriminator_steps_and_another_learning_rate():
    for name in METHODS:
        assert dirac.verdict(name, h=0.2, steps=1000).converges is dirac.CONVERGES[name], name
    for name in ("gan", "wgan", "wgan-gp", "r1"):
        assert dirac.verdict(name, alternating=True, d_steps=5, steps=1000).converges is dirac.CONVERGES[name], name


def test_local_convergence_is_local():
    # consensus with 5 D steps: rho < 1 at the equilibrium, yet from (1, 1) the run escapes to the
    # region where f'(theta psi) -> 0 (||v|| -> 0); from (0.5, 0.5) it converges
    far = dirac.verdict("consensus", alternating=True, d_steps=5, steps=1000, start=(1.0, 1.0))
    near = dirac.verdict("consensus", alternating=True, d_steps=5, steps=1000, start=(0.5, 0.5))
    assert far.spectral_radius < 1 and not far.converges and near.converges


def test_small_gamma_needs_a_small_learning_rate():
    # the discrete update converges only when h is small enough for the eigenvalues (paper Sec. 2.1)
    method = dirac.build("r1", gamma=0.01)
    assert dirac.spectral_radius(method, h=0.1) > 1.0 > dirac.spectral_radius(method, h=0.01)


def test_unregularised_gan_orbits_or_spirals_out():
    sim = dirac.trajectory(dirac.build("gan"), (1.0, 1.0), h=0.1, steps=2000)
    r = np.hypot(*sim.T)
    assert (np.diff(r) >= 0).all() and r[-1] > 2 * r[0]  # v is orthogonal to (theta, psi): |x + h v| grows
    alt = dirac.trajectory(dirac.build("gan"), (1.0, 1.0), h=0.1, steps=2000, alternating=True)
    r = np.hypot(*alt.T)
    assert 0.8 * r[0] < r.min() and r.max() < 1.25 * r[0]  # alternating: orbits at a roughly constant radius


def test_wgan_gp_field_jumps_at_the_equilibrium_and_never_converges():
    for gamma in (0.3, 1.0, 3.0, 10.0):
        method = dirac.build("wgan-gp", gamma=gamma)
        above = method.field(_t(0.0), _t(1e-9))[1]
        below = method.field(_t(0.0), _t(-1e-9))[1]
        assert float(above - below) == pytest.approx(2 * gamma * method.g0, rel=1e-6)
        for alternating in (False, True):
            assert dirac.verdict("wgan-gp", gamma=gamma, alternating=alternating).distance > 0.1


def test_wgan_respects_the_clip():
    path = dirac.trajectory(dirac.build("wgan", clip=0.3), (1.0, 1.0), steps=500)
    assert np.abs(path[:, 1]).max() <= 0.3 + 1e-12


# -- identities ---------------------------------------------------------------------------------
def _grid_jsd(p, q, lo, hi):
    x = np.linspace(lo, hi, 400_001)
    return jensenshannon(p.pdf(x), q.pdf(x)) ** 2  # scipy: sqrt of JSD in nats, normalising both


@pytest.mark.parametrize(
    "pq",
    [
        (ids.gaussian(-1.0, 1.0), ids.gaussian(1.0, 0.5)),
        (ids.gaussian(0.0, 1.0), ids.gaussian(0.3, 2.0)),
        (ids.uniform_mixture([(1.0, 0.0, 2.0)]), ids.uniform_mixture([(0.5, 1.0, 3.0), (0.5, 4.0, 5.0)])),
    ],
    ids=["gauss", "gauss-wide", "uniforms"],
)
def test_value_at_optimal_discriminator_is_2jsd_minus_log4(pq):
    p, q = pq
    v = ids.value_at_optimum(p, q)
    assert v == pytest.approx(2 * ids.jsd(p, q) - np.log(4), abs=1e-9)
    assert v == pytest.approx(2 * _grid_jsd(p, q, -30, 30) - np.log(4), abs=1e-4)  # independent computation
    assert -np.log(4) < v < 0


def test_value_bounds_identical_and_disjoint():
    p = ids.gaussian(0.0, 1.0)
    assert ids.value_at_optimum(p, p) == pytest.approx(-np.log(4), abs=1e-9)
    u0, u1 = ids.uniform_mixture([(1.0, 0.0, 1.0)]), ids.uniform_mixture([(1.0, 3.0, 4.0)])
    assert ids.value_at_optimum(u0, u1) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("d", [1.0, 2.0, 3.5, 7.0, 20.0])
def test_jsd_saturates_while_w1_grows(d):
    (row,) = ids.jsd_vs_w1([d])
    assert row["jsd"] == pytest.approx(np.log(2), abs=1e-12)
    assert row["w1"] == pytest.approx(d, abs=1e-9)
    p, q = ids.uniform_mixture([(1.0, 0.0, 1.0)]), ids.uniform_mixture([(1.0, d, d + 1.0)])
    u = (np.arange(100_000) + 0.5) / 100_000
    assert stats.wasserstein_distance(p.ppf(u), q.ppf(u)) == pytest.approx(d, abs=1e-6)


def test_jsd_below_log2_while_supports_overlap():
    rows = ids.jsd_vs_w1([0.0, 0.25, 0.5, 0.75])
    jsd = [r["jsd"] for r in rows]
    assert jsd[0] == 0 and all(a < b < np.log(2) for a, b in zip(jsd, jsd[1:]))


def test_seeds_earth_movers_example_is_three():
    p, q = ids.seeds_example()
    assert ids.w1(p, q) == pytest.approx(3.0, abs=1e-9)
    u = (np.arange(200_000) + 0.5) / 200_000
    assert stats.wasserstein_distance(p.ppf(u), q.ppf(u)) == pytest.approx(3.0, abs=1e-4)
    rng = np.random.default_rng(0)
    assert stats.wasserstein_distance(p.sample(50_000, rng), q.sample(50_000, rng)) == pytest.approx(3.0, abs=0.03)
    assert ids.jsd(p, q) == pytest.approx(np.log(2), abs=1e-12)  # disjoint supports


def test_trained_discriminator_matches_the_optimal_one():
    err = ids.check_optimal_discriminator(steps=500, seed=0)
    assert err["max_abs_error"] < 0.05 and err["mean_abs_error"] < 0.01


def test_minimax_generator_gradient_saturates_but_non_saturating_does_not():
    t = np.array([-30.0, -20.0, -10.0, -5.0, 0.0, 5.0])
    g = ids.generator_gradients(t)
    np.testing.assert_allclose(g["minimax"], -g["d_fake"], rtol=1e-12)  # d/dt log(1 - sigmoid t) = -sigmoid t
    np.testing.assert_allclose(g["non_saturating"], -(1 - g["d_fake"]), rtol=1e-12)
    assert np.all(np.diff(np.abs(g["minimax"])) > 0)  # shrinks as D(G(z)) -> 0 ...
    assert abs(g["minimax"][0]) < 1e-12 and g["d_fake"][0] < 1e-12
    assert g["non_saturating"][:3] == pytest.approx(-1.0, abs=1e-4)  # ... while NS keeps a unit gradient
    assert g["minimax"][4] == g["non_saturating"][4] == -0.5


# -- command line -------------------------------------------------------------------------------
def _run(argv):
    parser = argparse.ArgumentParser(prog="gankit")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    assert args.fn is args.func
    return args.func(args)


def test_cli_dirac_prints_the_verdicts(capsys, tmp_path):
    assert _run(["dirac", "--steps", "1000"]) == 0
    out = capsys.readouterr().out
    for name in METHODS:
        row = re.search(rf"^\W*{re.escape(name)}\s.*$", out, re.M)
        assert row, f"no row for {name} in\n{out}"
        assert re.search(r"\b(yes|no)\b", row.group()).group(1) == ("yes" if dirac.CONVERGES[name] else "no")
    assert "± 0.5i" in out and "-0.5, -0.5" in out
    argv = ["dirac", "--methods", "r1,gan", "--alternating", "--d-steps", "2", "--gamma", "0.5", "--steps", "300"]
    assert _run([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "r1" in out and "wgan" not in out and "alternating GD (2 D steps per G step)" in out
    assert Image.open(tmp_path / "dirac.png").size[0] > 400  # two panels: vector field + trajectory each
    with pytest.raises(RegistryError, match="valid choices"):
        _run(["dirac", "--methods", "nope"])


def test_cli_identities_prints_the_checks(capsys):
    assert _run(["identities"]) == 0
    out = capsys.readouterr().out
    assert "0.693147" in out and "3.000000" in out and "2JSD-log4" in out


def _is_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # an attribute (from gankit.registry import Registry), not a module
        return False


def test_dynamics_never_imports_the_trainer():
    # follow every gankit.* import of the dynamics modules, transitively, in their source
    todo, seen = ["gankit.dynamics.dirac", "gankit.dynamics.identities", "gankit.dynamics.cli"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse(Path(importlib.util.find_spec(name).origin).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                continue
            todo += [m for m in found if m.startswith("gankit") and _is_module(m)]
    assert "gankit.registry" in seen and not any(m.startswith("gankit.training") for m in seen), sorted(seen)
