"""image_assets: vendor catalogs and uploads to CDN-hosted responsive images and clean catalog tables.

The package is a plain-Python core (``scraping``, ``imaging``, ``storage``, ``cdn``,
``catalog``, ``demo``) wrapped by a thin Dagster shell (``defs``, ``definitions``).
The core never imports dagster, so it can be tested and reused on its own.
"""

__version__ = "0.1.0"
