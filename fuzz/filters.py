"""Fuzz target: the filter language's parser (waylay.filters), under atheris.

The input, decoded as UTF-8 (undecodable bytes replaced), is a filter expression. It parses
or raises FilterError with a column inside it, never another exception; what parses compiles
to SQL that SQLite runs, selecting exactly the flows ``matches`` accepts (the table tests'
flows, tests/test_filters.py). Run with ``make fuzz``.
"""

from __future__ import annotations

import sys
import warnings

import atheris

with atheris.instrument_imports(include=["waylay"]):
    from waylay.filters import FilterError, parse_filter

from tests.test_filters import FLOWS, open_database, python_ids, sql_ids, store

DATABASE = open_database()
store(DATABASE, FLOWS)


def test_one_input(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        parse_filter(text)
    except FilterError as error:
        assert 1 <= error.column <= len(text) + 1, error
        return
    assert sql_ids(DATABASE, text) == python_ids(FLOWS, text), text


def main() -> None:
    # A user's regex may draw FutureWarnings from re; waylay reports them its own way.
    warnings.simplefilter("ignore", FutureWarning)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
