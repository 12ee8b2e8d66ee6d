"""The package version: one place, read by the build (pyproject.toml), the facade and `masterocr --version`."""

__version__ = "0.1.0"
