"""Settings -> the objects that serve them, for the pieces the CLI and the server share.

Kept apart from ``app.server`` so ``ctiserver check-config`` and ``ctiserver pbx`` can build
exactly what the server would (same sandbox instance, same IVR loader) without starting it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from acd.asterisk import AcdFeed, AsteriskPbx
from acd.config import AcdConfig, load_acd_config
from acd.gateway import AcdCallbacks, AcdQueueGateway
from acd.service import AcdService
from acd.store import FileStore
from app.settings import Settings
from cti.ami import AmiClient
from ivr.catalog import SoundCatalog
from ivr.handler import IvrHandler
from ivr.loader import load_ivr_config
from ivr.model import IvrConfig
from ivr.model import Queue as IvrQueue
from ivr.ports import CallbackStore, CustomerDirectory, QueueGateway
from ivr.prompts import AsteriskPrompts
from ivr.registry import FlowRegistry
from ivr.services import AppQueueGateway, InMemoryCustomers, MemoryCallbacks
from ivr.tts import TtsRenderer
from sandbox import AgentPhone, InstanceLayout, SandboxConfig

__all__ = [
    "AcdParts",
    "IvrParts",
    "acd_config_path",
    "acd_state_dir",
    "build_acd",
    "build_ivr",
    "crm_url",
    "customers_file",
    "ivr_loader",
    "ivr_paths",
    "queue_problems",
    "sandbox_config",
    "sandbox_layout",
    "sound_catalog",
    "state_root",
]

# Inside the Debian root: the sound folder Asterisk's default language plays from.
_ROOT_SOUNDS = Path("usr/share/asterisk/sounds/en")


def sandbox_config(settings: Settings) -> SandboxConfig:
    """The sandbox instance that serves these settings: same AMI user, ports and agents."""
    pbx = settings.pbx
    templates = pbx.template_dir or settings.config_dir / "asterisk"
    return SandboxConfig(
        ami_secret=settings.ami.secret.get_secret_value(),
        ami_username=settings.ami.username,
        ami_port=settings.ami.port,
        cache_dir=pbx.cache_dir.expanduser(),
        root=pbx.root.expanduser() if pbx.root else None,
        instance=pbx.instance,
        mirror=pbx.mirror,
        suite=pbx.suite,
        sip_port=pbx.sip_port,
        rtp_start=pbx.rtp_start,
        rtp_end=pbx.rtp_end,
        # Asterisk dials the address we listen on; a wildcard listener is reached on loopback.
        agi_host="127.0.0.1" if settings.agi.host in ("0.0.0.0", "::") else settings.agi.host,
        agi_port=settings.agi.port,
        agents=tuple(
            AgentPhone(a.endpoint, a.password.get_secret_value(), contact=a.contact)
            for a in pbx.agents
        ),
        fallback_timeout=pbx.fallback_timeout,
        # None lets the sandbox use the repository's templates (the default config_dir).
        template_dir=templates if (templates / "asterisk.conf").is_file() else None,
    )


def sandbox_layout(settings: Settings) -> InstanceLayout:
    """Where the sandbox instance keeps its files; needs no valid ports (unlike the full
    ``sandbox_config``), so a server on ephemeral ports can still find its TTS folder."""
    pbx = settings.pbx
    root = pbx.root.expanduser() if pbx.root else pbx.cache_dir.expanduser() / "asterisk-root"
    return InstanceLayout(root=root, instance=pbx.instance)


def _relative(settings: Settings, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else settings.config_dir / path


def ivr_paths(settings: Settings) -> list[Path]:
    return [_relative(settings, p) for p in settings.ivr.flows]


def sound_catalog(settings: Settings) -> SoundCatalog | None:
    """The sounds ``sound:`` prompts are checked against: ``ivr.sounds_dir``, else the
    sandbox root's when it is built; None (not checked) when neither exists."""
    if settings.ivr.sounds_dir is not None:
        return SoundCatalog.from_directory(_relative(settings, settings.ivr.sounds_dir))
    root = sandbox_layout(settings).root
    if not (root / _ROOT_SOUNDS).parent.is_dir():
        return None
    return SoundCatalog.from_directory(root / _ROOT_SOUNDS, root=root)


def ivr_loader(settings: Settings) -> Callable[[], IvrConfig]:
    """Reads and validates the flows afresh on every call (the registry's reload)."""
    paths = ivr_paths(settings)

    def load() -> IvrConfig:
        return load_ivr_config(paths, catalog=sound_catalog(settings))

    return load


@dataclass(frozen=True)
class IvrParts:
    registry: FlowRegistry
    handler: IvrHandler
    queues: QueueGateway
    callbacks: CallbackStore
    tts: TtsRenderer
    prompts: AsteriskPrompts


def build_ivr(
    settings: Settings,
    *,
    clock: Callable[[], float],
    publish: Callable[[object], None],
    queues: QueueGateway | None = None,
    callbacks: CallbackStore | None = None,
    customers: CustomerDirectory | None = None,
) -> IvrParts:
    """The IVR; ``queues``/``callbacks`` are the ACD's (default: app_queue and a list),
    ``customers`` the CRM store's (default: ``ivr.customers`` read into memory)."""
    ivr = settings.ivr
    registry = FlowRegistry(ivr_loader(settings), publish=publish)
    layout = sandbox_layout(settings)
    tts = TtsRenderer(
        _relative(settings, ivr.tts_dir) if ivr.tts_dir else layout.tts_dir,
        ivr.tts_asterisk_dir or str(layout.tts_inner),
        voice=ivr.tts_voice,
    )
    if customers is None:
        customers = (
            InMemoryCustomers.from_yaml(_relative(settings, ivr.customers))
            if ivr.customers is not None
            else InMemoryCustomers(())
        )
    if queues is None:
        queues = AppQueueGateway(timeout=ivr.queue_timeout)
    if callbacks is None:
        callbacks = MemoryCallbacks()
    prompts = AsteriskPrompts(tts)
    handler = IvrHandler(
        registry,
        prompts=prompts,
        customers=customers,
        queues=queues,
        callbacks=callbacks,
        clock=clock,
        publish=publish,
    )
    return IvrParts(registry, handler, queues, callbacks, tts, prompts)


@dataclass(frozen=True)
class AcdParts:
    config: AcdConfig
    service: AcdService
    feed: AcdFeed
    gateway: AcdQueueGateway
    callbacks: AcdCallbacks


def acd_config_path(settings: Settings) -> Path:
    return _relative(settings, settings.acd.config)


def console_config_path(settings: Settings) -> Path:
    return _relative(settings, settings.console.config)


def state_root(settings: Settings) -> Path:
    """Where the server keeps its state unless told otherwise: one folder per instance."""
    return Path("~/.local/state/ctiserver").expanduser() / settings.pbx.instance


def acd_state_dir(settings: Settings) -> Path:
    if settings.acd.state_dir is not None:
        return _relative(settings, settings.acd.state_dir).expanduser()
    return state_root(settings)


def customers_file(settings: Settings) -> Path | None:
    """The customer records the server loads at start (the demo's), if any."""
    if settings.ivr.customers is None:
        return None
    return _relative(settings, settings.ivr.customers)


def crm_url(settings: Settings) -> str:
    """The CRM store's database URL (default: an SQLite file in the state folder)."""
    if settings.crm.url:
        return settings.crm.url
    return f"sqlite+aiosqlite:///{state_root(settings) / 'crm.sqlite3'}"


def queue_problems(ivr: IvrConfig, acd: AcdConfig) -> list[str]:
    """Where the IVR and the ACD configurations disagree: a queue node naming a queue the
    ACD does not have, or asking for a skill no configured agent has at that level."""
    problems: list[str] = []
    for flow in ivr.flows.values():
        for node in flow.nodes.values():
            queue = getattr(node, "queue", None)
            if not isinstance(queue, str):
                continue
            where = f"flow {flow.name}, node {node.id}"
            if queue not in acd.queues:
                known = ", ".join(sorted(acd.queues)) or "none"
                problems.append(f"{where}: no ACD queue {queue!r} (queues: {known})")
                continue
            if isinstance(node, IvrQueue):
                for skill, level in node.skills.items():
                    if not any(
                        queue in a.queues and a.skills.get(skill, 0) >= level
                        for a in acd.agents.values()
                    ):
                        problems.append(
                            f"{where}: no agent of queue {queue!r} has skill {skill} >= {level}"
                        )
    return problems


def build_acd(
    settings: Settings,
    ami: AmiClient,
    *,
    clock: Callable[[], float],
    publish: Callable[[object], None],
) -> AcdParts:
    """The ACD from its configuration file (an invalid one stops the start)."""
    config = load_acd_config(acd_config_path(settings))
    pbx = AsteriskPbx(
        ami,
        callback_dial_context=config.callbacks.dial_context,
        callback_ring=config.callbacks.ring_customer,
    )
    service = AcdService(
        config, pbx=pbx, store=FileStore(acd_state_dir(settings)), publish=publish, clock=clock
    )
    gateway = AcdQueueGateway(service, clock=clock)
    default_queue = next(iter(config.queues), None)
    callbacks = AcdCallbacks(service, default_queue=default_queue)
    return AcdParts(config, service, AcdFeed(service, ami), gateway, callbacks)
