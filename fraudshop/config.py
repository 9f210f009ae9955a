"""The one configuration object: ``conf/fraudshop.toml``, then environment, then ``--set``."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "FRAUDSHOP_"
CONFIG_FILE_ENV = "FRAUDSHOP_CONFIG"
DEFAULT_CONFIG_FILE = Path(__file__).resolve().parent.parent / "conf" / "fraudshop.toml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


@dataclass(frozen=True)
class KafkaConfig:
    bootstrap_servers: str
    topic: str
    starting_offsets: str
    fail_on_data_loss: bool
    max_offsets_per_trigger: int
    topic_partitions: int
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password: str = field(repr=False)
    ssl_truststore_path: str
    ssl_truststore_password: str = field(repr=False)
    ssl_ca_file: str

    @property
    def first_port(self) -> int:
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])


@dataclass(frozen=True)
class CassandraConfig:
    hosts: str
    port: int
    keyspace: str
    replication: str
    local_dc: str
    username: str
    password: str = field(repr=False)
    ssl_enabled: bool
    ssl_truststore_path: str
    ssl_truststore_password: str = field(repr=False)
    ssl_ca_file: str

    @property
    def host_list(self) -> list[str]:
        return [h.strip() for h in self.hosts.split(",") if h.strip()]


@dataclass(frozen=True)
class JobConfig:
    spark_master: str
    trigger_interval: str
    change_window_hours: float
    change_scan_margin_seconds: int
    max_future_skew_seconds: int
    max_record_bytes: int
    checkpoint_dir: Path
    batch_attempts: int
    batch_retry_backoff_seconds: float
    batch_timeout_seconds: float
    shuffle_partitions: int
    progress_file: str

    @property
    def change_window_seconds(self) -> int:
        return round(self.change_window_hours * 3600)


@dataclass(frozen=True)
class ApiConfig:
    host: str
    port: int
    token: str = field(repr=False)
    require_token: bool
    max_future_skew_seconds: int
    max_id_length: int


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    cache_dir: Path
    kafka_controller_port: int
    cassandra_storage_port: int
    kafka_heap: str
    cassandra_heap: str
    start_timeout_seconds: int


@dataclass(frozen=True)
class Config:
    kafka: KafkaConfig
    cassandra: CassandraConfig
    job: JobConfig
    api: ApiConfig
    stack: StackConfig


_SECTIONS: dict[str, type[Any]] = {
    "kafka": KafkaConfig,
    "cassandra": CassandraConfig,
    "job": JobConfig,
    "api": ApiConfig,
    "stack": StackConfig,
}


def _convert(value: Any, annotation: str, where: str) -> Any:
    """Turn a TOML, environment or command-line value into the field's declared type."""
    if annotation == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "1", "yes", "on"}:
            return True
        if text in {"false", "0", "no", "off"}:
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    try:
        if annotation == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if annotation == "float":
            return float(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a number ({annotation}), got {value!r}") from None
    if annotation == "Path":
        return Path(str(value)).expanduser()
    return str(value)


def _parse_assignments(assignments: Iterable[str]) -> dict[tuple[str, str], str]:
    parsed: dict[tuple[str, str], str] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set expects section.key=value, got {assignment!r}")
        parsed[(section, name)] = value
    return parsed


def _environment_overrides(environ: Mapping[str, str]) -> dict[tuple[str, str], str]:
    overrides: dict[tuple[str, str], str] = {}
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX) :].partition("__")
            overrides[(section.lower(), key.lower())] = value
    return overrides


def load_config(
    path: Path | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read the config file, apply ``FRAUDSHOP_SECTION__KEY`` variables, then ``section.key=value``."""
    environ = os.environ if environ is None else environ
    path = path or Path(environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
    try:
        with open(path, "rb") as handle:
            raw: dict[str, Any] = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None

    layered: dict[tuple[str, str], Any] = {
        (section, key): value
        for section, table in raw.items()
        if isinstance(table, dict)
        for key, value in table.items()
    }
    layered.update(_environment_overrides(environ))
    layered.update(_parse_assignments(overrides))

    known = {(section, spec.name) for section, cls in _SECTIONS.items() for spec in dataclasses.fields(cls)}
    unknown = sorted(f"{section}.{key}" for section, key in set(layered) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    missing = sorted(f"{section}.{key}" for section, key in known - set(layered))
    if missing:
        raise ConfigError(f"setting(s) not set: {', '.join(missing)} (expected in {path})")

    sections = {
        section: cls(
            **{
                spec.name: _convert(layered[(section, spec.name)], str(spec.type), f"{section}.{spec.name}")
                for spec in dataclasses.fields(cls)
            }
        )
        for section, cls in _SECTIONS.items()
    }
    return Config(**sections)


def as_environment(config: Config) -> dict[str, str]:
    """``FRAUDSHOP_SECTION__KEY`` variables that rebuild ``config`` in a child process.

    Hands a command's whole config, secrets included, to the spark-submit job it launches
    without putting credentials on a command line, where ``ps`` would show them.
    """
    return {
        f"{ENV_PREFIX}{section.upper()}__{spec.name.upper()}": str(getattr(getattr(config, section), spec.name))
        for section in _SECTIONS
        for spec in dataclasses.fields(getattr(config, section))
    }
