"""A throwaway PostgreSQL cluster for the tests, from the Debian binaries; or RIVYA_TEST_DATABASE_URL.

The server refuses to run as root, so under root (CI) the cluster belongs to ``nobody``. Nothing is
skipped: without the binaries the tests that need PostgreSQL fail with the command that fixes it.
bench/ uses the same cluster (``durable=True`` there: fsync on, as a real server would run).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

MISSING = (
    "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/*/bin/initdb and pg_ctl on PATH). "
    "Install them with `apt-get install postgresql` (CI: scripts/ci/postgres.sh), or point "
    "RIVYA_TEST_DATABASE_URL at a server the tests may create schemas in."
)


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(MISSING)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_cluster(*, durable: bool = False) -> Iterator[str]:
    """Start a cluster in a temp folder on a free loopback port; yield its URL; stop and delete it."""
    bindir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="rivya-pg-"))
    as_user: dict[str, object] = {}
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root. Drop the group and root's supplementary groups too.
        import pwd

        nobody = pwd.getpwnam("nobody")
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--no-sync", "-N"], as_user)  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not durable:
            # A test cluster: durability off for speed (the journal's tests are about its logic).
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
             as_user)  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], as_user, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(argv: list[str], as_user: dict[str, object], *, check: bool = True) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd="/", **as_user)  # type: ignore[call-overload]
    if check and result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def schema_url(base_url: str, schema: str) -> str:
    """``base_url`` with every connection's search_path set to ``schema``."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"


def fresh_schema(base_url: str) -> str:
    """A new empty schema in the test database; returns a URL whose connections use it."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return schema_url(base_url, name)
