"""gankit lab in a real browser: headless Chromium driven by Selenium (Debian's chromium and
chromium-driver, installed by .ci/run) against the lab's server on a free port."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
import uvicorn

from gankit.cli import main
from gankit.lab.cli import free_port
from gankit.lab.server import create_app

selenium = pytest.importorskip("selenium")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow

# what #plane shows, read back from the canvas: the number of distinct colours among sampled
# pixels and a checksum of all of them
CANVAS = """
const c = document.getElementById(arguments[0]);
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
const colours = new Set(); let sum = 0;
for (let i = 0; i < d.length; i += 4) {
  sum = (sum * 31 + d[i] * 7 + d[i + 1] * 13 + d[i + 2]) % 1000000007;
  if (i % 64 === 0) colours.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
}
return [colours.size, sum];
"""


@pytest.fixture(scope="module")
def server():
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "the lab's server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(chromium, tmp_path):
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        if os.environ.get("GANKIT_REQUIRE_CHROMIUM"):
            pytest.fail("GANKIT_REQUIRE_CHROMIUM is set but no chromedriver is installed (chromium-driver)")
        pytest.skip("no chromedriver: install Debian's chromium-driver package to run this check")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for flag in [*chromium[1:], f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def _wait(driver, script, timeout=60, what=""):
    """Until the page's ``script`` (a JS expression) is truthy; its value."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(f"return {script}"))
    except Exception as err:
        state = driver.execute_script(
            "return window.lab && {step: lab.step, status: lab.status, error: lab.lastError, frames: lab.frames}"
        )
        raise AssertionError(f"waited {timeout}s for {what or script}; page: {state}") from err


def test_the_lab_trains_draws_and_takes_commands_in_chromium(server, browser, tmp_path):
    d = browser
    d.get(server)
    _wait(d, "window.lab && lab.connected && lab.frames > 0", what="the first frame")
    colours, before = d.execute_script(CANVAS, "plane")
    assert colours > 20  # a heat map with real and generated points, not a blank canvas

    d.find_element(By.ID, "play").click()
    _wait(d, "lab.step > 200", what="200 steps")
    assert d.find_element(By.ID, "status").text == "playing"
    assert int(d.find_element(By.ID, "step-counter").text) > 200
    _, during = d.execute_script(CANVAS, "plane")
    _wait(d, f"lab.step > {d.execute_script('return lab.step') + 50}")
    _, later = d.execute_script(CANVAS, "plane")
    assert len({before, during, later}) == 3  # D's surface and the points move as it trains

    # the server's state reports the objective the page switched to, and training goes on
    Select(d.find_element(By.ID, "objective")).select_by_value("wasserstein")
    _wait(d, "lab.settings.objective === 'wasserstein'", what="the server's state")
    _wait(d, "lab.step > 30", what="training with the new objective")

    # bad input gets a clear error on the page and the training goes on
    lr = d.find_element(By.ID, "lr-g")
    lr.clear()
    lr.send_keys("1e9")
    lr.send_keys("\t")
    # (clear() already sends lr_g = "", refused too; frames arriving meanwhile must not clear the error)
    _wait(d, "lab.lastError && lab.lastError.includes('less than or equal to 1')", what="the lr error")
    assert "lr_g" in d.find_element(By.ID, "error").text
    step = d.execute_script("return lab.step")
    _wait(d, f"lab.step > {step + 20}", what="training after the error")

    # draw a dataset with the mouse: a stroke across the plane
    d.find_element(By.ID, "pause").click()
    _wait(d, "lab.status === 'paused'")
    plane = d.find_element(By.ID, "plane")
    ActionChains(d).move_to_element_with_offset(plane, -120, -60).click_and_hold().move_by_offset(
        80, 30
    ).move_by_offset(80, 30).move_by_offset(60, 20).release().perform()
    _wait(d, "lab.settings.dataset === 'drawn' && lab.settings.points.length >= 3", what="the drawn dataset")
    d.find_element(By.ID, "step").click()
    _wait(d, "lab.step === 1", what="a step on the drawn data")

    # export: a recipe that `gankit train` accepts
    d.find_element(By.ID, "export").click()
    text = _wait(d, "lab.recipe", what="the exported recipe")
    assert "name: drawn" in text and "name: wasserstein" in text
    assert d.find_element(By.ID, "recipe").text.strip().startswith("# gankit lab")
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    assert main(["train", str(path), "schedule.steps=5", "--out", str(tmp_path / "run")]) == 0

    # a second tab is a session of its own
    first = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(server)
    _wait(d, "window.lab && lab.connected && lab.frames > 0", what="the second tab")
    assert d.execute_script("return [lab.step, lab.settings.dataset]") == [0, "ring"]
    d.find_element(By.ID, "step").click()
    _wait(d, "lab.step === 1")
    d.switch_to.window(first)
    assert d.execute_script("return [lab.step, lab.settings.dataset]") == [1, "drawn"]

    # the Dirac-GAN tab plots the trajectory of the chosen method
    d.find_element(By.ID, "tab-dirac").click()
    Select(d.find_element(By.ID, "dirac-method")).select_by_value("r1")
    d.find_element(By.ID, "dirac-run").click()
    _wait(d, "lab.dirac && lab.dirac.method === 'r1'", what="the Dirac trajectory")
    assert "converges" in d.find_element(By.ID, "dirac-info").text
    assert d.execute_script(CANVAS, "dirac-canvas")[0] > 2
