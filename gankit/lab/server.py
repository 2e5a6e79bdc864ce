"""The lab's web server: the page, its static files and one WebSocket per browser tab (Starlette).

Each connection owns a :class:`LabSession`. A reader task queues the page's messages (at most
``INBOX`` waiting; beyond that they are dropped and the page is told once a second), and the session
loop handles them between training updates, so a flood of messages can neither grow memory without
bound nor starve the training. Training runs in a worker thread; the event loop stays free for the
other tabs. Nothing the page sends is executed or written anywhere: exports go back to the page.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from gankit.dynamics.dirac import DIRAC, verdict
from gankit.lab.messages import (
    DATASETS,
    LIMITS,
    PENALTIES,
    TRICKS,
    BadMessage,
    ChangeSettings,
    Dirac,
    Export,
    Pause,
    Play,
    Points,
    Reset,
    Step,
    parse,
)
from gankit.lab.session import LabSession, point_objectives

STATIC = Path(__file__).parent / "static"
INBOX = 64  # messages waiting at most; more are dropped (a flood), the page told
FLOOD_NOTICE = 1.0  # seconds between "messages dropped" errors


def hello(session: LabSession) -> dict[str, Any]:
    return {
        "type": "hello",
        "options": {
            "datasets": list(DATASETS),
            "objectives": list(point_objectives()),
            "penalties": list(PENALTIES),
            "tricks": list(TRICKS),
            "dirac_methods": DIRAC.names(),
        },
        "settings": session.settings.model_dump(mode="json"),
        "limits": LIMITS,
    }


def dirac_reply(msg: Dirac) -> dict[str, Any]:
    """The Dirac-GAN trajectory of ``msg``'s method and step size (``gankit dirac``'s ``verdict``)."""
    if msg.method not in DIRAC.names():
        raise BadMessage(f"unknown Dirac-GAN method {msg.method!r}; choose one of {', '.join(DIRAC.names())}")
    try:
        v = verdict(msg.method, msg.h, msg.steps, msg.alternating, msg.d_steps, msg.start, gamma=msg.gamma)
    except (TypeError, ValueError) as err:
        raise BadMessage(f"dirac {msg.method}: {err}") from None
    path = v.path[(abs(v.path) < 1e6).all(axis=1)]  # a diverging run stops where it left the plane
    stride = max(1, len(path) // 2000)
    return {
        "type": "dirac",
        "method": v.method,
        "path": path[::stride].round(5).tolist(),
        "eigenvalues": [[round(float(e.real), 6), round(float(e.imag), 6)] for e in v.eigenvalues],
        "spectral_radius": round(v.spectral_radius, 6),
        "converges": v.converges,
    }


class Connection:
    """One browser tab: its session, its inbox, and the loop that serves them."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.session: LabSession | None = None
        self.inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=INBOX)
        self.dropped = 0
        self.last_notice = 0.0

    async def read(self) -> None:
        """Queue the page's messages; drop (and count) what does not fit."""
        while True:
            text = await self.ws.receive_text()
            try:
                self.inbox.put_nowait(text)
            except asyncio.QueueFull:
                self.dropped += 1

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await self.ws.send_json(message)
        except RuntimeError as err:  # Starlette's "send once a close message has been sent"
            raise WebSocketDisconnect(code=1006) from err

    async def error(self, message: str) -> None:
        await self.send({"type": "error", "message": message})

    async def handle(self, text: str) -> None:
        """One message: act on it, or tell the page why not (the session is never left half-changed)."""
        s = self.session
        assert s is not None
        try:
            msg = parse(text)
            if isinstance(msg, Play):
                if s.status == "stopped":
                    raise BadMessage("training stopped on a NaN: press reset (or change a setting) first")
                s.playing = True
                await self.send(s.state())
            elif isinstance(msg, Pause):
                s.playing = False
                await self.send(s.state())
            elif isinstance(msg, Step):
                s.playing = False
                await run_in_threadpool(s.advance, msg.n)
                await self.send(s.state())
                await self.send(await run_in_threadpool(s.frame))
            elif isinstance(msg, Reset):
                await run_in_threadpool(s.reset)
                await self.send(s.state(reset=True))
                await self.send(await run_in_threadpool(s.frame))
            elif isinstance(msg, (ChangeSettings, Points)):
                patch = msg.settings if isinstance(msg, ChangeSettings) else {"dataset": "drawn", "points": msg.points}
                rebuilt = await run_in_threadpool(s.apply, patch)
                await self.send(s.state(reset=rebuilt))
                if not s.playing:
                    await self.send(await run_in_threadpool(s.frame))
            elif isinstance(msg, Export):
                await self.send(s.export())
            elif isinstance(msg, Dirac):
                await self.send(await run_in_threadpool(dirac_reply, msg))
        except WebSocketDisconnect:
            raise  # the tab is gone: nobody to tell, the session ends
        except BadMessage as err:
            await self.error(str(err))
        except Exception as err:
            await self.pause_on(err)

    async def pause_on(self, err: Exception) -> None:
        """A failure in training or a view pauses this tab, with the error on its page; the server goes on."""
        assert self.session is not None
        self.session.playing = False
        await self.error(f"{type(err).__name__}: {err} (training paused)")
        await self.send(self.session.state())

    async def serve(self) -> None:
        self.session = s = await run_in_threadpool(LabSession)
        await self.send(hello(s))
        await self.send(s.state(reset=True))
        await self.send(await run_in_threadpool(s.frame))
        reader = asyncio.create_task(self.read())
        try:
            while True:
                if reader.done():
                    reader.result()  # the socket closed: WebSocketDisconnect ends the session
                if s.playing:
                    while not self.inbox.empty():
                        await self.handle(self.inbox.get_nowait())
                    if s.playing:
                        await self.update()
                else:
                    get = asyncio.create_task(self.inbox.get())
                    done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
                    if get in done:
                        await self.handle(get.result())
                    else:
                        get.cancel()
                await self.notice_drops()
        finally:
            reader.cancel()
            s.close()

    async def update(self) -> None:
        """One play update: ``steps_per_update`` steps and a frame (a failure pauses: ``pause_on``)."""
        s = self.session
        assert s is not None
        try:
            await run_in_threadpool(s.advance, s.settings.steps_per_update)
            if s.status == "stopped":
                await self.send(s.state())
            await self.send(await run_in_threadpool(s.frame))
        except WebSocketDisconnect:
            raise
        except Exception as err:
            await self.pause_on(err)
        await asyncio.sleep(0)  # let the reader and the other tabs in

    async def notice_drops(self) -> None:
        now = time.monotonic()
        if self.dropped and now - self.last_notice >= FLOOD_NOTICE:
            n, self.dropped, self.last_notice = self.dropped, 0, now
            await self.error(f"too many messages: {n} dropped (the lab keeps at most {INBOX} waiting); slow down")


async def websocket_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    try:
        await Connection(ws).serve()
    except WebSocketDisconnect:
        pass


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


def create_app() -> Starlette:
    """The lab's ASGI app: ``/`` the page, ``/static`` its files, ``/ws`` the session socket."""
    return Starlette(
        routes=[
            Route("/", index),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
            WebSocketRoute("/ws", websocket_endpoint),
        ]
    )
