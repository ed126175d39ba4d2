"""Helpers to run real components locally for tests and benchmarks (a private Janus)."""
