"""Development and test tooling, never imported by the product's roles (only by ``app``'s
``pbx`` commands and demo, and by tests).

The Asterisk sandbox: a Debian root with Asterisk 22, built once per machine, in which
named instances (``demo``, ``test``...) run side by side on their own ports.

``Sandbox(SandboxConfig(...))`` is what the CLI (``ctiserver pbx build|up|down|status|cli``)
and the test fixtures use. See ``instances.py`` for how instances are run and ``build.py`` for
how the root is made.

``sipp.py`` plays callers and agent phones with SIPp; ``fake_ami.py`` is a scriptable stand-in
for Asterisk's manager interface.
"""

from sandbox.build import EXISTING_ROOT_HINT, Stamp, read_stamp
from sandbox.config import DEFAULT_CACHE_DIR, AgentPhone, InstanceLayout, SandboxConfig
from sandbox.instances import Sandbox, SandboxStatus
from sandbox.mirror import detect_host_mirror
from sandbox.render import render_template

__all__ = [
    "DEFAULT_CACHE_DIR",
    "EXISTING_ROOT_HINT",
    "AgentPhone",
    "InstanceLayout",
    "Sandbox",
    "SandboxConfig",
    "SandboxStatus",
    "Stamp",
    "detect_host_mirror",
    "read_stamp",
    "render_template",
]
