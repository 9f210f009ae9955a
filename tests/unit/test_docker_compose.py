"""docker/compose.yaml and docker/Dockerfile, checked as far as they can be without a Docker engine.

The file must be a valid Compose file, speak to fraudshop only through real config keys, run the
versions of fraudshop/versions.py and wire the services to one another by their names.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudshop.config import ENV_PREFIX, Config, as_environment, load_config, versions
from fraudshop.jobs.launcher import DETECTION_JOB, spark_submit_command

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
COMPOSE_FILE = DOCKER_DIR / "compose.yaml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
CONFIG_VARIABLE = re.compile(r"^FRAUDSHOP_([A-Z0-9_]+?)__([A-Z0-9_]+)$")


def _load_compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    assert isinstance(document, dict), f"{COMPOSE_FILE} is not a YAML mapping"
    return document


COMPOSE = _load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def environment(service: str) -> dict[str, str]:
    """A service's environment, whichever of Compose's two forms (mapping or KEY=VALUE list) it uses."""
    raw = SERVICES[service].get("environment") or {}
    if isinstance(raw, list):
        return dict(str(item).partition("=")[::2] for item in raw)
    return {str(name): "" if value is None else str(value) for name, value in raw.items()}


def command(service: str) -> list[str]:
    raw = SERVICES[service]["command"]
    return shlex.split(raw) if isinstance(raw, str) else [str(word) for word in raw]


def image_name_and_tag(service: str) -> tuple[str, str]:
    name, _, tag = str(SERVICES[service]["image"]).rpartition(":")
    assert name and "/" not in tag, f"{service}: image without a tag"
    return name, tag


def fraudshop_image_services() -> list[str]:
    """Services that run the image built from docker/Dockerfile."""
    return [name for name, service in SERVICES.items() if "build" in service]


def config_of(service: str) -> Config:
    return load_config(environ=environment(service))


def depends_on(service: str) -> dict[str, str]:
    """Dependency -> condition."""
    raw = SERVICES[service].get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def host_of(address: str) -> str:
    return address.rsplit(":", 1)[0] if ":" in address else address


CONFIG_VARIABLES = sorted(
    {
        (name, value)
        for service in SERVICES
        for name, value in environment(service).items()
        if name.startswith(ENV_PREFIX)
    }
)


def test_compose_file_follows_the_compose_specification() -> None:
    # check-jsonschema ships the Compose Specification's JSON schema: no network needed.
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_has_an_image_or_a_build() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name


def test_the_fraudshop_image_is_built_from_the_repository_root_with_docker_dockerfile() -> None:
    assert fraudshop_image_services(), "no service builds the fraudshop image"
    for name in fraudshop_image_services():
        build = SERVICES[name]["build"]
        context = (DOCKER_DIR / build["context"]).resolve()
        assert (context / "pyproject.toml").is_file(), f"{name}: build context {context} is not the repository"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert SERVICES[name]["image"] == SERVICES["job"]["image"], f"{name}: not the job's image"


@pytest.mark.parametrize(("name", "value"), CONFIG_VARIABLES, ids=[name for name, _ in CONFIG_VARIABLES])
def test_every_fraudshop_variable_sets_a_config_key(name: str, value: str) -> None:
    # Variables without "__" are ignored by the config rather than refused: insist on the form.
    assert CONFIG_VARIABLE.match(name), f"{name} is not FRAUDSHOP_<SECTION>__<KEY>"
    # load_config refuses unknown keys and values of the wrong type with ConfigError.
    config = load_config(environ={name: value})
    assert as_environment(config)[name] == value


@pytest.mark.parametrize("service", fraudshop_image_services())
def test_each_fraudshop_service_environment_is_a_valid_config(service: str) -> None:
    config_of(service)


def test_fraudshop_reaches_the_servers_by_their_service_names() -> None:
    config = config_of("job")
    for broker in config.kafka.bootstrap_servers.split(","):
        assert host_of(broker.strip()) in SERVICES, broker
    for host in config.cassandra.host_list:
        assert host in SERVICES, host
    assert config.cassandra.port == 9042
    assert config.job.spark_master.startswith("spark://")
    master = config.job.spark_master.removeprefix("spark://")
    assert host_of(master) == "spark-master"
    assert master.rsplit(":", 1)[1] == environment("spark-master")["SPARK_MASTER_PORT"]
    assert command("spark-worker")[-1] == config.job.spark_master


def test_the_job_keeps_its_checkpoint_and_jar_cache_on_named_volumes() -> None:
    config = config_of("job")
    mounts: dict[str, str] = {}  # container path -> volume
    for volume in SERVICES["job"]["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    named_volumes = set(COMPOSE["volumes"])

    def volume_holding(path: Path) -> str:
        target = next((target for target in mounts if path.is_relative_to(target)), None)
        assert target is not None, f"{path} is on no volume of the job service"
        return mounts[target]

    assert volume_holding(config.job.checkpoint_dir) in named_volumes
    assert volume_holding(config.stack.cache_dir) in named_volumes


def test_the_job_service_runs_fraudshop_job_on_the_spark_master() -> None:
    assert command("job") == ["fraudshop", "job"]
    argv = spark_submit_command(config_of("job"), DETECTION_JOB)
    assert argv[argv.index("--master") + 1] == "spark://spark-master:7077"
    assert environment("job")["SPARK_LOCAL_HOSTNAME"] == "job", "executors must reach the driver by a service name"


def test_the_job_starts_after_the_servers_are_healthy_and_the_schema_and_topic_exist() -> None:
    required = {
        "kafka": "service_healthy",
        "cassandra": "service_healthy",
        "schema": "service_completed_successfully",
        "topic": "service_completed_successfully",
        "spark-master": "service_healthy",
    }
    assert required.items() <= depends_on("job").items()


def test_services_waited_on_as_healthy_have_a_healthcheck() -> None:
    for name in SERVICES:
        for dependency, condition in depends_on(name).items():
            assert dependency in SERVICES, f"{name} depends on unknown service {dependency}"
            if condition == "service_healthy":
                assert "test" in SERVICES[dependency].get("healthcheck", {}), dependency


def test_cassandra_healthcheck_lists_keyspaces_with_cqlsh() -> None:
    assert "describe keyspaces" in " ".join(SERVICES["cassandra"]["healthcheck"]["test"])


def test_one_shot_and_demo_services() -> None:
    assert command("schema") == ["fraudshop", "schema", "apply"]
    assert depends_on("schema") == {"cassandra": "service_healthy"}
    assert command("producer") == ["fraudshop", "produce", "--rate", "20", "--accounts", "40"]
    assert SERVICES["producer"]["profiles"] == ["demo"]


def test_the_topic_service_calls_functions_that_exist() -> None:
    words = command("topic")
    assert words[:2] == ["python", "-c"]
    for node in ast.walk(ast.parse(words[2])):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_spark_master_runs_the_spark_of_pyspark() -> None:
    name, tag = image_name_and_tag("spark-master")
    assert name == "apache/spark"
    assert tag.split("-")[0] == versions.SPARK
    assert f"scala{versions.SCALA_BINARY}" in tag.split("-")
    assert command("spark-master") == ["/opt/spark/bin/spark-class", "org.apache.spark.deploy.master.Master"]


def test_spark_workers_run_pyspark_from_the_fraudshop_image() -> None:
    # Executors start Python workers with the driver's interpreter, so they run the job's image;
    # their Spark is the pinned PySpark, which must be the master's version.
    assert "build" in SERVICES["spark-worker"]
    assert command("spark-worker")[:2] == ["spark-class", "org.apache.spark.deploy.worker.Worker"]
    with (DOCKER_DIR.parent / "pyproject.toml").open("rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    assert f"pyspark=={versions.SPARK}" in dependencies


def test_kafka_image_is_of_the_local_stack_major_version() -> None:
    name, tag = image_name_and_tag("kafka")
    assert name == "apache/kafka"
    assert tag.split(".")[0] == versions.KAFKA.split(".")[0]
    kafka = environment("kafka")
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{config_of('job').kafka.bootstrap_servers}"


def test_cassandra_image_is_of_the_local_stack_minor_version() -> None:
    name, tag = image_name_and_tag("cassandra")
    assert name == "cassandra"
    assert tag.split(".")[:2] == versions.CASSANDRA.split(".")[:2]
    assert {"MAX_HEAP_SIZE", "HEAP_NEWSIZE"} <= set(environment("cassandra"))


def test_dockerfile_installs_fraudshop_with_its_package_data() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM python:(\d+\.\d+)-slim", text, re.MULTILINE)
    assert base is not None, "the image is not built on python:X.Y-slim"
    assert f"SPARK_HOME=/usr/local/lib/python{base.group(1)}/site-packages/pyspark" in text
    assert "openjdk-17-jre-headless" in text
    # Job scripts, defaults and schema ship inside the package: a regular install finds them.
    assert re.search(r"^COPY fraudshop/ fraudshop/$", text, re.MULTILINE)
    assert re.search(r"pip install --no-deps \.", text)
