"""``fraudshop evaluate``: does fraudshop detect fraud? Labelled card transactions in the format of the
Fraud Detection Handbook's simulator are replayed day by day through Kafka, the running job and
Cassandra, with the labels coming back as confirmed cases after a feedback delay; the test period's
stored scores are then measured with the handbook's metrics (``docs/evaluation.md``)."""
