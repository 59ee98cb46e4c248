"""What every command does with the failures it expects: one plain line on stderr and an exit
code, never a traceback (the `pipeline` command, `pipeline roster import`, the collectors)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def warehouse_errors(work: Callable[[], int]) -> int:
    """Run a warehouse (or worker) command; its failures become one plain line on stderr."""
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from pipeline.runtime.broker import TopicSetupError
    from pipeline.sinks.warehouse import WarehouseError

    try:
        return work()
    except (WarehouseError, TopicSetupError) as exc:
        print(f"pipeline: {exc}", file=sys.stderr)
        return 2
    except ClickHouseError as exc:
        print(
            f"pipeline: the warehouse refused the query: {' '.join(str(exc).split())}",
            file=sys.stderr,
        )
        return 1
