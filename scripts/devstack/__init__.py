"""The processes of a dev stack, for tests, benchmarks and scripts alike: redis-server,
PostgreSQL, daphne workers, nginx with the shipped site config, TLS certificates.

Everything runs on 127.0.0.1, in temp dirs of its own, and is stopped by PID (see
``base``). Modules: ``base`` (Service, ports, logs), ``redis``, ``postgres``, ``daphne``,
``stack`` (DjangoStack: migrate + workers), ``tls``, ``nginx`` and ``nginx_conf``
(the shipped site on loopback), ``production`` (nginx + TLS + unit workers). Import the names from here:

    from scripts.devstack import DjangoStack, RedisServer
"""

from .base import (
    COMMAND_TIMEOUT,
    KEEP_DIRS_ENV,
    REPO_ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Command,
    Service,
    ServiceError,
    free_port,
    holds_listener,
    log_tail,
    port_open,
    stop_all,
)
from .daphne import DaphneServer, UnitDaphne, unit_daphne_argv
from .nginx import NGINX, Nginx, nginx_available
from .nginx_conf import SHIPPED_SITE, loopback_site
from .postgres import PostgresServer, find_pg_bin, postgres_unavailable_reason
from .production import BEHIND_PROXY_ENV, ProductionStack, TlsProxy
from .redis import RedisServer, find_redis_server, redis_command, redis_pipeline
from .stack import (
    BULK_LIMITS,
    SHARED_ADDRESS_LIMITS,
    DjangoStack,
    migrate_database,
    migrated_sqlite_template,
    stack_env,
)
from .tls import self_signed_cert, staging_cert

__all__ = [
    "BEHIND_PROXY_ENV",
    "SHIPPED_SITE",
    "ProductionStack",
    "TlsProxy",
    "loopback_site",
    "BULK_LIMITS",
    "COMMAND_TIMEOUT",
    "KEEP_DIRS_ENV",
    "REPO_ROOT",
    "SHARED_ADDRESS_LIMITS",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "DaphneServer",
    "DjangoStack",
    "NGINX",
    "Nginx",
    "PostgresServer",
    "RedisServer",
    "Command",
    "Service",
    "ServiceError",
    "UnitDaphne",
    "find_pg_bin",
    "find_redis_server",
    "free_port",
    "holds_listener",
    "log_tail",
    "migrate_database",
    "migrated_sqlite_template",
    "nginx_available",
    "port_open",
    "postgres_unavailable_reason",
    "redis_command",
    "redis_pipeline",
    "self_signed_cert",
    "stack_env",
    "staging_cert",
    "stop_all",
    "unit_daphne_argv",
]
