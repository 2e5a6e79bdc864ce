"""gankit lab: page updates per second, each of ``--steps`` training steps and a frame, measured two
ways in one run: the session alone (train + views + JSON) and end to end (the lab's server on a free
port, a WebSocket client that presses play and counts the frames it receives). Target (issue 22):
>= 20 updates a second of >= 10 steps on the toy MLPs on 2 CPU cores.

    python benchmarks/lab_speed.py                       # 10 steps an update, 8 s each way
    python benchmarks/lab_speed.py --steps 20 --seconds 5
    python benchmarks/lab_speed.py --screenshot docs/images/lab.png   # the README's picture (Chromium)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import threading
import time

import torch
import uvicorn
import websockets

from gankit.lab.cli import free_port
from gankit.lab.messages import Settings
from gankit.lab.server import create_app
from gankit.lab.session import LabSession


def session_rate(steps: int, seconds: float) -> float:
    s = LabSession(Settings(steps_per_update=steps))
    s.advance(steps)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s.advance(steps)
        json.dumps(s.frame())
        n += 1
    s.close()
    return n / (time.perf_counter() - t0)


def start_server() -> tuple[uvicorn.Server, threading.Thread, int]:
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    return srv, thread, port


async def _count_frames(port: int, steps: int, seconds: float) -> tuple[float, int]:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=1 << 24) as ws:
        await ws.send(json.dumps({"type": "settings", "settings": {"steps_per_update": steps}}))
        await ws.send(json.dumps({"type": "play"}))
        first_step, n, t0 = None, 0, None
        while True:
            m = json.loads(await ws.recv())
            if m["type"] != "frame" or m["step"] == 0:
                continue
            if t0 is None:
                first_step, t0 = m["step"], time.perf_counter()
                continue
            n += 1
            if time.perf_counter() - t0 >= seconds:
                return n / (time.perf_counter() - t0), m["step"] - first_step


def screenshot(port: int, out: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp()}")
    options.add_argument("--window-size=1280,900")
    d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        d.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(d, 120, poll_frequency=0.2)
        wait.until(lambda d: d.execute_script("return window.lab && lab.connected && lab.frames > 0"))
        d.find_element("id", "play").click()
        wait.until(lambda d: d.execute_script("return lab.step >= 3000"))
        d.find_element("id", "pause").click()
        wait.until(lambda d: d.execute_script("return lab.status === 'paused'"))
        time.sleep(0.5)
        d.save_screenshot(out)
    finally:
        d.quit()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10, help="training steps per update (default 10)")
    p.add_argument("--seconds", type=float, default=8.0, help="measuring time each way (default 8)")
    p.add_argument("--screenshot", help="also save a PNG of the page after 3000 steps (needs Chromium)")
    args = p.parse_args()
    torch.set_num_threads(1)  # as `gankit lab` runs
    srv, thread, port = start_server()
    try:
        if args.screenshot:
            screenshot(port, args.screenshot)
            print(f"wrote {args.screenshot}")
            return
        alone = session_rate(args.steps, args.seconds)
        rate, steps = asyncio.run(_count_frames(port, args.steps, args.seconds))
    finally:
        srv.should_exit = True
        thread.join(30)
    print(f"{'way':<26}{'updates/s':>10}{'steps/s':>10}")
    print(f"{'session (train + views)':<26}{alone:>10.1f}{alone * args.steps:>10.0f}")
    print(f"{'server -> WebSocket':<26}{rate:>10.1f}{steps / args.seconds:>10.0f}")
    print(f"target: >= 20 updates/s of >= 10 steps: {'met' if rate >= 20 and args.steps >= 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
