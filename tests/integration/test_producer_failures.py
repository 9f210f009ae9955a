"""Records a real broker refuses make the send fail, naming how many; nothing is dropped silently."""

from __future__ import annotations

import itertools

import pytest
from kafka.errors import MessageSizeTooLargeError

from fraudshop.config import Config
from fraudshop.io.kafka.producer import UndeliveredRecordsError, checked_sender, send_transactions
from fraudshop.io.kafka.topics import ensure_topic
from fraudshop.lab.workload import synthetic_transactions

pytestmark = pytest.mark.integration

#: Over the broker's message.max.bytes (1 MiB by default).
TOO_LARGE = b"x" * (2 * 1024 * 1024)


def test_a_record_the_broker_refuses_fails_the_send(isolated_config: Config) -> None:
    ensure_topic(isolated_config.kafka)
    # The client's own size limit raised, so the record reaches the broker, which refuses it:
    # the failure arrives later, on the record's future, as any broker-side failure does.
    with (
        pytest.raises(UndeliveredRecordsError, match=r"[12] of 3 records were not delivered") as raised,
        checked_sender(isolated_config.kafka, max_request_size=8 * 1024 * 1024) as sender,
    ):
        # The first is flushed alone, so it is delivered. kafka-python may fail the record sent
        # after a refused one too (seen: both counted): either way every failure is counted.
        sender.send(b"first")
        sender.producer.flush()
        sender.send(TOO_LARGE)
        sender.send(b"last")
    assert isinstance(raised.value.first_error, MessageSizeTooLargeError)
    assert raised.value.attempted == 3


def test_send_transactions_names_how_many_records_failed(isolated_config: Config) -> None:
    ensure_topic(isolated_config.kafka)
    transactions = list(itertools.islice(synthetic_transactions(3, seed=1), 4))
    transactions[2] = {**transactions[2], "merchant": TOO_LARGE.decode()}
    with pytest.raises(UndeliveredRecordsError, match="1 of 3 records were not delivered"):
        send_transactions(isolated_config.kafka, transactions, rate=0)
