"""``image-assets serve``: uvicorn's supervisor over the worker processes.

Kept apart from ``server`` so that the supervising process imports uvicorn and
nothing of the app (no Pillow, pydantic or SDK): it only starts and watches the
workers, and every megabyte it holds counts against the service's memory. The
configuration is checked first in a short-lived process, so a wrong setting ends
``serve`` with its one-line reason instead of workers failing one after another.
"""

from __future__ import annotations

import os
import subprocess
import sys


def serve(host: str, port: int, workers: int) -> int:
    """Serve until stopped; 2 when the configuration is refused before starting."""
    os.environ.setdefault("IMAGE_ASSETS_DELIVERY_URL", f"http://{host}:{port}")
    # Each worker shares the cores with the others (see server.default_renders).
    os.environ["IMAGE_ASSETS_DELIVERY_WORKERS"] = str(workers)
    check = subprocess.run(
        [sys.executable, "-m", "image_assets.delivery.server"], stdout=subprocess.DEVNULL
    )
    if check.returncode != 0:
        return 2  # the reason is already on stderr
    import uvicorn

    uvicorn.run(
        "image_assets.delivery.server:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # the app logs every request in the common log format
        log_config=None,
        server_header=False,
    )
    return 0
