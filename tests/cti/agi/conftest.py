"""Fixtures for the FastAGI server tests; the fake Asterisk is in tests/support/fake_agi.py."""

from support.agi_fixtures import connect_fake, make_server

__all__ = ["connect_fake", "make_server"]
