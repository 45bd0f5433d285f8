"""Developer tools run as modules: `python -m rova.tools.layers` (the import layers and any violation)."""
