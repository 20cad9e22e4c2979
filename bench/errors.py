"""The one error the benchmark raises: a measurement that cannot be trusted or made."""


class BenchError(Exception):
    """Something the benchmark needs failed; the message says what, for a person."""
