"""What the job tells the operator when its stream fails, and the exit code it stops with."""

from __future__ import annotations

from fraudshop.pipeline.stream import KAFKA_DATA_LOSS_EXIT_CODE, explain_stream_failure

# The shape of Spark 3.5's error when a batch finds its offsets expired: the query's failure
# wraps the Python traceback, which wraps the Kafka source's own sentence.
SPARK_DATA_LOSS = """[STREAM_FAILED] Query [id = 1, runId = 2] terminated with exception: An exception was raised
  py4j.protocol.Py4JJavaError: An error occurred while calling o123.collectToPython.
: java.lang.IllegalStateException: Cannot fetch offset 100 (GroupId: spark-kafka-source-1, TopicPartition: t-0).
Some data may have been lost because they are not available in Kafka any more; either the
 data was aged out by Kafka or the topic may have been deleted before all the data in the
 topic was processed. If you don't want your streaming query to fail on such cases, set the
 source option "failOnDataLoss" to "false".
"""


def test_kafka_data_loss_says_what_happened_what_to_do_and_exits_65() -> None:
    message, exit_code = explain_stream_failure(RuntimeError(SPARK_DATA_LOSS))
    assert exit_code == KAFKA_DATA_LOSS_EXIT_CODE == 65
    assert message.startswith("Kafka no longer holds records this job had not read yet")
    assert "kafka.fail_on_data_loss=false" in message
    assert message.endswith("Spark said: Cannot fetch offset 100 (GroupId: spark-kafka-source-1, TopicPartition: t-0)")


def test_any_other_failure_keeps_only_the_first_line_of_spark_error() -> None:
    message, exit_code = explain_stream_failure(RuntimeError("boom: connection refused\n=== Streaming Query ===\nplan"))
    assert (message, exit_code) == ("the detection stream failed: boom: connection refused", 1)
