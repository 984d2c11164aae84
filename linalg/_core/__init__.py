"""Machinery shared by every family: namespaces, engines, configuration,
operators, validation, results and random streams. Knows no family."""
