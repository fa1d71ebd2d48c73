"""Routers of the HTTP API, one module per concern; ``api.app`` wires them together."""
