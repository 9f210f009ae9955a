"""cassandra-driver sessions built from the fraudshop config."""

from __future__ import annotations

import ssl
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from cassandra import ConsistencyLevel, OperationTimedOut, Timeout, Unavailable
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    LoadBalancingPolicy,
    TokenAwarePolicy,
    WhiteListRoundRobinPolicy,
)
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from fraudshop.config import CassandraConfig

#: What the driver raises when Cassandra does not answer in time, or at all: a write's outcome is unknown.
CASSANDRA_UNAVAILABLE = (Timeout, Unavailable, OperationTimedOut, NoHostAvailable)


def connect(cassandra: CassandraConfig, only_node: str | None = None) -> Cluster:
    """A driver cluster for ``cassandra``. Statements without a consistency of their own run at
    LOCAL_QUORUM (the driver's default is LOCAL_ONE): on a ring, a read then sees every write a quorum
    acknowledged, also while a replica that was down waits for its hints. ``only_node``: every request
    goes to that node, at ONE (a replica check reads what each node holds)."""
    if only_node is None:
        policy: LoadBalancingPolicy = TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cassandra.local_dc or None))
        consistency = ConsistencyLevel.LOCAL_QUORUM
    else:
        policy, consistency = WhiteListRoundRobinPolicy([only_node]), ConsistencyLevel.ONE
    profile = ExecutionProfile(load_balancing_policy=policy, consistency_level=consistency, request_timeout=30)
    return Cluster(
        contact_points=[only_node] if only_node else cassandra.host_list,
        port=cassandra.port,
        auth_provider=PlainTextAuthProvider(cassandra.username, cassandra.password) if cassandra.username else None,
        ssl_context=ssl.create_default_context(cafile=cassandra.ssl_ca_file or None) if cassandra.ssl_enabled else None,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )


@contextmanager
def cassandra_session(
    cassandra: CassandraConfig, keyspace: str | None = None, only_node: str | None = None
) -> Iterator[Session]:
    """A driver session (see :func:`connect`), closed with its cluster on exit."""
    cluster = connect(cassandra, only_node)
    try:
        yield cluster.connect(keyspace)
    finally:
        cluster.shutdown()


_prepared: weakref.WeakKeyDictionary[Session, dict[str, PreparedStatement]] = weakref.WeakKeyDictionary()
_preparing = threading.Lock()


def prepared(session: Session, cql: str, consistency: int | None = None) -> PreparedStatement:
    """``cql`` prepared once per session: each ``Session.prepare`` is a round trip to every node; run at
    ``consistency`` when given (a statement's consistency is the same wherever it is used)."""
    with _preparing:
        statements = _prepared.setdefault(session, {})
    if cql not in statements:  # two threads may both prepare it once: harmless
        statements[cql] = session.prepare(cql)
    statement = statements[cql]
    if consistency is not None:
        statement.consistency_level = consistency
    return statement


def logged_batch() -> BatchStatement:
    """A logged batch (all of it applies, or none), at LOCAL_QUORUM: how every write of several rows
    that must go together is made (a change's three tables, a profile's account holders, a rule's tables)."""
    return BatchStatement(batch_type=BatchType.LOGGED, consistency_level=ConsistencyLevel.LOCAL_QUORUM)
