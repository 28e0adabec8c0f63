"""A throwaway PostgreSQL cluster for the store's tests, started by the suite itself.

The CRM store must pass the same tests on SQLite and on a real PostgreSQL (issue 5), and CI is a
clean Debian 12 machine running ``.ci/run`` as root. So the tests do not expect a server to be
there: ``./dev test`` installs Debian's ``postgresql`` package, and ``start_postgres`` makes a
fresh cluster from its binaries for each test session:

- binaries from ``/usr/lib/postgresql/<major>/bin`` (the highest major installed), not from
  ``$PATH``: Debian puts only wrappers there, and they want a system cluster;
- PostgreSQL refuses to run as root, so as root every server-side command runs as the
  ``postgres`` system user the package creates (``runuser -u postgres --``); run by anyone else,
  the commands run as that user;
- data, socket and log live in ``base_dir`` (handed to that user), the server listens on
  127.0.0.1 on a free port, and the test superuser ``cti`` is trusted on loopback only;
- ``fsync=off``: a test cluster need not survive a power cut, and initdb and every commit get
  much faster. ``synchronous_commit`` stays on, so a commit the server acknowledged is in the
  WAL before the answer: killing the *server process* loses nothing, only an OS crash could.

The cluster can be stopped and started again keeping its data (``stop_server`` and
``start_server``), for the "database stopped for a while under load" test.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cti.errors import CtiError

__all__ = [
    "PG_ROOT",
    "TEST_USER",
    "PostgresHandle",
    "PostgresUnavailable",
    "find_bindir",
    "start_postgres",
]

PG_ROOT = Path("/usr/lib/postgresql")
TEST_USER = "cti"
RUN_DATABASE = "cti"
_SERVER_USER = "postgres"
_NEEDED = ("initdb", "pg_ctl", "postgres", "psql")
_START_TIMEOUT_S = 60
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailable(CtiError):
    """The test PostgreSQL cannot be found, created or started (the message says why).

    Test wiring, not a server error, so it lives here rather than in ``cti/errors.py``.
    """


def find_bindir(root: Path = PG_ROOT) -> Path:
    """``root/<major>/bin`` of the highest major holding every binary the tests use."""
    majors = sorted(
        (int(entry.name), entry / "bin")
        for entry in (root.iterdir() if root.is_dir() else ())
        if entry.name.isdigit()
    )
    if not majors:
        raise PostgresUnavailable(
            f"no PostgreSQL server under {root}/<major>/bin: install Debian's postgresql "
            "package (./dev test does)"
        )
    major, bindir = majors[-1]
    missing = [name for name in _NEEDED if not (bindir / name).is_file()]
    if missing:
        raise PostgresUnavailable(
            f"PostgreSQL {major} in {bindir} lacks {', '.join(missing)}: reinstall Debian's "
            f"postgresql-{major} and postgresql-client-{major} packages"
        )
    return bindir


def _free_port() -> int:
    # The port is free now; another process could take it before the server binds it, in which
    # case start_postgres tries again with a new one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PostgresHandle:
    """One running test cluster. ``url`` is the run's database, as SQLAlchemy wants it."""

    bindir: Path
    base_dir: Path
    port: int
    _as_server_user: tuple[str, ...] = field(repr=False)
    running: bool = False

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "server.log"

    @property
    def url(self) -> str:
        return self.url_for(RUN_DATABASE)

    def url_for(self, database: str) -> str:
        """The ``postgresql+asyncpg://`` URL of ``database`` on this cluster."""
        return f"postgresql+asyncpg://{TEST_USER}@127.0.0.1:{self.port}/{database}"

    # -- the server process -------------------------------------------------------------------

    def start_server(self) -> None:
        """Start the cluster (again), keeping its data; returns once it accepts connections."""
        self._pg_ctl("start", "-l", str(self.log_path))
        self.running = True

    def stop_server(self) -> None:
        """Stop the cluster, keeping its data (``-m fast``: clients are disconnected)."""
        self._pg_ctl("stop", "-m", "fast")
        self.running = False

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast", "-l", str(self.log_path))
        self.running = True

    def stop(self) -> None:
        """End of the session: stop the server if it runs (files stay for ``base_dir``'s owner)."""
        if self.running:
            self.stop_server()

    # -- SQL for test assertions --------------------------------------------------------------

    def psql(self, sql: str, database: str = RUN_DATABASE) -> str:
        """Run ``sql`` with psql; rows as ``a|b`` lines, no header (``-A -t``), stripped."""
        cmd = [
            str(self.bindir / "psql"),
            "-X",  # ignore any ~/.psqlrc
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            TEST_USER,
            "-d",
            database,
            "-c",
            sql,
        ]
        # psql is a plain client over TCP with trust auth, so it may run as whoever we are.
        result = _run(cmd, cwd=self.base_dir, what=f"psql {sql[:60]!r}")
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; returns its URL."""
        self.psql(f"CREATE DATABASE {_identifier(name)}", database="postgres")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        # FORCE (PostgreSQL 13+) ends sessions a test left open instead of failing the drop.
        self.psql(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)", database="postgres")

    # -- helpers ------------------------------------------------------------------------------

    def _pg_ctl(self, *args: str) -> None:
        cmd = [
            *self._as_server_user,
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            str(_START_TIMEOUT_S),
            *args,
        ]
        try:
            _run(cmd, cwd=self.base_dir, what=f"pg_ctl {args[0]}")
        except PostgresUnavailable as exc:
            raise PostgresUnavailable(f"{exc}\n{self._log_tail()}") from exc

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"(no server log at {self.log_path})"
        return f"last lines of {self.log_path}:\n" + "\n".join(text)


def _identifier(name: str) -> str:
    # Database names go into SQL unquoted; the tests choose them, so a strict shape suffices.
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a simple lower-case SQL identifier: {name!r}")
    return name


def _run(cmd: Sequence[str], *, cwd: Path, what: str) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(cmd),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_START_TIMEOUT_S + 30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PostgresUnavailable(f"{what} failed: {exc}") from exc
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise PostgresUnavailable(f"{what} exited with {result.returncode}: {output}")
    return result


def _server_user_prefix(base_dir: Path) -> tuple[str, ...]:
    """How to run server commands: as ``postgres`` when we are root, else as ourselves."""
    if os.geteuid() != 0:
        return ()
    try:
        account = pwd.getpwnam(_SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"no {_SERVER_USER!r} system user to run PostgreSQL as (it refuses root): install "
            "Debian's postgresql package (./dev test does)"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("runuser (util-linux) is missing: cannot drop root")
    os.chown(base_dir, account.pw_uid, account.pw_gid)
    prefix = (runuser, "-u", _SERVER_USER, "--")
    # pytest's own tmp folders are 0700 root: the server user could not even reach them.
    probe = subprocess.run([*prefix, "test", "-w", str(base_dir)], check=False)
    if probe.returncode != 0:
        raise PostgresUnavailable(
            f"the {_SERVER_USER!r} user cannot write to {base_dir}: a parent folder is not "
            "searchable by others (use a folder under /tmp, not pytest's tmp_path)"
        )
    return prefix


def start_postgres(base_dir: Path, *, attempts: int = 3) -> PostgresHandle:
    """Create a cluster in ``base_dir`` (made if missing, must be empty) and start it.

    The run's database (``handle.url``) exists on return. Raises ``PostgresUnavailable`` with
    the reason (and the server log's end) when anything is missing or fails.
    """
    bindir = find_bindir()
    base_dir.mkdir(parents=True, exist_ok=True)
    if any(base_dir.iterdir()):
        raise PostgresUnavailable(f"{base_dir} is not empty: a fresh folder is needed")
    prefix = _server_user_prefix(base_dir)
    _run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(base_dir / "data"),
            "-U",
            TEST_USER,
            "--auth=trust",  # for local and loopback only: initdb's pg_hba.conf has no more
            "--encoding=UTF8",
            "--locale=C",  # present on every machine, unlike a UTF-8 locale
            "--no-sync",  # the cluster is thrown away; see fsync below
        ],
        cwd=base_dir,
        what="initdb",
    )
    conf = base_dir / "data" / "postgresql.conf"
    last_error: PostgresUnavailable | None = None
    for _ in range(attempts):
        handle = PostgresHandle(bindir, base_dir, _free_port(), _as_server_user=prefix)
        # Appended settings win over initdb's; written to the file so a restart keeps them.
        with conf.open("a") as out:
            out.write(
                "\n# ctiserver test cluster (tests/support/postgres.py)\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {handle.port}\n"
                f"unix_socket_directories = '{base_dir}'\n"
                "fsync = off\n"
                "full_page_writes = off\n"
                "max_connections = 200\n"
            )
        try:
            handle.start_server()
        except PostgresUnavailable as exc:
            last_error = exc  # most likely the port was taken meanwhile: try another
            continue
        try:
            handle.create_database(RUN_DATABASE)
        except PostgresUnavailable:
            handle.stop()  # a started server must not outlive a failed start_postgres
            raise
        return handle
    raise PostgresUnavailable(f"no start in {attempts} attempts; last error: {last_error}")
