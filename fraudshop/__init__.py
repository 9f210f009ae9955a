"""fraudshop: real-time "profile change → suspicious transaction" detection on Kafka, Spark and Cassandra."""
