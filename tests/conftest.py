import os
import shutil
from pathlib import Path

import pytest
import torch

# Tests run on CPU with the thread count CI has, so bit-exact comparisons mean the same thing everywhere.
# Under pytest-xdist (the README's `-n 2`) the workers share those cores: one thread each, since two
# workers with two threads apiece would oversubscribe CI's two cores.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1) // _WORKERS))

REPO = Path(__file__).resolve().parents[1]

# Headless Chromium on a machine with a closed network (the report's and the lab's browser tests)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> list[str]:
    """Chromium's path and its headless flags; without one the test skips, or fails where CI
    installed it on purpose (GANKIT_REQUIRE_CHROMIUM)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        if os.environ.get("GANKIT_REQUIRE_CHROMIUM"):
            pytest.fail("GANKIT_REQUIRE_CHROMIUM is set but no chromium is installed")
        pytest.skip("no chromium: install Debian's chromium package to run this check")
    return [browser, *CHROMIUM_FLAGS]


def shared_data() -> Path | None:
    env = os.environ.get("GANKIT_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture
def mnist_dir() -> Path:
    d = shared_data()
    if d is None or not (d / "mnist").is_dir():
        pytest.skip("shared/data/mnist is not available")
    return d / "mnist"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    # Classifiers and reference statistics cached by tests go to a per-session folder, never to the
    # user's ~/.cache/gankit; within the session, a classifier trained once is reused.
    old = os.environ.get("GANKIT_CACHE")
    os.environ["GANKIT_CACHE"] = str(tmp_path_factory.mktemp("gankit-cache"))
    yield
    if old is None:
        os.environ.pop("GANKIT_CACHE", None)
    else:
        os.environ["GANKIT_CACHE"] = old
