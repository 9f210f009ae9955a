"""The lab cluster's Spark standalone master and workers, run from the pyspark distribution's own
classes (``bin/spark-class``, as Spark's ``sbin`` scripts do) with its jars: no other Spark to install."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fraudshop.config import Config
from fraudshop.jobs.launcher import spark_home
from fraudshop.lab.stack.process import ServerProcess

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
MASTER_READY_LINE = re.compile(r"I have been elected leader! New state: ALIVE")
WORKER_READY_LINE = re.compile(r"Successfully registered with master")


@dataclass(frozen=True)
class SparkMaster:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"spark://{self.host}:{self.port}"


def spark_master(config: Config) -> SparkMaster:
    """The standalone master ``job.spark_master`` names (``spark://host:port``)."""
    master = config.job.spark_master
    if not master.startswith("spark://"):
        raise ValueError(f"job.spark_master = {master}: the lab cluster runs a standalone master, spark://host:port")
    host, _, port = master.removeprefix("spark://").rpartition(":")
    return SparkMaster(host, int(port))


def _spark_class(config: Config) -> Path:
    home = spark_home()
    if home is None or not (home / "bin" / "spark-class").exists():
        raise FileNotFoundError("bin/spark-class not found: install fraudshop (it brings pyspark) or set SPARK_HOME")
    return home / "bin" / "spark-class"


def _environment(config: Config, host: str) -> dict[str, str]:
    return {
        "SPARK_HOME": str(_spark_class(config).parent.parent),
        # Binds the daemon, its web UI and (a worker's) executors to this node's address only.
        "SPARK_LOCAL_IP": host,
        "SPARK_DAEMON_MEMORY": config.cluster.spark_daemon_heap,
        # No conf/ of a machine-wide Spark leaks in.
        "SPARK_CONF_DIR": str(config.stack.state_dir / "spark-conf"),
    }


def master_server(config: Config) -> ServerProcess:
    master = spark_master(config)
    run_dir = config.stack.state_dir / "run"
    command = (
        str(_spark_class(config)),
        MASTER_CLASS,
        "--host",
        master.host,
        "--port",
        str(master.port),
        "--webui-port",
        str(config.cluster.spark_webui_port),
    )
    return ServerProcess(
        name="spark-master",
        command=command,
        host=master.host,
        port=master.port,
        server_log=run_dir / "spark-master.out",  # Spark's daemons log to the console
        ready_line=MASTER_READY_LINE,
        run_dir=run_dir,
        environment=_environment(config, master.host),
    )


def worker_servers(config: Config) -> list[ServerProcess]:
    """One worker per ``cluster.spark_worker_hosts`` entry, registered with the master."""
    run_dir = config.stack.state_dir / "run"
    servers = []
    for index, host in enumerate(config.cluster.worker_hosts, start=1):
        name = f"spark-worker-{index}"
        command = (
            str(_spark_class(config)),
            WORKER_CLASS,
            "--host",
            host,
            "--port",
            str(config.cluster.spark_worker_port),
            "--webui-port",
            str(config.cluster.spark_webui_port + index),
            "--cores",
            str(config.cluster.spark_worker_cores),
            "--memory",
            config.cluster.spark_worker_memory,
            "--work-dir",
            str(config.stack.state_dir / name),
            spark_master(config).url,
        )
        servers.append(
            ServerProcess(
                name=name,
                command=command,
                host=host,
                port=config.cluster.spark_worker_port,
                server_log=run_dir / f"{name}.out",
                ready_line=WORKER_READY_LINE,
                run_dir=run_dir,
                environment=_environment(config, host),
            )
        )
    return servers


def prepare_spark(config: Config) -> None:
    """An empty conf directory: the daemons read nothing but their command line."""
    (config.stack.state_dir / "spark-conf").mkdir(parents=True, exist_ok=True)
