"""A checkpoint of the stream's earlier two-source form (Kafka and ticks) is moved aside, and the new one
starts from its last committed Kafka offsets; any other checkpoint is left alone."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from fraudshop.io.checkpoints import move_aside_two_source_checkpoint

KAFKA_OFFSETS = '{"transaction":{"0":120,"1":95}}'
METADATA = '{"batchWatermarkMs":0,"batchTimestampMs":1795890000000,"conf":{}}'


def checkpoint(root: Path, sources_per_batch: dict[int, list[str]], committed: list[int]) -> Path:
    (root / "offsets").mkdir(parents=True)
    (root / "commits").mkdir()
    for batch, sources in sources_per_batch.items():
        (root / "offsets" / str(batch)).write_text("\n".join(["v1", METADATA, *sources]))
    for batch in committed:
        (root / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')
    return root


def test_a_two_source_checkpoint_is_moved_aside_and_its_committed_kafka_offsets_returned(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Batch 3 was planned but never committed: the new checkpoint starts after batch 2, so batch 3 runs again.
    root = checkpoint(
        tmp_path / "detect_fraud",
        {2: [KAFKA_OFFSETS, "41"], 3: ['{"transaction":{"0":150,"1":99}}', "43"]},
        committed=[1, 2],
    )
    assert move_aside_two_source_checkpoint(spark, str(root)) == KAFKA_OFFSETS
    assert not root.exists()
    [moved] = tmp_path.glob("detect_fraud.two-sources-*")
    assert (moved / "offsets" / "3").exists()


def test_a_one_source_checkpoint_or_none_is_left_alone(spark: SparkSession, tmp_path: Path) -> None:
    root = checkpoint(tmp_path / "current", {0: [KAFKA_OFFSETS]}, committed=[0])
    assert move_aside_two_source_checkpoint(spark, str(root)) is None
    assert (root / "offsets" / "0").exists()
    assert move_aside_two_source_checkpoint(spark, str(tmp_path / "never-started")) is None


def test_a_two_source_checkpoint_that_committed_nothing_is_moved_and_the_config_decides_the_start(
    spark: SparkSession, tmp_path: Path
) -> None:
    fresh = checkpoint(tmp_path / "fresh", {0: [KAFKA_OFFSETS, "1"]}, committed=[])
    assert move_aside_two_source_checkpoint(spark, str(fresh)) is None
    assert not fresh.exists()
