"""Scraping: the vendor registry, one HTTP client, extractors and the crawler."""
