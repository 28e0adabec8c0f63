"""Server settings: loaded once, layered, validated, frozen, then passed in explicitly.

Layers, later ones win:
  1. defaults (the field defaults below: a local sandbox Asterisk and the demo configuration);
  2. the YAML file (``--config``, else ``config/ctiserver.yaml`` under the working directory
     when it exists);
  3. the environment: ``CTISERVER__SECTION__KEY=value`` (e.g. ``CTISERVER__AMI__SECRET``);
  4. the command line: ``--set section.key=value``.

Values from layers 3 and 4 are text, converted to the setting's type by the same validation as
the file (``8080`` for a port, ``true`` for a flag); a secret of digits stays those digits (a
YAML reading would turn ``0123`` into 83). Every
error names where the value came from (file and line, variable, or option) and the dotted key.
No other module reads the environment: ``load_settings`` is given it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from crm_bridge.external import ExternalCrmSettings
from crm_bridge.webhooks import WebhookSettings
from cti.config import config_error, read_yaml, trap_note
from cti.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "AcdSettings",
    "AgentPhoneSettings",
    "AgiSettings",
    "AmiSettings",
    "ConsoleSettings",
    "CrmSettings",
    "HttpSettings",
    "IvrSettings",
    "LogSettings",
    "PbxSettings",
    "Settings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = Path("config/ctiserver.yaml")
_ENV_PREFIX = "CTISERVER__"


class _Section(BaseModel):
    # hide_input_in_errors: the ValidationError is chained to the ConfigError we raise, and its
    # text would otherwise quote the rejected value, which may be a secret (a misspelt
    # "secrte: ..." or a password given where a section was expected).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


Port = Field(ge=1, le=65535)


def _check_host(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("expected a host name or IP address")
    return value


class AmiSettings(_Section):
    """How to reach Asterisk's manager interface (manager.conf)."""

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = Field("ctiserver", min_length=1)
    secret: SecretStr = SecretStr("ctiserver-demo-secret")
    events: str = Field("on", description="login Events: mask: on, off, or a list like call,agent")
    connect_timeout: float = Field(5.0, gt=0)
    action_timeout: float = Field(10.0, gt=0)
    ping_interval: float = Field(20.0, gt=0)
    ping_timeout: float = Field(5.0, gt=0)
    reconnect_min: float = Field(0.5, gt=0)
    reconnect_max: float = Field(30.0, gt=0)

    _host = field_validator("host")(_check_host)


class AgiSettings(_Section):
    """Where the FastAGI server listens (the dialplan's ``AGI(agi://host:port/route)``)."""

    host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    max_sessions: int = Field(500, ge=1)
    env_timeout: float = Field(5.0, gt=0)

    _host = field_validator("host")(_check_host)


class HttpSettings(_Section):
    """The HTTP server: health, metrics, and later the consoles."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    origins: tuple[str, ...] = Field(
        (),
        description="other origins (scheme://host:port) allowed to send state-changing "
        "requests and open websockets, besides the console's own",
    )

    _host = field_validator("host")(_check_host)


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class AgentPhoneSettings(_Section):
    """An agent's phone: a PJSIP endpoint in the sandbox."""

    endpoint: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    password: SecretStr
    # A static contact (e.g. "sip:agent1001@127.0.0.1:5081") for phones that do not register,
    # such as SIPp in tests. Phones that register leave it empty.
    contact: str | None = None


class PbxSettings(_Section):
    """The Asterisk sandbox the project builds and runs (``ctiserver pbx ...``).

    Unused when the server is pointed at an existing Asterisk (set ``ami.host``/``ami.port``
    and add the manager user and dialplan from the README there).
    """

    cache_dir: Path = Path("~/.cache/ctiserver")
    root: Path | None = Field(
        None, description="an existing Asterisk root to use instead of building one"
    )
    instance: str = Field("demo", pattern=r"^[a-z0-9_-]{1,32}$")
    mirror: str | None = None
    suite: str = "sid"
    sip_port: int = Field(5060, ge=1, le=65535)
    rtp_start: int = Field(10000, ge=1024, le=65535)
    rtp_end: int = Field(10999, ge=1024, le=65535)
    fallback_timeout: int = Field(
        300, ge=5, description="seconds a caller waits in the fallback queue when we are down"
    )
    template_dir: Path | None = Field(
        None, description="Asterisk config templates; default: <config_dir>/asterisk"
    )
    agents: tuple[AgentPhoneSettings, ...] = tuple(
        AgentPhoneSettings(endpoint=f"agent{n}", password=SecretStr(f"demo-{n}"))
        for n in range(1001, 1006)
    )


class IvrSettings(_Section):
    """IVR flows (``ivr/``) and the interim services they use until the CRM and ACD land.

    Relative paths are relative to ``config_dir``.
    """

    flows: tuple[Path, ...] = (Path("ivr"),)
    customers: Path | None = Field(
        Path("customers.yaml"), description="demo customer records for lookups (until the CRM)"
    )
    sounds_dir: Path | None = Field(
        None, description="Asterisk sounds checked by check-config; default: the sandbox's"
    )
    tts_dir: Path | None = Field(
        None, description="where TTS prompts are written; default: the sandbox instance's"
    )
    tts_asterisk_dir: str | None = Field(
        None, description="the same folder as Asterisk sees it; default: the sandbox's"
    )
    tts_voice: str = Field("en", pattern=r"^[A-Za-z0-9_+-]{1,40}$")
    queue_timeout: int = Field(
        300, ge=5, description="seconds in an app_queue queue before the flow's on_failure"
    )


class AcdSettings(_Section):
    """The ACD (``acd/``): queues, skills, agents and reasons in their own file.

    Relative paths are relative to ``config_dir``.
    """

    enabled: bool = Field(
        True, description="false: the IVR's queue nodes use Asterisk's app_queue instead"
    )
    config: Path = Field(Path("acd.yaml"), description="queues, skills, agents, reasons")
    state_dir: Path | None = Field(
        None,
        description="agents' states and callbacks; default: ~/.local/state/ctiserver/<instance>",
    )


class ConsoleSettings(_Section):
    """The agent console and supervisor monitor (``agent_console/``); they need the CRM store
    (accounts live there) and the ACD. Relative paths are relative to ``config_dir``."""

    enabled: bool = Field(True, description="false: no console pages, no /api/ console routes")
    config: Path = Field(
        Path("console.yaml"), description="wrap-up codes, alert thresholds, supervisors' phones"
    )
    heartbeat: float = Field(
        20.0, gt=0, description="seconds between websocket pings (a silent page is closed)"
    )
    outbound_context: str = Field(
        "sandbox-pstn",
        pattern=r"^[A-Za-z0-9_-]{1,80}$",
        description="dialplan context click-to-dial and transfers to a number dial in",
    )
    queue_size: int = Field(
        256, ge=8, description="frames a page may fall behind before it is dropped and resyncs"
    )


class CrmSettings(_Section):
    """The CRM store (``crm_bridge/``): customers and the interaction log."""

    enabled: bool = Field(True, description="false: no interaction log is kept")
    url: str | None = Field(
        None,
        description="database URL; default: sqlite+aiosqlite:///~/.local/state/ctiserver/"
        "<instance>/crm.sqlite3; PostgreSQL: postgresql+asyncpg://user:password@host/db",
    )
    migrate_on_start: bool = Field(True, description="bring the schema up to date at start")
    max_batch: int = Field(500, ge=1, le=10_000, description="events per transaction, at most")
    max_buffer: int = Field(
        100_000, ge=100, description="events kept in memory while the database is away"
    )
    external: ExternalCrmSettings | None = Field(
        None, description="an external CRM for lookups and write-back (crm_bridge/external.py)"
    )
    webhooks: list[WebhookSettings] = Field(
        default_factory=list,
        description="URLs that receive interaction events, signed and retried "
        "(crm_bridge/webhooks.py)",
    )


class Settings(_Section):
    ami: AmiSettings = AmiSettings()
    agi: AgiSettings = AgiSettings()
    http: HttpSettings = HttpSettings()
    log: LogSettings = LogSettings()
    pbx: PbxSettings = PbxSettings()
    ivr: IvrSettings = IvrSettings()
    acd: AcdSettings = AcdSettings()
    crm: CrmSettings = CrmSettings()
    console: ConsoleSettings = ConsoleSettings()
    # Where the config files were read from; relative paths in later sections resolve here.
    config_dir: Path = Path("config")


def load_settings(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Sequence[str] = (),
) -> Settings:
    """Build the settings from the layers above; raise ``ConfigError`` naming file and key."""
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    traps: dict[tuple[str, ...], str] = {}  # values YAML 1.1 rewrote (no -> false, ~ -> null)
    source = "defaults"
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        source = str(path)
        data = _read_yaml(path, origins, traps)
        data.setdefault("config_dir", str(path.parent))
    for name, raw in sorted((environ or {}).items()):
        if name.startswith(_ENV_PREFIX):
            keys = tuple(k.lower() for k in name[len(_ENV_PREFIX) :].split("__"))
            _assign(data, keys, raw, f"environment variable {name}")
            origins[keys] = f"environment variable {name}"
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected KEY=VALUE, got {item!r}", source="--set")
        keys = tuple(key.strip().split("."))
        _assign(data, keys, raw, f"--set {item}")
        origins[keys] = f"--set {key}"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, origins, source, traps) from exc


def _read_yaml(
    path: Path, origins: dict[tuple[str, ...], str], traps: dict[tuple[str, ...], str]
) -> dict[str, Any]:
    document, problems = read_yaml(path)
    if problems:
        first = problems[0]
        if document is None or len(problems) == 1:
            error = ConfigError(first.message, source=first.origin, key=first.where or None)
            raise error from first.cause
        raise config_error(problems, "settings file")
    assert document is not None  # no problems: a document
    if document.data is None:
        return {}
    if not isinstance(document.data, dict):
        raise ConfigError("expected a mapping of sections at the top level", source=str(path))
    for keys, line in document.lines.items():
        origins[keys] = f"{path}:{line}"
    traps.update(document.traps)
    return document.data


def _assign(data: dict[str, Any], keys: tuple[str, ...], value: Any, origin: str) -> None:
    target = data
    for key in keys[:-1]:
        nxt = target.setdefault(key, {})
        if not isinstance(nxt, dict):
            raise ConfigError(
                f"{'.'.join(keys)} goes below a value that is not a section", source=origin
            )
        target = nxt
    target[keys[-1]] = value


def _translate(
    exc: ValidationError,
    origins: dict[tuple[str, ...], str],
    default: str,
    traps: Mapping[tuple[str, ...], str],
) -> ConfigError:
    problems: list[tuple[str, str, str]] = []
    for err in exc.errors():
        loc = tuple(str(part) for part in err["loc"])
        # The nearest key we know a place for: the value itself, else a key below it (a
        # variable or --set that created the value by going below it, as
        # CTISERVER__AMI__PORT__X does), else its enclosing section.
        below = [where for keys, where in origins.items() if keys[: len(loc)] == loc]
        source = origins.get(loc) or (below[-1] if below else None)
        if source is None:
            source = next(
                (origins[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in origins),
                default,
            )
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and section)"
        note = trap_note(traps, loc, message) if source.startswith(default) else ""
        if note:
            message = f"{message}; {note}"
        problems.append((source, ".".join(loc), message))
    if len(problems) == 1:
        source, key, message = problems[0]
        return ConfigError(message, source=source, key=key)
    lines = "\n  ".join(f"{s}: {k}: {m}" for s, k, m in problems)
    return ConfigError(f"{len(problems)} problems:\n  {lines}")
