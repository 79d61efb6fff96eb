"""The lock files pin every dependency pyproject.toml declares, at a version it allows.

CI, `make` and the Dockerfile install from the locks only; a dependency added to
pyproject.toml without `make lock` would be missing on a fresh machine.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)")


def _pins(lock: Path) -> dict[str, str]:
    """``name -> version``; fails when a pin carries no sha256 hash."""
    pins: dict[str, str] = {}
    hashed: dict[str, bool] = {}
    current = None
    for line in lock.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1).split("[")[0])
            pins[current] = match.group(2)
            hashed[current] = False
        if current and "--hash=sha256:" in line:
            hashed[current] = True
    unhashed = sorted(name for name, ok in hashed.items() if not ok)
    assert not unhashed, f"pins without a hash in {lock.name}: {unhashed}"
    return pins


def _declared(extra: str | None) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    if extra:
        names += project["optional-dependencies"][extra]
    return [Requirement(r) for r in names]


@pytest.mark.parametrize(("lock", "extra"), [("prod.txt", None), ("dev.txt", "dev")])
def test_lock_pins_every_declared_dependency(lock, extra):
    path = ROOT / "requirements" / lock
    pins = _pins(path)
    assert len(pins) > 20
    problems = []
    for requirement in _declared(extra):
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name}: not in {lock} (run `make lock`)")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} does not satisfy {requirement}")
    assert not problems, "\n".join(problems)


def test_the_image_installs_from_the_lock():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "--require-hashes -r requirements/prod.txt" in dockerfile
    assert "--no-deps ." in dockerfile


@pytest.mark.parametrize("side", ["tools", "thumbor"])
def test_side_venv_locks_pin_what_their_inputs_ask_for(side):
    """The checkers' and thumbor's venvs install from hash-pinned locks of their ``.in``."""
    pins = _pins(ROOT / "requirements" / f"{side}.txt")
    asked = [
        Requirement(line.split("#")[0].strip())
        for line in (ROOT / "requirements" / f"{side}.in").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert asked
    for requirement in asked:
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name}: not in {side}.txt (run `make lock`)"
        assert requirement.specifier.contains(pinned, prereleases=True), (requirement, pinned)
