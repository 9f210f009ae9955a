"""``fraudshop bench``: throughput and event→alert latency of the detection job on the local stack,
side by side with a baseline that follows the original proofshop's design."""
