"""Browser tests: Playwright (async API) driving Debian's headless chromium against a live local stack."""
