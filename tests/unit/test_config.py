"""One config object: packaged defaults, a user file, the environment, then --set; ranges checked,
and every refused value named with what is allowed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import fraudshop
from fraudshop.config import ConfigError, as_environment, load_config


def refusal(*overrides: str, environ: dict[str, str] | None = None, path: Path | None = None) -> str:
    """The message of the ConfigError that ``overrides`` cause."""
    with pytest.raises(ConfigError) as refused:
        load_config(path=path, overrides=overrides, environ={} if environ is None else environ)
    return str(refused.value)


def test_defaults_come_from_the_packaged_file() -> None:
    config = load_config(environ={})
    assert config.kafka.topic == "transaction"
    assert config.kafka.first_port == 9092
    assert config.cassandra.host_list == ["127.0.0.1"]
    assert config.job.change_window_seconds == 24 * 3600
    assert config.kafka.fail_on_data_loss is True
    assert config.job.checkpoint_dir == Path.home() / ".local/state/fraudshop/stack/checkpoints/detect_fraud"


def test_the_config_and_the_schema_load_from_a_zipped_package(tmp_path: Path) -> None:
    # spark-submit --py-files fraudshop.zip: on the driver, packaged files are zip members, not paths.
    package = Path(fraudshop.__file__).parent
    archive = shutil.make_archive(str(tmp_path / "fraudshop"), "zip", root_dir=package.parent, base_dir=package.name)
    code = (
        "import fraudshop; from fraudshop.config import load_config; from fraudshop.model.tables import schema_cql\n"
        f"assert fraudshop.__file__.startswith({archive!r}), fraudshop.__file__\n"
        "print(load_config().cassandra.keyspace, 'CREATE TABLE' in schema_cql())"
    )
    # -S: no site-packages .pth files, so the editable install cannot lead back to this checkout.
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{archive}:{sysconfig.get_paths()['purelib']}", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bank", "True"]


def test_a_user_file_overlays_the_defaults_key_by_key(tmp_path: Path) -> None:
    user_file = tmp_path / "mine.toml"
    user_file.write_text('[kafka]\ntopic = "from_file"\n[job]\nbatch_attempts = 3\n')
    config = load_config(path=user_file, environ={})
    assert (config.kafka.topic, config.job.batch_attempts) == ("from_file", 3)
    # Keys the file leaves out keep their defaults, in its sections and in the others.
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert config.cassandra.keyspace == "bank"


def test_fraudshop_config_names_the_user_file_and_config_beats_it(tmp_path: Path) -> None:
    by_variable, by_option = tmp_path / "variable.toml", tmp_path / "option.toml"
    by_variable.write_text('[kafka]\ntopic = "from_variable"\n')
    by_option.write_text('[kafka]\ntopic = "from_option"\n')
    assert load_config(environ={"FRAUDSHOP_CONFIG": str(by_variable)}).kafka.topic == "from_variable"
    assert load_config(path=by_option, environ={"FRAUDSHOP_CONFIG": str(by_variable)}).kafka.topic == "from_option"


def test_set_beats_environment_beats_user_file_beats_defaults(tmp_path: Path) -> None:
    user_file = tmp_path / "mine.toml"
    user_file.write_text('[kafka]\ntopic = "from_file"\n[cassandra]\nkeyspace = "from_file"\nport = 1111\n')
    # Variable names are case-insensitive.
    environ = {"FRAUDSHOP_KAFKA__TOPIC": "from_env", "fraudshop_cassandra__port": "9999"}
    config = load_config(path=user_file, overrides=["kafka.topic=from_cli"], environ=environ)
    assert config.kafka.topic == "from_cli"
    assert config.cassandra.port == 9999
    assert config.cassandra.keyspace == "from_file"
    assert config.api.port == 8080


def test_environ_given_replaces_the_process_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    user_file = tmp_path / "mine.toml"
    user_file.write_text('[kafka]\ntopic = "from_file"\n')
    monkeypatch.setenv("FRAUDSHOP_KAFKA__TOPIC", "from_process")
    monkeypatch.setenv("FRAUDSHOP_CONFIG", str(user_file))
    assert load_config(environ={}).kafka.topic == "transaction"
    assert load_config().kafka.topic == "from_process"


def test_values_are_converted_to_their_declared_types() -> None:
    config = load_config(
        overrides=["kafka.fail_on_data_loss=no", "job.change_window_hours=1.5", "job.checkpoint_dir=~/ckpt"],
        environ={},
    )
    assert config.kafka.fail_on_data_loss is False
    assert config.job.change_window_seconds == 5400
    assert config.job.checkpoint_dir == Path.home() / "ckpt"


def test_unknown_settings_are_named_from_every_layer(tmp_path: Path) -> None:
    assert refusal("kafka.topci=x", "bogus.key=1") == "unknown setting kafka.topci\nunknown setting bogus.key"
    user_file = tmp_path / "mine.toml"
    user_file.write_text('[kafka]\ntopc = "t"\n[stak]\nheap = "1g"\n')
    assert refusal(path=user_file) == "unknown setting kafka.topc\nunknown setting stak.heap"
    assert refusal(environ={"FRAUDSHOP_KAFKA__TOPCI": "x"}) == "unknown setting kafka.topci"
    # pydantic-settings' own environment source would skip a misspelt section silently.
    assert refusal(environ={"FRAUDSHOP_KAFKAA__TOPIC": "x"}) == "unknown setting kafkaa.topic"


def test_a_malformed_set_is_named_without_its_value() -> None:
    assert refusal("kafkatopic") == "--set expects section.key=value, got 'kafkatopic'"
    assert refusal("password=s3cret") == "--set expects section.key=value, got 'password'"


def test_variables_without_a_section_delimiter_are_not_settings() -> None:
    environ = {"FRAUDSHOP_TEST_PORT_OFFSET": "3", "FRAUDSHOP_KAFKA": '{"topic": "t"}'}
    assert load_config(environ=environ) == load_config(environ={})


def test_a_missing_or_broken_user_file_is_named(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    assert refusal(path=absent) == f"cannot read config file {absent}: No such file or directory"
    broken = tmp_path / "broken.toml"
    broken.write_text("[kafka\n")
    assert refusal(path=broken).startswith(f"config file {broken} is not valid TOML: ")


@pytest.mark.parametrize(
    ("setting", "allowed"),
    [
        ("cassandra.port=0", "greater than or equal to 1"),
        ("cassandra.port=65536", "less than or equal to 65535"),
        ("api.port=70000", "less than or equal to 65535"),
        ("stack.kafka_controller_port=0", "greater than or equal to 1"),
        ("job.batch_attempts=0", "greater than or equal to 1"),
        ("job.change_window_hours=0", "greater than or equal to 0.001"),
        ("job.change_window_hours=-2.5", "greater than or equal to 0.001"),
        ("job.change_window_hours=inf", "finite number"),
        ("job.batch_timeout_seconds=nan", "finite number"),
        ("job.late_changes_per_batch=0", "greater than or equal to 1"),
        ("job.idle_scan_interval_seconds=0", "greater than 0"),
        ("job.change_scan_margin_seconds=-1", "greater than or equal to 0"),
        ("job.batch_timeout_seconds=0", "greater than 0"),
        ("kafka.max_offsets_per_trigger=-1", "greater than or equal to 0"),
        ("kafka.sasl_mechanism=GSSAPI", "'', 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'"),
        ("kafka.security_protocol=TLS", "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"),
        ("kafka.starting_offsets=now", "'earliest' or 'latest'"),
        ("job.trigger_interval=2 secs", "(day|hour|minute|second|millisecond)"),
        ("job.spark_master=local(2)", "(spark|k8s)://"),
        ("kafka.bootstrap_servers=k1", r"[^\s,]+:\d+"),
        ("cassandra.keyspace=bad-name", "[A-Za-z0-9_]{1,48}"),
        ("cassandra.port=ninety", "valid integer"),
        ("kafka.fail_on_data_loss=maybe", "valid boolean"),
        ("authorize.confirm_probability=0", "greater than 0"),
        ("authorize.block_probability=1.5", "less than or equal to 1"),
        ("authorize.refresh_seconds=0.01", "greater than or equal to 0.1"),
    ],
)
def test_each_refused_value_names_key_value_and_what_is_allowed(setting: str, allowed: str) -> None:
    key, _, value = setting.partition("=")
    message = refusal(setting)
    assert message.startswith(f"{key} = {value}: "), message
    assert allowed in message


@pytest.mark.parametrize(
    "setting",
    [
        "job.trigger_interval=500 milliseconds",
        "job.trigger_interval=1 minute 30 seconds",
        "job.trigger_interval=0 seconds",
        "job.spark_master=local[*]",
        "job.spark_master=spark://spark-master:7077",
        "job.spark_master=yarn",
        "kafka.sasl_mechanism=SCRAM-SHA-256",
        "cassandra.port=65535",
        "api.port=1",
        "kafka.bootstrap_servers=k1:1, [::1]:65535",
    ],
)
def test_values_at_the_edges_of_their_ranges_are_accepted(setting: str) -> None:
    load_config(overrides=[setting], environ={})


def test_refused_values_from_a_file_are_named_like_those_from_the_command_line_and_all_at_once(tmp_path: Path) -> None:
    user_file = tmp_path / "mine.toml"
    user_file.write_text("[cassandra]\nport = 0\n[job]\nbatch_attempts = 0\n")
    assert refusal(path=user_file).splitlines() == refusal("cassandra.port=0", "job.batch_attempts=0").splitlines()
    assert refusal(path=user_file).splitlines() == [
        "cassandra.port = 0: Input should be greater than or equal to 1",
        "job.batch_attempts = 0: Input should be greater than or equal to 1",
    ]


@pytest.mark.parametrize(
    ("attempts", "backoff", "timeout", "waits"),
    [(9, 2.0, 300, "510"), (6, 2.0, 62, "62"), (5000, 1.0, 300, "5.35754e+300")],
)
def test_retry_waits_that_reach_the_watchdog_timeout_are_refused(
    attempts: int, backoff: float, timeout: int, waits: str
) -> None:
    message = refusal(
        f"job.batch_attempts={attempts}",
        f"job.batch_retry_backoff_seconds={backoff}",
        f"job.batch_timeout_seconds={timeout}",
    )
    assert message == (
        f"job: batch_attempts = {attempts} with batch_retry_backoff_seconds = {backoff:g} waits {waits} s, "
        f"which must be less than batch_timeout_seconds = {timeout}"
    )


@pytest.mark.parametrize(
    ("attempts", "backoff", "timeout"), [(6, 2.0, 300), (6, 2.0, 63), (1, 1000.0, 1), (5000, 0.0, 1), (9, 1.0, 256)]
)
def test_retry_waits_under_the_watchdog_timeout_are_accepted(attempts: int, backoff: float, timeout: int) -> None:
    settings = [f"job.batch_attempts={attempts}", f"job.batch_retry_backoff_seconds={backoff}"]
    load_config(overrides=[*settings, f"job.batch_timeout_seconds={timeout}"], environ={})


def test_a_block_probability_under_the_confirm_probability_is_refused() -> None:
    message = refusal("authorize.confirm_probability=0.4", "authorize.block_probability=0.3")
    assert message == "authorize: block_probability = 0.3 must be at least confirm_probability = 0.4"
    load_config(overrides=["authorize.confirm_probability=0.4", "authorize.block_probability=0.4"], environ={})


SECRETS = {
    "FRAUDSHOP_CASSANDRA__PASSWORD": "cass-s3cret",
    "FRAUDSHOP_CASSANDRA__SSL_TRUSTSTORE_PASSWORD": "ts-s3cret",
    "FRAUDSHOP_KAFKA__SASL_PASSWORD": "sasl-s3cret",
    "FRAUDSHOP_KAFKA__SSL_TRUSTSTORE_PASSWORD": "ks-s3cret",
    "FRAUDSHOP_API__TOKEN": "t0ken-s3cret",
}


def test_secrets_stay_out_of_repr_but_reach_child_processes() -> None:
    config = load_config(environ=SECRETS)
    assert config.cassandra.password == "cass-s3cret" and config.api.token == "t0ken-s3cret"
    shown = repr(config) + str(config) + repr(config.kafka) + repr(config.cassandra) + repr(config.api)
    assert "s3cret" not in shown, shown
    child = as_environment(config)
    assert {name: child[name] for name in SECRETS} == SECRETS


def test_secrets_stay_out_of_error_messages(tmp_path: Path) -> None:
    # Errors in the sections that hold secrets show the refused values only.
    message = refusal("cassandra.port=0", "kafka.sasl_mechanism=GSSAPI", "api.port=0", environ=SECRETS)
    assert len(message.splitlines()) == 3 and "s3cret" not in message, message
    # A secret is never refused, whatever its type, so its value cannot reach an error message.
    user_file = tmp_path / "mine.toml"
    user_file.write_text("[api]\ntoken = 12345\n[cassandra]\npassword = true\n")
    config = load_config(path=user_file, environ={})
    assert (config.api.token, config.cassandra.password) == ("12345", "True")


def test_as_environment_rebuilds_the_same_config() -> None:
    config = load_config(
        overrides=[
            "kafka.fail_on_data_loss=false",
            "job.change_window_hours=1.5",
            "job.progress_file=/tmp/progress.jsonl",
            "cassandra.replication={'class': 'NetworkTopologyStrategy', 'dc1': 3}",
        ],
        environ=SECRETS,
    )
    assert load_config(environ=as_environment(config)) == config


def test_with_settings_derives_a_validated_config() -> None:
    config = load_config(environ=SECRETS)
    derived = config.with_settings("kafka.topic=scratch_1", "job.checkpoint_dir=~/scratch")
    assert derived.kafka.topic == "scratch_1"
    assert derived.job.checkpoint_dir == Path.home() / "scratch"
    assert derived.cassandra.password == "cass-s3cret"
    assert derived.with_settings("kafka.topic=transaction", f"job.checkpoint_dir={config.job.checkpoint_dir}") == config
    with pytest.raises(ConfigError, match=r"^job\.batch_attempts = 0: Input should be greater than or equal to 1$"):
        config.with_settings("job.batch_attempts=0")
    with pytest.raises(ConfigError, match=r"^unknown setting job\.attempts$"):
        config.with_settings("job.attempts=3")


def test_a_config_is_immutable() -> None:
    config = load_config(environ={})
    with pytest.raises(ValueError, match="frozen"):
        config.kafka.topic = "other"
