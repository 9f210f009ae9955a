"""One config object: file, then environment, then --set; clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudshop.config import ConfigError, as_environment, load_config


def test_defaults_come_from_the_conf_file() -> None:
    config = load_config(environ={})
    assert config.kafka.topic == "transaction"
    assert config.cassandra.keyspace == "bank"
    assert config.job.change_window_seconds == 24 * 3600
    assert config.kafka.fail_on_data_loss is True


def test_command_line_beats_environment_beats_file() -> None:
    environ = {"FRAUDSHOP_KAFKA__TOPIC": "from_env", "FRAUDSHOP_CASSANDRA__PORT": "9999"}
    config = load_config(overrides=["kafka.topic=from_cli"], environ=environ)
    assert config.kafka.topic == "from_cli"
    assert config.cassandra.port == 9999


def test_values_are_converted_to_their_declared_types() -> None:
    config = load_config(
        overrides=["kafka.fail_on_data_loss=no", "job.change_window_hours=1.5", "job.checkpoint_dir=~/ckpt"],
        environ={},
    )
    assert config.kafka.fail_on_data_loss is False
    assert config.job.change_window_seconds == 5400
    assert config.job.checkpoint_dir == Path.home() / "ckpt"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("cassandra.port=ninety", "cassandra.port: expected a number (int), got 'ninety'"),
        ("kafka.fail_on_data_loss=maybe", "kafka.fail_on_data_loss: expected true or false, got 'maybe'"),
        ("kafka.topci=x", "unknown setting(s): kafka.topci"),
        ("kafkatopic", "--set expects section.key=value, got 'kafkatopic'"),
    ],
)
def test_bad_settings_say_what_is_wrong(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides=[override], environ={})


def test_a_missing_setting_is_named(tmp_path: Path) -> None:
    partial = tmp_path / "partial.toml"
    partial.write_text('[kafka]\ntopic = "t"\n')
    with pytest.raises(ConfigError, match=r"not set: .*kafka\.bootstrap_servers"):
        load_config(path=partial, environ={})


def test_secrets_stay_out_of_repr_but_reach_child_processes() -> None:
    config = load_config(environ={"FRAUDSHOP_CASSANDRA__PASSWORD": "s3cret", "FRAUDSHOP_KAFKA__SASL_PASSWORD": "k3y"})
    assert "s3cret" not in repr(config) and "k3y" not in repr(config)
    child = as_environment(config)
    assert child["FRAUDSHOP_CASSANDRA__PASSWORD"] == "s3cret"
    assert load_config(environ=child) == config
