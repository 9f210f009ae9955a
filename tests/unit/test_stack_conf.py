"""The local stack's server configuration templates (every placeholder filled, none forgotten) and jar resolution."""

from __future__ import annotations

import os
import re
from pathlib import Path

import jinja2
import pytest

from fraudshop.config import load_config
from fraudshop.lab.stack.cassandra import prepare_cassandra
from fraudshop.lab.stack.conf import render_stack_conf
from fraudshop.lab.stack.jars import _downloaded_file
from fraudshop.lab.stack.kafka import prepare_kafka


def test_a_placeholder_left_unfilled_is_an_error_not_an_empty_value() -> None:
    with pytest.raises(jinja2.UndefinedError, match="cluster_name"):
        render_stack_conf("cassandra.yaml", home="/tmp/x", native_port=9042)


def test_the_servers_configs_are_filled_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(
        overrides=(f"stack.state_dir={tmp_path}", f"stack.cache_dir={tmp_path / 'cache'}", "cassandra.port=19042"),
        environ={},
    )
    # No Maven and no Kafka storage formatting here: only the templates are under test.
    monkeypatch.setattr("fraudshop.lab.stack.kafka.resolve_classpath", lambda *args: tmp_path)
    monkeypatch.setattr("fraudshop.lab.stack.cassandra.resolve_classpath", lambda *args: tmp_path)
    monkeypatch.setattr("fraudshop.lab.stack.kafka.subprocess.run", lambda *args, **kwargs: None)
    prepare_kafka(config)
    prepare_cassandra(config)
    kafka = (tmp_path / "kafka" / "server.properties").read_text()
    cassandra = (tmp_path / "cassandra" / "conf" / "cassandra.yaml").read_text()
    for text in (kafka, cassandra):
        assert not re.search(r"\{\{|\}\}|\$\w", text)
    assert f"listeners=PLAINTEXT://127.0.0.1:{config.kafka.first_port}," in kafka
    assert f"controller.quorum.voters=1@127.0.0.1:{config.stack.kafka_controller_port}\n" in kafka
    assert f"log.dirs={tmp_path / 'kafka' / 'data'}\n" in kafka
    assert f"num.partitions={config.kafka.topic_partitions}\n" in kafka
    assert f"native_transport_port: {config.cassandra.port}\n" in cassandra
    assert f'- seeds: "127.0.0.1:{config.stack.cassandra_storage_port}"' in cassandra
    assert f"commitlog_directory: {tmp_path / 'cassandra'}/commitlog\n" in cassandra
    # CASSANDRA-21644: as many writers as processors, so a commit-log replay stays within the vector pool.
    assert f"concurrent_writes: {len(os.sched_getaffinity(0))}\n" in cassandra


def test_a_maven_download_is_named_by_its_file_not_by_its_speed() -> None:
    line = (
        "Downloaded from central: https://repo.maven.apache.org/maven2/org/slf4j/slf4j-api/2.0.9/"
        "slf4j-api-2.0.9.jar (65 kB at 1.2 MB/s)\n"
    )
    assert _downloaded_file(line) == "slf4j-api-2.0.9.jar"
