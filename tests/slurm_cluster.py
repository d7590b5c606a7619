"""A single-node Slurm cluster on localhost for the test suite (Debian's slurm-wlm, as root).

Everything lives under one folder: a MUNGE key and daemon, a MariaDB server holding the Slurm
accounting database (``sacct`` needs slurmdbd; without it Slurm answers "accounting storage is
disabled"), slurmdbd, slurmctld and one slurmd whose node is this machine, on free ports.
Clients find the cluster through ``SLURM_CONF`` (:meth:`SlurmCluster.env`), except job steps:
snakemake-executor-plugin-slurm-jobstep drops every ``SLURM_*`` variable before its nested
``srun``, which then reads the default /etc/slurm/slurm.conf, as on a real cluster. So while the
cluster runs, /etc/slurm/slurm.conf is a symbolic link to this cluster's file, under an exclusive
lock (a second test run waits); the link is removed when the cluster stops. A machine with a
slurm.conf of its own is left alone (:func:`missing_requirements` says why).

    with SlurmCluster(folder, cpus=2, mem_mb=12000) as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env(), check=True)
"""

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DAEMONS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "sacct", "sacctmgr", "scontrol", "squeue", "scancel", "sinfo", "srun")
APT_PACKAGES = "slurmctld slurmd slurmdbd slurm-client munge mariadb-server"
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
LOCK = Path("/run/lock/crsky-slurm-test.lock")
LOCK_TIMEOUT_S = 1800


def missing_requirements() -> str | None:
    """Why no cluster can start here (not root, a program missing), or None if one can."""
    if os.geteuid() != 0:
        return "the Slurm daemons are started as root; not root here"
    missing = [p for p in DAEMONS + CLIENTS if shutil.which(p, path=SBIN_PATH) is None]
    if missing:
        return f"missing {missing}; install with: apt-get install {APT_PACKAGES}"
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.is_symlink():
        return f"this machine has its own Slurm configuration ({SYSTEM_CONF}); not replacing it"
    return None


def _free_ports(n: int) -> list[int]:
    """n distinct TCP ports that are free on localhost now."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SlurmCluster:
    """MUNGE + MariaDB + slurmdbd + slurmctld + slurmd in ``folder``, one node of ``cpus`` CPUs
    and ``mem_mb`` MB named ``localhost``, one partition ``main``. Use as a context manager;
    leaving it stops every daemon it started (by its own process handle)."""

    name = "crsky"

    def __init__(self, folder: Path, cpus: int, mem_mb: int):
        self.folder = Path(folder)
        self.cpus = cpus
        self.mem_mb = mem_mb
        self._processes: list[subprocess.Popen] = []
        self._logs: list = []
        self._lock = None

    def env(self) -> dict[str, str]:
        """The calling environment plus SLURM_CONF (and the sbin folders on PATH)."""
        path = f"{os.environ.get('PATH', '')}{os.pathsep}{SBIN_PATH}"
        return dict(os.environ, SLURM_CONF=str(self.folder / "slurm.conf"), PATH=path)

    def run(self, *command: str, check: bool = True) -> str:
        """Run a Slurm client command against this cluster; its stdout."""
        result = subprocess.run(
            command, env=self.env(), capture_output=True, text=True, check=False, timeout=60
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout

    def __enter__(self) -> "SlurmCluster":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, name: str, *command: str) -> None:
        log = (self.folder / f"{name}.out").open("w")
        self._logs.append(log)
        process = subprocess.Popen(
            command, env=self.env(), stdout=log, stderr=subprocess.STDOUT, cwd=self.folder
        )
        self._processes.append(process)

    def _wait(self, condition, what: str, *logs: Path, timeout_s: float = 60.0) -> None:
        """Poll ``condition()`` until true; RuntimeError with the logs' tails if it is not within
        ``timeout_s`` or a daemon exits meanwhile."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            dead = [p.args[0] for p in self._processes if p.poll() is not None]
            if dead:
                what = f"{what}: {dead} exited"
                break
            time.sleep(0.2)
        logs += tuple(self.folder / f"{Path(p.args[0]).name}.out" for p in self._processes)
        tails = "\n".join(
            f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            for log in logs
            if log.exists()
        )
        raise RuntimeError(f"Slurm test cluster: {what} not ready\n{tails}")

    def _take_the_machine(self) -> None:
        """Wait for the machine-wide lock, then link /etc/slurm/slurm.conf to this cluster's."""
        LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._lock = LOCK.open("w")
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another Slurm test cluster holds {LOCK}") from None
                time.sleep(2)
        if SYSTEM_CONF.is_symlink():  # left behind by a killed run (we hold the lock)
            SYSTEM_CONF.unlink()
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.folder / "slurm.conf")

    def _release_the_machine(self) -> None:
        if self._lock is None:
            return
        if SYSTEM_CONF.is_symlink() and SYSTEM_CONF.readlink() == self.folder / "slurm.conf":
            SYSTEM_CONF.unlink()
        self._lock.close()  # releases the flock
        self._lock = None

    def _start(self) -> None:
        d = self.folder
        self._take_the_machine()
        for sub in ("munge", "db", "state", "spool"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "munge").chmod(0o700)
        db_port, dbd_port, ctld_port, slurmd_port = _free_ports(4)
        self.munge_socket = d / "munge" / "munge.socket"
        self._start_munge()
        self._start_mariadb(db_port)
        password = secrets.token_hex(16)
        self._sql(
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}';"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        self._write_slurmdbd_conf(db_port, dbd_port, password)
        self._write_slurm_conf(dbd_port, ctld_port, slurmd_port)
        # slurmdbd reads slurmdbd.conf from the folder of SLURM_CONF
        self._spawn("slurmdbd", "slurmdbd", "-D")
        self._wait(lambda: _port_open(dbd_port), "slurmdbd", d / "slurmdbd.log")
        self._spawn("slurmctld", "slurmctld", "-D", "-i")
        self._spawn("slurmd", "slurmd", "-D", "-N", "localhost")
        logs = (d / "slurmctld.log", d / "slurmd.log")
        self._wait(self._node_idle, "the node", *logs)
        self._wait(self._registered, "the cluster's accounting", *logs, d / "slurmdbd.log")

    def _start_munge(self) -> None:
        key = self.folder / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        m = self.folder / "munge"
        self._spawn(
            "munged",
            "munged",
            "--foreground",
            "--force",
            f"--key-file={key}",
            f"--socket={self.munge_socket}",
            f"--pid-file={m / 'munged.pid'}",
            f"--log-file={m / 'munged.log'}",
            f"--seed-file={m / 'munged.seed'}",
        )
        self._wait(self.munge_socket.exists, "munged", m / "munged.log")

    def _start_mariadb(self, port: int) -> None:
        d = self.folder
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={d / 'db'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            env=self.env(),
            capture_output=True,
            check=True,
        )
        self.db_socket = d / "mysql.sock"
        self._spawn(
            "mariadbd",
            "mariadbd",
            "--no-defaults",
            f"--datadir={d / 'db'}",
            "--user=root",
            f"--socket={self.db_socket}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            f"--log-error={d / 'mariadb.err'}",
            f"--pid-file={d / 'mariadb.pid'}",
        )
        self._wait(lambda: self._sql("SELECT 1;", check=False), "MariaDB", d / "mariadb.err")

    def _sql(self, statements: str, check: bool = True) -> bool:
        result = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.db_socket}", "-u", "root"],
            input=statements,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"MariaDB: {result.stderr.strip()}")
        return result.returncode == 0

    def _write_slurmdbd_conf(self, db_port: int, dbd_port: int, password: str) -> None:
        d = self.folder
        conf = d / "slurmdbd.conf"
        conf.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "DbdHost=localhost",
                    f"DbdPort={dbd_port}",
                    "SlurmUser=root",
                    f"PidFile={d / 'slurmdbd.pid'}",
                    f"LogFile={d / 'slurmdbd.log'}",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={db_port}",
                    "StorageUser=slurm",
                    f"StoragePass={password}",
                    "StorageLoc=slurm_acct_db",
                    "",
                ]
            )
        )
        conf.chmod(0o600)  # slurmdbd refuses a readable password file

    def _write_slurm_conf(self, dbd_port: int, ctld_port: int, slurmd_port: int) -> None:
        d = self.folder
        (d / "slurm.conf").write_text(
            "\n".join(
                [
                    f"ClusterName={self.name}",
                    "SlurmctldHost=localhost",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "CredType=cred/munge",
                    f"SlurmctldPort={ctld_port}",
                    f"SlurmdPort={slurmd_port}",
                    f"StateSaveLocation={d / 'state'}",
                    f"SlurmdSpoolDir={d / 'spool'}",
                    f"SlurmctldPidFile={d / 'slurmctld.pid'}",
                    f"SlurmdPidFile={d / 'slurmd.pid'}",
                    f"SlurmctldLogFile={d / 'slurmctld.log'}",
                    f"SlurmdLogFile={d / 'slurmd.log'}",
                    # no cgroups in a container: plain process tracking, no task binding
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=localhost",
                    f"AccountingStoragePort={dbd_port}",
                    # the MUNGE socket for talking to slurmdbd (Slurm 22.05 reads it here)
                    f"AccountingStoragePass={self.munge_socket}",
                    "AccountingStoreFlags=job_comment",
                    "JobCompType=jobcomp/none",
                    "SchedulerType=sched/backfill",
                    "SchedulerParameters=bf_interval=1",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "SlurmdParameters=config_overrides",
                    "ReturnToService=2",
                    "MpiDefault=none",
                    "KillWait=5",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={self.mem_mb} State=UNKNOWN",
                    "PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _node_idle(self) -> bool:
        return self.run("sinfo", "-h", "-o", "%T", check=False).strip() == "idle"

    def _registered(self) -> bool:
        clusters = self.run(
            "sacctmgr", "-n", "-P", "list", "cluster", "format=cluster", check=False
        )
        return self.name in clusters.split()

    def stop(self) -> None:
        """Cancel this cluster's jobs, stop the daemons this object started (newest first) and
        close their logs."""
        if any(p.poll() is None for p in self._processes) and (self.folder / "slurm.conf").exists():
            self.run("scancel", "--user", "root", check=False)
            deadline = time.monotonic() + 20
            while self.run("squeue", "-h", check=False).strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()
        self._release_the_machine()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
