"""The one configuration object: the packaged ``fraudshop.toml``, overlaid key by key by a user file
(``--config`` or ``$FRAUDSHOP_CONFIG``), ``FRAUDSHOP_<SECTION>__<KEY>`` variables, then ``--set``
``section.key=value``. Unknown keys are refused; a refused value's error names the key, the value and the rule."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, InitSettingsSource, SettingsConfigDict

ENV_PREFIX = "FRAUDSHOP_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "FRAUDSHOP_CONFIG"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of its allowed range."""


Port = Annotated[int, Field(ge=1, le=65535)]
AtLeastOne = Annotated[int, Field(ge=1)]
NotNegative = Annotated[int, Field(ge=0)]
UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
#: Out of repr and never refused (read as text), so never in an error message; children get it via the environment.
Secret = Annotated[str, BeforeValidator(str), Field(repr=False)]
#: Spark's names for the SASL mechanisms fraudshop configures ("" = no SASL).
SaslMechanism = Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class _Section(BaseModel):
    # Strings from the environment and --set are parsed into each field's type (lax mode); a TOML
    # number given for a text key (kafka_heap = 512) is read as its text.
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True, allow_inf_nan=False)


#: Kafka's rule for a topic's name.
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")]


class KafkaConfig(_Section):
    # The clients check each port when they connect; the form is checked here, for first_port.
    bootstrap_servers: Annotated[str, Field(pattern=r"^[^\s,]+:\d+(\s*,\s*[^\s,]+:\d+)*$")]
    topic: TopicName
    notifications_topic: TopicName
    starting_offsets: Literal["earliest", "latest"]
    fail_on_data_loss: bool
    max_offsets_per_trigger: NotNegative
    topic_partitions: AtLeastOne
    topic_replication_factor: AtLeastOne
    topic_min_insync_replicas: NotNegative
    api_timeout_seconds: Annotated[int, Field(ge=1, le=3600)]
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
    sasl_mechanism: SaslMechanism
    sasl_username: str
    sasl_password: Secret
    ssl_truststore_path: str
    ssl_truststore_password: Secret
    ssl_ca_file: str

    @property
    def first_port(self) -> int:
        return int(self.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])

    @model_validator(mode="after")
    def _insync_replicas_exist(self) -> KafkaConfig:
        # More in-sync replicas required than replicas: every acks=all write would be refused.
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            raise PydanticCustomError(
                "insync_replicas",
                f"topic_min_insync_replicas = {self.topic_min_insync_replicas} must be at most "
                f"topic_replication_factor = {self.topic_replication_factor}",
            )
        return self


class CassandraConfig(_Section):
    hosts: str
    port: Port
    keyspace: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,48}$")]  # written into CQL statements
    replication: str
    local_dc: str
    username: str
    password: Secret
    ssl_enabled: bool
    ssl_truststore_path: str
    ssl_truststore_password: Secret
    ssl_ca_file: str
    concurrent_writes: AtLeastOne

    @property
    def host_list(self) -> list[str]:
        return [h.strip() for h in self.hosts.split(",") if h.strip()]


class JobConfig(_Section):
    spark_master: Annotated[str, Field(pattern=r"^(local(\[[\d*,]+\])?|(spark|k8s)://\S+|yarn)$")]
    # Checked here: Spark would refuse a malformed one only once the job has started.
    trigger_interval: Annotated[str, Field(pattern=r"^(\d+ (day|hour|minute|second|millisecond)s? ?)+$")]
    change_window_hours: Annotated[float, Field(ge=0.001)]  # at least 3.6 s, so the rule never runs on a 0 s window
    change_scan_margin_seconds: NotNegative
    late_changes_per_batch: AtLeastOne
    recent_transaction_seconds: NotNegative
    idle_scan_interval_seconds: Annotated[float, Field(gt=0)]
    max_future_skew_seconds: NotNegative
    max_record_bytes: AtLeastOne
    checkpoint_dir: UserPath
    batch_attempts: AtLeastOne
    batch_retry_backoff_seconds: Annotated[float, Field(ge=0)]
    batch_timeout_seconds: Annotated[float, Field(gt=0)]
    shuffle_partitions: AtLeastOne
    progress_file: str
    py_files: str

    @property
    def change_window_seconds(self) -> int:
        return round(self.change_window_hours * 3600)

    @model_validator(mode="after")
    def _retries_fit_in_the_watchdog_budget(self) -> JobConfig:
        # The watchdog times the whole batch, retries included: waits that alone outlast it would leave
        # no time for the attempts. Failed attempt n waits backoff * 2^(n-1); 2^1000 s outlasts any timeout.
        backoff, timeout = self.batch_retry_backoff_seconds, self.batch_timeout_seconds
        waits = backoff * (2.0 ** (min(self.batch_attempts, 1000) - 1) - 1)
        if waits >= timeout:
            raise PydanticCustomError(
                "retry_budget",
                f"batch_attempts = {self.batch_attempts} with batch_retry_backoff_seconds = {backoff:g} waits "
                f"{waits:g} s, which must be less than batch_timeout_seconds = {timeout:g}",
            )
        return self


class ApiConfig(_Section):
    host: str
    port: Port
    token: Secret
    require_token: bool
    max_future_skew_seconds: NotNegative
    max_id_length: AtLeastOne
    workers: Annotated[int, Field(ge=1, le=64)]

    @property
    def max_future_skew(self) -> timedelta:
        return timedelta(seconds=self.max_future_skew_seconds)


class ProfilesConfig(_Section):
    stale_update_seconds: Annotated[float, Field(gt=0)]
    sweep_interval_seconds: Annotated[float, Field(gt=0)]

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.stale_update_seconds)


class SimilarityConfig(_Section):
    enabled: bool
    threshold: Annotated[float, Field(gt=0, le=1)]
    nearest_cases: Annotated[int, Field(ge=1, le=100)]


class RiskConfig(_Section):
    training_days: Annotated[int, Field(ge=1, le=3660)]
    feedback_delay_days: Annotated[int, Field(ge=0, le=365)]
    regularization: Annotated[float, Field(ge=0, le=100)]
    max_iterations: Annotated[int, Field(ge=1, le=10_000)]


class AuthorizeConfig(_Section):
    confirm_probability: Annotated[float, Field(gt=0, le=1)]
    block_probability: Annotated[float, Field(gt=0, le=1)]
    refresh_seconds: Annotated[float, Field(ge=0.1, le=3600)]

    @model_validator(mode="after")
    def _block_over_confirm(self) -> AuthorizeConfig:
        if self.block_probability < self.confirm_probability:
            raise PydanticCustomError(
                "block_under_confirm",
                f"block_probability = {self.block_probability:g} must be at least "
                f"confirm_probability = {self.confirm_probability:g}",
            )
        return self


#: The desk's roles: a viewer reads the queue and the alerts; an analyst also confirms, dismisses and notes.
DESK_ROLES = ("viewer", "analyst")
#: An analyst's name as the desk records it in alert_review.
_ANALYST_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
#: Shortest accepted sign-in token: guessing one must be out of reach.
MIN_DESK_TOKEN_LENGTH = 16


class DeskUser(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    role: Literal["viewer", "analyst"]
    token: str = Field(repr=False)


def parse_desk_users(text: str) -> dict[str, DeskUser]:
    """``name:role:token`` entries separated by commas. Raises ValueError naming the entry, its token
    masked, and the format."""
    users: dict[str, DeskUser] = {}
    for number, entry in enumerate((part.strip() for part in text.split(",")), start=1):
        if not entry:
            continue
        name, _, rest = entry.partition(":")
        role, _, token = rest.partition(":")
        # Only what cannot be a token is shown (a misplaced colon or a swap can put it anywhere): a role, and a
        # name too short to be a token.
        shown_name = name if len(name) < MIN_DESK_TOKEN_LENGTH and _ANALYST_NAME.match(name) else "?"
        shown = f"entry {number} ({shown_name}:{role if role in DESK_ROLES else '?'}:***)"
        if not _ANALYST_NAME.match(name):
            raise ValueError(f"{shown}: a name is 1-64 of A-Z a-z 0-9 . _ @ -")
        if role not in DESK_ROLES:
            raise ValueError(f"{shown}: the role is one of {', '.join(DESK_ROLES)}")
        if len(token) < MIN_DESK_TOKEN_LENGTH or token.strip() != token:
            raise ValueError(f"{shown}: the token is at least {MIN_DESK_TOKEN_LENGTH} characters, no spaces")
        if name in users:
            raise ValueError(f"{shown}: {name} is given twice")
        users[name] = DeskUser(name=name, role=role, token=token)  # type: ignore[arg-type]
    return users


class DeskConfig(_Section):
    users: Secret
    queue_days: Annotated[int, Field(ge=1, le=90)]
    overview_days: Annotated[int, Field(ge=1, le=366)]
    page_size: Annotated[int, Field(ge=5, le=500)]
    refresh_seconds: Annotated[float, Field(ge=1, le=300)]
    session_hours: Annotated[float, Field(gt=0, le=720)]
    secure_cookie: bool

    @model_validator(mode="after")
    def _users_parse(self) -> DeskConfig:
        try:
            parse_desk_users(self.users)
        except ValueError as error:
            # Named here, not by pydantic: its message would print the tokens.
            raise PydanticCustomError(
                "desk_users", f"users = name:role:token[,name:role:token...]: {error}".replace("{", "(")
            ) from None
        return self

    @property
    def accounts(self) -> dict[str, DeskUser]:
        return parse_desk_users(self.users)


class StackConfig(_Section):
    state_dir: UserPath
    cache_dir: UserPath
    kafka_controller_port: Port
    cassandra_storage_port: Port
    kafka_heap: str
    cassandra_heap: str
    start_timeout_seconds: AtLeastOne


#: A loopback host list for the lab cluster's Spark workers, each written into a command line.
HostList = Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(\s*,\s*[A-Za-z0-9.-]+)*$")]
#: A JVM memory size as -Xmx and Spark take it.
MemorySize = Annotated[str, Field(pattern=r"^\d+[kKmMgG]$")]


class ClusterConfig(_Section):
    spark_worker_hosts: HostList
    spark_worker_port: Port
    spark_webui_port: Port
    spark_worker_cores: AtLeastOne
    spark_worker_memory: MemorySize
    spark_daemon_heap: MemorySize

    @property
    def worker_hosts(self) -> list[str]:
        return [host.strip() for host in self.spark_worker_hosts.split(",")]


class Config(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    kafka: KafkaConfig
    cassandra: CassandraConfig
    job: JobConfig
    api: ApiConfig
    profiles: ProfilesConfig
    similarity: SimilarityConfig
    risk: RiskConfig
    authorize: AuthorizeConfig
    desk: DeskConfig
    stack: StackConfig
    cluster: ClusterConfig

    def with_settings(self, *settings: str) -> Config:
        return _build(_parse_assignments(settings), self.model_dump())


def _parse_assignments(assignments: Iterable[str]) -> dict[str, dict[str, str]]:
    nested: dict[str, dict[str, str]] = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        section, dot, name = key.strip().partition(".")
        if not (equals and section and dot and name):
            raise ConfigError(f"--set expects section.key=value, got {key!r}")  # the value may be a secret
        nested.setdefault(section, {})[name] = value
    return nested


def _variables(environ: Mapping[str, str]) -> list[str]:
    """``FRAUDSHOP_SECTION__KEY`` variables (any case) as ``--set`` settings: a misspelt section is refused too."""
    return [
        f"{name[len(ENV_PREFIX) :].lower().replace(ENV_NESTED_DELIMITER, '.', 1)}={value}"
        for name, value in environ.items()
        if name.upper().startswith(ENV_PREFIX) and ENV_NESTED_DELIMITER in name[len(ENV_PREFIX) :]
    ]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def load_config(
    path: Path | None = None, overrides: Iterable[str] = (), environ: Mapping[str, str] | None = None
) -> Config:
    """``environ`` defaults to ``os.environ``; ``{}`` ignores the process's environment."""
    environ = os.environ if environ is None else environ
    user_file = path or (Path(environ[CONFIG_FILE_ENV]) if environ.get(CONFIG_FILE_ENV) else None)
    user_layer = _read_toml(user_file.expanduser()) if user_file else {}
    # Read as a resource, not a path: spark-submit --py-files ships the package as a zip.
    defaults = tomllib.loads(files(__name__).joinpath("fraudshop.toml").read_text(encoding="utf-8"))
    return _build(_parse_assignments(overrides), _parse_assignments(_variables(environ)), user_layer, defaults)


def _build(*layers: dict[str, Any]) -> Config:
    """``layers`` highest precedence first."""
    sources = [InitSettingsSource(Config, layer) for layer in layers]
    try:
        # mypy sees the __init__ pydantic synthesises from the fields, not BaseSettings' own.
        return Config(_build_sources=(sources, {}))  # type: ignore[call-arg]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    lines = []
    for detail in error.errors():
        key, given = ".".join(str(part) for part in detail["loc"]), detail["input"]
        if detail["type"] == "extra_forbidden":  # a whole unknown section is one error: name its keys
            names = [f"{key}.{name}" for name in given] if isinstance(given, dict) and given else [key]
            lines += [f"unknown setting {name}" for name in names]
        elif len(detail["loc"]) == 2 and detail["type"] != "missing":
            lines.append(f"{key} = {given}: {detail['msg']}")
        else:  # a rule across a section's keys, or a missing key: its input is the section, secrets included
            lines.append(f"{key}: {detail['msg']}")
    return "\n".join(lines)


def as_environment(config: Config) -> dict[str, str]:
    """Variables that rebuild ``config`` in a child process, secrets included, without them on a command line."""
    return {
        f"{ENV_PREFIX}{section.upper()}{ENV_NESTED_DELIMITER}{key.upper()}": str(value).lower()
        if isinstance(value, bool)
        else str(value)
        for section, values in config.model_dump().items()
        for key, value in values.items()
    }
