"""The storage node: fragment archives on disk, a SQLite index, the internal HTTP API."""
