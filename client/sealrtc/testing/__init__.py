"""Helpers for tests and benchmarks: a private Janus to run locally (``janus_server``) and
measurements on decoded media (``analysis``). The agents and the CLI never import this package.
"""
