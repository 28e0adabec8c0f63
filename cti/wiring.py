"""Settings -> the objects that serve them, for the pieces the CLI and the server share.

Kept apart from ``cti.server`` so ``ctiserver check-config`` and ``ctiserver pbx`` can build
exactly what the server would (same sandbox instance, same IVR loader) without starting it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cti.pbx import AgentPhone, InstanceLayout, SandboxConfig
from cti.settings import Settings
from ivr.catalog import SoundCatalog
from ivr.handler import IvrHandler
from ivr.loader import load_ivr_config
from ivr.model import IvrConfig
from ivr.prompts import AsteriskPrompts
from ivr.registry import FlowRegistry
from ivr.services import AppQueueGateway, InMemoryCustomers, MemoryCallbacks
from ivr.tts import TtsRenderer

__all__ = [
    "IvrParts",
    "build_ivr",
    "ivr_loader",
    "ivr_paths",
    "sandbox_config",
    "sandbox_layout",
    "sound_catalog",
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
    queues: AppQueueGateway
    callbacks: MemoryCallbacks
    tts: TtsRenderer


def build_ivr(
    settings: Settings, *, clock: Callable[[], float], publish: Callable[[object], None]
) -> IvrParts:
    ivr = settings.ivr
    registry = FlowRegistry(ivr_loader(settings), publish=publish)
    layout = sandbox_layout(settings)
    tts = TtsRenderer(
        _relative(settings, ivr.tts_dir) if ivr.tts_dir else layout.tts_dir,
        ivr.tts_asterisk_dir or str(layout.tts_inner),
        voice=ivr.tts_voice,
    )
    customers = (
        InMemoryCustomers.from_yaml(_relative(settings, ivr.customers))
        if ivr.customers is not None
        else InMemoryCustomers(())
    )
    queues = AppQueueGateway(timeout=ivr.queue_timeout)
    callbacks = MemoryCallbacks()
    handler = IvrHandler(
        registry,
        prompts=AsteriskPrompts(tts),
        customers=customers,
        queues=queues,
        callbacks=callbacks,
        clock=clock,
        publish=publish,
    )
    return IvrParts(registry, handler, queues, callbacks, tts)
