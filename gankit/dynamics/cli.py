"""`gankit dirac` and `gankit identities`: the theory lab on the command line.

``add_commands(sub)`` adds both sub-commands to gankit's sub-parsers; each sets ``func`` (and ``fn``,
the name ``gankit.cli.main`` calls) to a function of ``args`` that returns an exit code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from gankit.dynamics import dirac


def add_commands(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "dirac",
        help="Dirac-GAN: which training methods converge (Mescheder et al. 2018)",
        description="Train the Dirac-GAN (p = delta_0, G = delta_theta, D(x) = psi x) with each "
        "method and print the eigenvalues of v'(0,0), the spectral radius of the "
        "update's Jacobian, the distance to (0,0) after --steps steps and a verdict.",
    )
    d.add_argument(
        "--methods", default=",".join(dirac.METHODS), help=f"comma-separated (default all): {', '.join(dirac.METHODS)}"
    )
    d.add_argument("--lr", type=float, default=0.1, help="learning rate h (default 0.1)")
    d.add_argument("--steps", type=int, default=2000, help="generator steps T (default 2000)")
    d.add_argument("--alternating", action="store_true", help="alternating instead of simultaneous gradient descent")
    d.add_argument("--d-steps", type=int, default=1, help="discriminator steps per generator step (alternating)")
    d.add_argument("--gamma", type=float, help="regularisation weight of wgan-gp, r1, r2, consensus (default 1)")
    d.add_argument("--start", type=float, nargs=2, default=(1.0, 1.0), metavar=("THETA", "PSI"))
    d.add_argument("--tol", type=float, default=1e-3, help="converged when |(theta_T, psi_T)| < tol")
    d.add_argument("--out", type=Path, help="folder for dirac.png (vector fields with trajectories)")
    d.set_defaults(func=cmd_dirac, fn=cmd_dirac)

    i = sub.add_parser(
        "identities", help="check the seeds' GAN identities: D*, V = 2 JSD - log 4, JSD vs W1, saturation"
    )
    i.add_argument("--seed", type=int, default=0, help="seed of the trained discriminator")
    i.add_argument("--out", type=Path, help="folder for identities.png")
    i.set_defaults(func=cmd_identities, fn=cmd_identities)


def cmd_dirac(args: argparse.Namespace) -> int:
    console = Console()
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    methods = {n: dirac.build(n, args.gamma) for n in names}  # a wrong name lists the valid ones
    if args.d_steps < 1 or args.steps < 1 or args.lr <= 0:
        raise ValueError(
            f"need --lr > 0, --steps >= 1 and --d-steps >= 1; got --lr {args.lr}, "
            f"--steps {args.steps}, --d-steps {args.d_steps}"
        )
    scheme = (
        "simultaneous GD"
        if not args.alternating
        else ("alternating GD" + (f" ({args.d_steps} D steps per G step)" if args.d_steps > 1 else ""))
    )
    table = Table(
        title=f"Dirac-GAN: {scheme}, h = {args.lr:g}, T = {args.steps}, start ({args.start[0]:g}, {args.start[1]:g})",
        title_justify="left",
    )
    table.add_column("method", style="bold cyan", no_wrap=True)
    table.add_column("eigenvalues of v'(0,0)", no_wrap=True)
    table.add_column("ρ(F_h')", justify="right")
    table.add_column("|(θ,ψ)_T|", justify="right")
    table.add_column("converges", no_wrap=True)
    verdicts, notes = [], []
    for name, method in methods.items():
        v = dirac.verdict(method, args.lr, args.steps, args.alternating, args.d_steps, tuple(args.start), args.tol)
        verdicts.append(v)
        mark = ""
        if name == "wgan-gp":
            mark = " *"
            notes.append(
                "* wgan-gp: one-sided eigenvalues (psi -> 0+); the field jumps by 2 gamma g0 across "
                "psi = 0, so they do not decide convergence (the paper: it does not converge)"
            )
        elif v.spectral_radius < 1 - 1e-9 and not v.converges:
            mark = " †"
            notes.append(
                f"† {name}: rho < 1, so locally convergent, but this start lies outside the basin "
                "of attraction (try a closer --start)"
            )
        yes = "[green]yes[/]" if v.converges else "[red]no[/]"
        table.add_row(
            name, format_eigenvalues(v.eigenvalues) + mark, f"{v.spectral_radius:.5f}", f"{v.distance:.3g}", yes
        )
    console.print(table)
    for note in notes:
        console.print(note, markup=False)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = dirac.plot_verdicts(verdicts, str(args.out / "dirac.png"), methods)
        console.print(f"wrote {path}")
    return 0


def cmd_identities(args: argparse.Namespace) -> int:
    from gankit.dynamics import identities as ids

    console = Console()
    res = ids.run_all(seed=args.seed)
    table = Table(title="GAN identities (seeds; Goodfellow et al. 2014; Arjovsky et al. 2017)", title_justify="left")
    table.add_column("identity", no_wrap=True)
    table.add_column("computed")
    table.add_column("expected")
    d = res["optimal_discriminator"]
    table.add_row(
        "(a) trained D vs D*", f"|err| max {d['max_abs_error']:.3g}, mean {d['mean_abs_error']:.2g}", "D* = p/(p+q)"
    )
    v = res["value_at_optimum"]
    table.add_row("(b) V(D*, G)", f"{v['V(D*,G)']:.6f}", f"2JSD-log4 = {v['2JSD-log4']:.6f}")
    for row in res["jsd_vs_w1"]:
        table.add_row(
            f"(c) d = {row['distance']:g}: JSD, W1",
            f"{row['jsd']:.6f}, {row['w1']:.6f}",
            f"log 2 = {np.log(2):.6f}, {row['distance']:g}",
        )
    table.add_row("(c) seeds' W1(p, q)", f"{res['seeds_w1']:.6f}", "3")
    g = res["generator_gradients"]
    for k, dfake in enumerate(g["d_fake"]):
        table.add_row(
            f"(d) D(G(z)) = {dfake:.2g}",
            f"minimax {g['minimax'][k]:.2g}, NS {g['non_saturating'][k]:.2g}",
            "minimax -> 0, NS -> -1" if k == 0 else "",
        )
    console.print(table)
    console.print(
        "(a) N(-1, 1) vs N(1, 0.5^2); (b) same; (c) U[0,1] vs U[d,d+1]; "
        "(d) gradients d/dt of the G losses at D's logit t",
        markup=False,
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        console.print(f"wrote {ids.plot_identities(str(args.out / 'identities.png'), seed=args.seed)}")
    return 0


def format_eigenvalues(eig: np.ndarray) -> str:
    """'-0.25 ± 0.433i' for a conjugate pair, '-0.5, -0.5' for real roots."""
    a, b = eig
    if abs(a.imag) > 1e-12:
        re = 0.0 if abs(a.real) < 1e-12 else a.real
        return f"{re:.4g} ± {abs(a.imag):.4g}i" if re else f"± {abs(a.imag):.4g}i"
    return f"{a.real:.4g}, {b.real:.4g}"
