"""The Asterisk sandbox: a Debian root with Asterisk 22, built once per machine, in which
named instances (``demo``, ``test``...) run side by side on their own ports.

``Sandbox(SandboxConfig(...))`` is what the CLI (``ctiserver pbx build|up|down|status|cli``)
and the test fixtures use. See ``sandbox.py`` for how instances are run and ``build.py`` for
how the root is made.
"""

from cti.pbx.build import EXISTING_ROOT_HINT, Stamp, read_stamp
from cti.pbx.config import DEFAULT_CACHE_DIR, AgentPhone, InstanceLayout, SandboxConfig
from cti.pbx.mirror import detect_host_mirror
from cti.pbx.render import render_template
from cti.pbx.sandbox import Sandbox, SandboxStatus

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
