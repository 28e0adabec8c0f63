"""The ground every other package stands on: the error tree, the typed event bus, the AMI and
FastAGI protocol layers, the live call model, health and metrics primitives.

It imports nothing above it (see docs/architecture.md and the import contract in
pyproject.toml): the domains (``ivr``, ``acd``, ``crm_bridge``, ``agent_console``) build on it,
and ``app`` wires them together.
"""

__version__ = "0.1.0"
