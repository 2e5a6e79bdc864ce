"""The README keeps its promises: its links open files of this repository, and every guarantee it
makes names a test that exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def _links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_readme_links_stay_inside_the_repository():
    local = [t for t in _links(README) if not t.startswith(("http://", "https://", "#", "mailto:"))]
    assert local, "the README links to its tests and pictures"
    for target in local:
        path = (REPO / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO), f"README links outside the repository: {target}"
        assert path.exists(), f"README links to a missing file: {target}"


def test_every_guarantee_names_a_test_that_exists():
    section = README.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", section)
    assert len(named) >= 10, "each guarantee is backed by a named test"
    for path, test in named:
        source = (REPO / path).read_text()
        assert re.search(rf"^def {test}\(", source, re.M), f"{path}::{test} named in the Guarantees does not exist"
