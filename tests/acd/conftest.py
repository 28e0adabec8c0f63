"""The ACD's FastAGI route (``acd-wait``) is tested against the fake Asterisk of the AGI tests."""

from support.agi_fixtures import connect_fake, make_server

__all__ = ["connect_fake", "make_server"]
