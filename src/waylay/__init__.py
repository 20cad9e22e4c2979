"""waylay: an intercepting HTTP/HTTPS proxy."""

__version__ = "0.1.0"
