"""Benchmarks for `make bench`: `python -m benchmarks [--only NAME ...] [--quick]`."""
