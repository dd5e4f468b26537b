"""Defaults, overridable from the environment."""

PORT = 8080
HOST = "127.0.0.1"
