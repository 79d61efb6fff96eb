"""image_assets: vendor catalogs and uploads to CDN-hosted responsive images and clean catalog tables.

A plain-Python core (the ground floor: ``records``, ``layout``, ``formats``,
``failures``, ``retry``, ``progress``; then ``storage``, ``catalog``,
``imaging``/``scraping``/``cdn``, ``steps``, ``uploads``, ``demo``) wrapped by a
thin Dagster shell (``defs``, ``definitions``, ``cli``). The core never imports
dagster, so it can be tested and reused on its own; the layer rules are in
``pyproject.toml`` and run in ``make lint``.
"""

__version__ = "0.1.0"
