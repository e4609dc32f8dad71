"""The one source of femfreq's version (read by pyproject and the result files)."""

__version__ = "0.1.0"
