"""Smart Welfare: shared utilities, command line and demo."""

__version__ = "0.1.0"
