"""`gankit lab`: start the lab's server on this machine and open the page."""

from __future__ import annotations

import argparse
import socket
import threading
import webbrowser

from rich.console import Console


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lab",
        help="the interactive GAN Lab in the browser: watch and steer a 2-D GAN while it trains",
        description="Start a local web server with the GAN Lab (real and generated points, D's decision "
        "surface, G's gradients, curves, toy metrics, the Dirac-GAN) and open it in the browser. Works "
        "offline. Ctrl-C stops it.",
    )
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    p.set_defaults(fn=cmd_lab)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def cmd_lab(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from gankit.lab.server import create_app

    # The lab's MLPs are tiny: one intra-op thread steps them 20x faster than two threads fighting
    # over two cores with the page's server (4 ms against 95 ms a step, measured under load).
    torch.set_num_threads(1)

    console = Console()
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port number (0..65535; 0 picks a free one)")
    port = args.port or free_port(args.host)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{port}/"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/] listening on {args.host}: other machines can reach the lab")
    console.print(f"gankit lab: {url}  (Ctrl-C stops it)")
    if not args.no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    try:
        uvicorn.run(create_app(), host=args.host, port=port, log_level="warning", ws_max_size=1 << 20)
    except OSError as err:
        raise ValueError(f"cannot listen on {args.host}:{port} ({err}); choose another --port") from None
    return 0
