"""The ClickHouse datasource every panel and alert rule reads, and its query model.

The Foundation SDK has no ClickHouse query type, so `SQL` is one: the query model of the
grafana-clickhouse-datasource plugin v4 (`src/types/sql.ts`, `src/types/queryBuilder.ts`),
with `format` as sqlds numbers it (0 time series, 1 table).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "passwordless-clickhouse"
DATASOURCE_NAME = "Passwordless rollout (ClickHouse)"
DATASOURCE = DataSourceRef(type_val=PLUGIN_TYPE, uid=DATASOURCE_UID)
# The plugin migrates queries saved by older versions; this marks ours as written for v4.
PLUGIN_VERSION = "4.0.0"


class Format(IntEnum):
    TIME_SERIES = 0
    TABLE = 1


@dataclass
class ClickHouseQuery(cogvariants.Dataquery):
    ref_id: str
    sql: str
    format: Format

    def to_json(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "pluginVersion": PLUGIN_VERSION,
            "editorType": "sql",
            "queryType": "timeseries" if self.format is Format.TIME_SERIES else "table",
            "format": int(self.format),
            "rawSql": self.sql,
        }


class SQL(cogbuilder.Builder[ClickHouseQuery]):
    """A raw-SQL target for a panel or an alert rule's query."""

    def __init__(self, sql: str, *, ref_id: str = "A", time_series: bool = False) -> None:
        self._query = ClickHouseQuery(
            ref_id, sql.strip(), Format.TIME_SERIES if time_series else Format.TABLE
        )

    def build(self) -> ClickHouseQuery:
        return self._query


@dataclass(frozen=True)
class Connection:
    """Where Grafana reaches ClickHouse, as the plugin's settings name it (jsonData)."""

    host: str
    port: int | str
    protocol: str  # "native" (9000/9440) or "http" (8123/8443)
    secure: bool | str
    database: str
    username: str


def datasource(connection: Connection, password: str) -> dict[str, Any]:
    """The datasource as Grafana's datasource API and provisioning files both take it."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_TYPE,
        "access": "proxy",
        "isDefault": False,
        "editable": True,
        "jsonData": {
            "host": connection.host,
            "port": connection.port,
            "protocol": connection.protocol,
            "secure": connection.secure,
            "defaultDatabase": connection.database,
            "username": connection.username,
        },
        "secureJsonData": {"password": password},
    }


def column_kind(clickhouse_type: str) -> str:
    """How Grafana reads a ClickHouse column: "time", "number", "text", or the type itself."""
    base = clickhouse_type
    for wrapper in ("Nullable(", "LowCardinality("):
        base = base.removeprefix(wrapper)
    if base.startswith(("DateTime", "Date")):
        return "time"
    if base.startswith(("Int", "UInt", "Float", "Decimal")):
        return "number"
    if base.startswith(("String", "FixedString", "Enum")):
        return "text"
    return base
