"""Copy deploy/run-queue.yaml (the one source of the run queue) into the files that
deployments read: deploy/dagster.yaml (compose, ECS) and deploy/helm/values.yaml
(``additionalInstanceConfig``, which the Dagster chart puts into its instance config).

Each copy sits between ``# BEGIN run-queue`` and ``# END run-queue`` lines. With
``--check`` nothing is written and the exit code says whether a copy is stale.
Run by ``make deploy-config``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
SOURCE = DEPLOY / "run-queue.yaml"
TARGETS = {DEPLOY / "dagster.yaml": 0, DEPLOY / "helm" / "values.yaml": 2}  # file -> indent
BEGIN = "# BEGIN run-queue (generated from deploy/run-queue.yaml: make deploy-config)"
END = "# END run-queue"


def source_block() -> list[str]:
    """The source without its header comment."""
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    return lines[start:]


def synced(text: str, indent: int) -> str:
    pad = " " * indent
    body = "\n".join(pad + line if line else line for line in source_block())
    pattern = re.compile(rf"^{re.escape(pad + BEGIN)}\n.*?^{re.escape(pad + END)}$", re.S | re.M)
    if not pattern.search(text):
        raise SystemExit(f"no '{BEGIN}' ... '{END}' section found")
    return pattern.sub(lambda _: f"{pad}{BEGIN}\n{body}\n{pad}{END}", text)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, indent in TARGETS.items():
        text = path.read_text(encoding="utf-8")
        new = synced(text, indent)
        if new != text:
            stale.append(path.relative_to(DEPLOY.parent))
            if not check:
                path.write_text(new, encoding="utf-8")
    if stale and check:
        print(f"stale run queue in {', '.join(map(str, stale))}: run make deploy-config")
        return 1
    for path in stale:
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
