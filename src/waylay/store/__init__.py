"""The flow store: flows on disk in SQLite (schema, rows, the writer thread, reading)."""
