"""The top floor: the `welfare` command, demo, sample data, local servers and benchmarks.

No product package imports anything from here (the import-linter contract in pyproject.toml).
"""

from broker.const import SOFTWARE_VERSION as __version__

__all__ = ["__version__"]
