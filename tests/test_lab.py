"""gankit lab without a browser: the message checks, the session's training and views, the exported
recipe (trained by `gankit train` to the same networks), and the WebSocket server (Starlette's
TestClient): bad input, a NaN stop, a flood of messages, two tabs at once."""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time

import numpy as np
import pytest
import torch
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import gankit
from gankit.dynamics import dirac
from gankit.lab.messages import BadMessage, Dirac, Settings, Step, parse
from gankit.lab.server import INBOX, create_app, dirac_reply
from gankit.lab.session import LabSession, point_objectives


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as `gankit lab` runs
    yield
    torch.set_num_threads(before)


# -- messages --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, says",
    [
        ("{not json", "not JSON"),
        ('"play"', "unknown message type 'str'"),
        ('{"type": "launch"}', "unknown message type 'launch'"),
        ('{"type": "step", "n": 100000}', "step: n: Input should be less than or equal to 1000"),
        ('{"type": "step", "n": 1, "extra": 2}', "extra"),
        ('{"type": "points", "points": [[0, 99]]}', "less than or equal to 10"),
        ('{"type": "points", "points": []}', "at least 1"),
        ('{"type": "dirac", "h": NaN}', "finite number"),
    ],
)
def test_a_bad_message_is_refused_with_what_was_wrong(text, says):
    with pytest.raises(BadMessage, match=None) as err:
        parse(text)
    assert says in str(err.value), str(err.value)


def test_good_messages_parse_to_their_models():
    assert parse('{"type": "step", "n": 5}') == Step(type="step", n=5)
    assert parse('{"type": "dirac", "method": "r1", "h": 0.05}').h == 0.05


@pytest.mark.parametrize(
    "patch, says",
    [
        ({"lr_g": float("nan")}, "settings.lr_g"),
        ({"lr_d": 1e9}, "less than or equal to 1"),
        ({"batch_size": 10**9}, "settings.batch_size"),
        ({"penalties": ["r1", "dropout"]}, "settings.penalties"),
        ({"objective": "no-such-loss"}, "does not train the lab's networks; choose one of"),
        ({"dataset": "drawn"}, "no points yet"),
        ({"colour": "red"}, "settings.colour: Extra inputs are not permitted"),
        ({"steps_per_update": "ten"}, "settings.steps_per_update"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(patch, says):
    s = LabSession()
    s.advance(3)
    before = (s.settings, s.step, s.trainer)
    with pytest.raises(BadMessage) as err:
        s.apply(patch)
    assert says in str(err.value), str(err.value)
    assert (s.settings, s.step, s.trainer) == before
    s.close()


# -- the session --------------------------------------------------------------------------------------
def test_every_offered_objective_trains_the_lab_networks():
    names = point_objectives()
    assert {"non-saturating", "wasserstein", "hinge", "least-squares", "relativistic"} <= set(names)
    for name in names:
        s = LabSession(Settings(objective=name, penalties=["wgan-gp"] if name == "wasserstein" else []))
        s.advance(3)
        assert s.step == 3 and s.status == "paused", (name, s.message)
        json.dumps(s.frame(), allow_nan=False)
        s.close()


def test_the_exported_recipe_trains_the_same_networks(tmp_path):
    """Watching (frames between updates) does not change the run: `gankit train` on the exported
    recipe ends with bit-identical generator weights."""
    s = LabSession(Settings(dataset="clusters", penalties=["r1"], gamma=0.5, n_critic=2, seed=3))
    for _ in range(3):
        s.advance(7)
        s.frame()
    exported = s.export()
    assert exported["filename"] == "gankit-lab-clusters.yaml"
    assert "21 steps" in exported["yaml"].splitlines()[0]
    path = tmp_path / exported["filename"]
    path.write_text(exported["yaml"])
    run = gankit.train(path, out=tmp_path / "run")
    assert run.step == 21
    trained = gankit.load(run.run_dir, ema=False).module.state_dict()
    live = s.trainer.G.state_dict()
    assert trained.keys() == live.keys()
    for k in live:
        assert torch.equal(trained[k], live[k]), k
    s.close()


def test_a_running_change_keeps_the_networks_and_the_export_says_so():
    s = LabSession()
    s.advance(5)
    G = s.trainer.G
    assert s.apply({"lr_g": 0.01, "n_critic": 3}) is False
    assert s.trainer.G is G and s.step == 5
    assert [g["lr"] for g in s.trainer.opt_g.param_groups] == [0.01]
    assert next(p for p in s.trainer.phases if p.name == "D").repeats == 3
    assert "changed at step 5" in s.export()["yaml"]
    assert s.apply({"objective": "hinge"}) is True  # a new game: fresh networks from the seed
    assert s.step == 0 and s.trainer.G is not G and s.changed_at is None
    s.close()


def test_drawn_points_become_the_dataset_and_the_view_frames_them():
    pts = [[3.0 + 0.1 * i, -2.0] for i in range(10)]
    s = LabSession()
    assert s.apply({"dataset": "drawn", "points": pts}) is True
    assert torch.allclose(s.trainer.source.centers, torch.tensor(pts, dtype=torch.float64).float())
    x0, x1, y0, y1 = s.extent
    assert x0 < 3.0 and x1 > 3.9 and y0 < -2.0 < y1
    assert "points:" in s.export()["yaml"] and "3.9" in s.export()["yaml"]
    s.close()


def test_the_views_are_what_the_networks_compute():
    s = LabSession(Settings(z_dim=2))
    s.advance(20)
    f = s.frame()
    t = s.trainer
    # the heat map: sigmoid(D) on a grid, row 0 at the top (ymax), column 0 at xmin
    x0, x1, y0, y1 = f["extent"]
    heat = np.array(f["heat"]["values"]).reshape(f["heat"]["n"], f["heat"]["n"])
    with torch.no_grad():
        corner = torch.sigmoid(t.D(torch.tensor([[x0, y1], [x1, y0]])).logits.reshape(-1))
    assert heat[0, 0] == pytest.approx(float(corner[0]), abs=2e-3)
    assert heat[-1, -1] == pytest.approx(float(corner[1]), abs=2e-3)
    # the arrows: G's update direction; moving a point along its arrow raises D's logit (NS loss)
    fake, arrows = torch.tensor(f["fake"]), torch.tensor(f["arrows"])
    with torch.no_grad():
        gain = t.D(fake + 1e-3 * arrows).logits.reshape(-1) - t.D(fake).logits.reshape(-1)
    assert (gain > 0).float().mean() > 0.95
    # the mesh: G of the 9 + 9 lines of a grid in z
    mesh = np.array(f["mesh"])
    assert mesh.shape == (18, 41, 2)
    z = torch.stack([torch.linspace(-2.5, 2.5, 41), torch.full((41,), -2.0)], 1)
    assert np.allclose(mesh[0], t.generate(z).numpy(), atol=2e-3)
    s3 = LabSession(Settings(z_dim=3))
    assert s3.frame()["mesh"] is None
    s3.close()
    # the heat map changes as D trains; the curves carry one row per update
    s.advance(30)
    g = s.frame()
    assert not np.allclose(g["heat"]["values"], f["heat"]["values"])
    assert g["curves"]["step"] == [50] and math.isfinite(g["curves"]["d_loss"][0])
    s.close()


def test_a_nan_stops_training_with_the_message_and_reset_recovers():
    s = LabSession()
    s.advance(2)
    with torch.no_grad():
        next(s.trainer.D.parameters()).fill_(float("nan"))
    s.playing = True
    s.advance(5)
    assert s.status == "stopped" and not s.playing
    assert "NaN" in s.message or "nan" in s.message.lower(), s.message
    assert "reset" in s.message
    json.dumps(s.frame(), allow_nan=False)  # non-finite values travel as null
    assert s.state()["status"] == "stopped"
    assert "run directory" not in s.message  # the stop tried to write nothing (it has nowhere to write)
    s.reset()
    s.advance(5)
    assert s.status == "paused" and s.step == 5
    s.close()


# -- the Dirac-GAN tab --------------------------------------------------------------------------------
def test_the_dirac_reply_is_gankit_dirac():
    msg = Dirac(type="dirac", method="r1", h=0.1, steps=300, gamma=1.0)
    r = dirac_reply(msg)
    ref = dirac.trajectory(dirac.build("r1", 1.0), (1.0, 1.0), 0.1, 300)
    assert np.allclose(np.array(r["path"]), ref, atol=1e-5)
    eig = dirac.build("r1", 1.0).eigenvalues()
    assert np.allclose([complex(*e) for e in r["eigenvalues"]], eig, atol=1e-6)
    assert r["converges"] == dirac.verdict("r1", 0.1, 300, gamma=1.0).converges
    with pytest.raises(BadMessage, match="unknown Dirac-GAN method 'gann'; choose one of"):
        dirac_reply(Dirac(type="dirac", method="gann"))


# -- the server ---------------------------------------------------------------------------------------
def _until(ws, kind, limit=200):
    seen = []
    for _ in range(limit):
        m = ws.receive_json()
        seen.append(m)
        if m["type"] == kind:
            return m, seen
    raise AssertionError(f"no {kind!r} in {[m['type'] for m in seen]}")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "lab.js" in page.text
    assert client.get("/static/lab.js").status_code == 200
    assert client.get("/static/../session.py").status_code == 404


def test_a_session_plays_and_survives_bad_input(client):
    with client.websocket_connect("/ws") as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and "wasserstein" in hello["options"]["objectives"]
        assert _until(ws, "frame")[0]["step"] == 0
        for bad in ("{oops", '{"type": "settings", "settings": {"lr_g": NaN}}', '{"type": "fly"}'):
            ws.send_text(bad)
            assert _until(ws, "error")[0]["message"]
        ws.send_json({"type": "settings", "settings": {"steps_per_update": 5}})
        assert _until(ws, "state")[0]["settings"]["steps_per_update"] == 5
        ws.send_json({"type": "play"})
        steps = [_until(ws, "frame")[0]["step"] for _ in range(4)]
        assert steps == sorted(steps) and steps[-1] >= 15 and len(set(steps)) >= 3
        ws.send_json({"type": "settings", "settings": {"objective": "wasserstein"}})
        state = _until(ws, "state")[0]
        assert state["settings"]["objective"] == "wasserstein" and state["reset"]
        ws.send_json({"type": "pause"})
        _until(ws, "state")
        ws.send_json({"type": "export"})
        assert "name: wasserstein" in _until(ws, "recipe")[0]["yaml"]


def test_a_flood_of_messages_is_dropped_and_told(client):
    with client.websocket_connect("/ws") as ws:
        _until(ws, "frame")
        ws.send_json({"type": "settings", "settings": {"steps_per_update": 200}})
        ws.send_json({"type": "play"})
        for _ in range(INBOX * 5):
            ws.send_text('{"type": "export"}')
        msg, seen = _until(ws, "error", limit=2000)
        assert "too many messages" in msg["message"]
        ws.send_json({"type": "pause"})
        ws.send_json({"type": "step", "n": 1})
        _, seen = _until(ws, "frame", limit=2000)  # still serving


def test_two_tabs_train_independently(client):
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        _until(a, "frame")
        _until(b, "frame")
        a.send_json({"type": "step", "n": 7})
        b.send_json({"type": "settings", "settings": {"dataset": "grid"}})
        assert _until(a, "frame")[0]["step"] == 7
        state = _until(b, "state")[0]
        assert state["settings"]["dataset"] == "grid" and state["step"] == 0
        a.send_json({"type": "step", "n": 1})
        assert _until(a, "frame")[0]["step"] == 8


def test_a_lab_session_writes_nothing_to_disk_and_its_trainer_refuses_to_save(client, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with client.websocket_connect("/ws") as ws:
        _until(ws, "frame")
        ws.send_json({"type": "step", "n": 1})
        _until(ws, "frame")
    assert not any(tmp_path.iterdir())  # no run folder, temporary or not: Trainer(recipe, None)
    s = LabSession()
    assert s.trainer is not None
    with pytest.raises(ValueError, match="without a run directory"):
        s.trainer.save_checkpoint()
    s.close()
    assert s.trainer is None and not any(tmp_path.iterdir())


# -- the command ---------------------------------------------------------------------------------------
def test_the_command_binds_to_this_machine_by_default_and_refuses_a_bad_port(capsys):
    from gankit.cli import build_parser, main

    args = build_parser().parse_args(["lab"])
    assert (args.host, args.port, args.no_browser) == ("127.0.0.1", 8765, False)
    assert main(["lab", "--port", "70000", "--no-browser"]) == 2
    assert "--port 70000 is not a port number" in capsys.readouterr().out


def test_a_nan_in_a_tab_is_reported_and_a_new_game_recovers(monkeypatch):
    import gankit.lab.server as server

    class Poisoned(LabSession):
        """Seed 13's D turns NaN on its first step: a training that diverges, on demand."""

        def advance(self, n):
            if self.settings.seed == 13:
                with torch.no_grad():
                    next(self.trainer.D.parameters()).fill_(float("nan"))
            super().advance(n)

    monkeypatch.setattr(server, "LabSession", Poisoned)
    with TestClient(create_app()) as c, c.websocket_connect("/ws") as ws:
        _until(ws, "frame")
        ws.send_json({"type": "settings", "settings": {"seed": 13}})
        _until(ws, "frame")
        ws.send_json({"type": "play"})
        state, _ = _until(ws, "state")
        while state["status"] != "stopped":
            state, _ = _until(ws, "state")
        assert "NaN" in state["message"] and not state["playing"]
        json.dumps(_until(ws, "frame")[0], allow_nan=False)
        ws.send_json({"type": "play"})
        assert "stopped on a NaN" in _until(ws, "error")[0]["message"]
        ws.send_json({"type": "settings", "settings": {"seed": 0}})
        assert _until(ws, "state")[0]["status"] == "paused"
        assert _until(ws, "frame")[0]["step"] == 0  # the new game's first frame
        ws.send_json({"type": "step", "n": 3})
        assert _until(ws, "frame")[0]["step"] == 3


def test_gankit_lab_serves_the_page_until_stopped():
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-c", "from gankit.cli import main; main()", "lab", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        for _ in range(100):  # the line is printed just before uvicorn binds
            try:
                page = urllib.request.urlopen(url.group(0), timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert "gankit lab" in page and "/static/lab.js" in page
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_a_tab_closed_mid_update_ends_its_session_without_an_error_reply():
    """CI once logged "Exception in ASGI application": the socket closed while a frame was being
    sent, and the failure path tried to send the page an error on the closed socket."""
    from gankit.lab.server import Connection

    class Closed:
        sent: list = []

        async def send_json(self, message):
            self.sent.append(message)
            raise RuntimeError('Cannot call "send" once a close message has been sent.')

    ws = Closed()
    conn = Connection(ws)
    conn.session = LabSession()
    conn.session.playing = True
    with pytest.raises(WebSocketDisconnect):
        asyncio.run(conn.update())
    assert [m["type"] for m in ws.sent] == ["frame"]  # no error, no state after the socket closed
    with pytest.raises(WebSocketDisconnect):
        asyncio.run(conn.handle('{"type": "pause"}'))
    assert [m["type"] for m in ws.sent] == ["frame", "state"]
    conn.session.close()
