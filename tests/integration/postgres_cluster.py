"""A throwaway PostgreSQL cluster for tests, started with the local `initdb` (Debian's packages:
`.ci/run` installs them) on a free loopback port, stopped and removed afterwards.

One way to get a private server in tests (the finance-database sources need one with password
checking for the secrets test, and a disposable one for the bad-input corpus).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def initdb() -> Path | None:
    """The newest installed `initdb`, or None."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return bins[-1] if bins else None


@contextmanager
def throwaway_cluster(admin_password: str | None = None) -> Iterator[str]:
    """Yield the admin URL (user `postgres`) of a new cluster. With `admin_password`, logins need a
    password (scram-sha-256: a wrong one is rejected); without, any login is trusted. Raises
    LookupError when PostgreSQL is not installed, CalledProcessError when it will not start."""
    binary = initdb()
    if binary is None:
        raise LookupError("no initdb under /usr/lib/postgresql/*/bin (Debian package postgresql)")
    bin_dir = binary.parent
    # the server runs as `postgres` when we are root: a folder it can enter (not pytest's 0700 tree)
    folder = Path(tempfile.mkdtemp(prefix="salesalign-test-pg."))
    run_as: list[str] = []
    auth = ["-A", "trust"]
    if admin_password is not None:
        (folder / "pw").write_text(admin_password)
        auth = ["-A", "scram-sha-256", f"--pwfile={folder / 'pw'}"]
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        if admin_password is not None:
            shutil.chown(folder / "pw", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = str(folder / "data")
    try:
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", data, *auth, "-U", "postgres"],
                       check=True, capture_output=True)
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", data, "-l", str(folder / "log"), "-w",
                        "-o", f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off", "start"],
                       check=True, capture_output=True)
        secret = f":{admin_password}" if admin_password is not None else ""
        yield f"postgresql+psycopg://postgres{secret}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(bin_dir / "pg_ctl"), "-D", data, "-m", "fast", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of `admin_url` for one test (dropped after): its URL."""
    import sqlalchemy as sa

    name = f"salesalign_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as con:
            con.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
