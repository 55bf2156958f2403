"""Reading history a page at a time: which message rows make a page, then only those rows read in full.

A page is chosen from a keys-and-sizes probe of each partition (small answers), so a page never holds
more than `MAX_PAGE_BYTES` of payload (but always at least one message), and the full rows, up to 1 MiB
each, are read only for the messages that go on the page.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.data.tables.aio import TableClient

from wps_upstream.store.keys import MESSAGE_ROW_PREFIX, MESSAGE_ROWS_END, row_key_ticks, ticks, ticks_row_key

MAX_PAGE_BYTES = 4 * 1024 * 1024
"""Payload bytes one page of history holds at most (a single larger message still makes a page)."""

SCAN_LIMIT = 1000  # message keys one probe of a time window reads at most
_WINDOW_STEPS = 64  # halvings of the time window before a catch-up reads its window whole

_IN_RANGE = "PartitionKey eq @pk and RowKey gt @low and RowKey lt @high"
_BETWEEN = "PartitionKey eq @pk and RowKey ge @first and RowKey le @last"


@dataclass(frozen=True, slots=True)
class RowRef:
    """A message row as the probe sees it: where it is, and its payload size."""

    partition: str
    row_key: str
    size: int


async def probe(
    table: TableClient, partitions: Sequence[str], low: str, high: str, count: int
) -> list[RowRef]:
    """The first `count` message rows of each partition with low < RowKey < high, merged by RowKey."""
    found = await asyncio.gather(*(_probe_one(table, pk, low, high, count) for pk in partitions))
    return list(heapq.merge(*found, key=lambda ref: ref.row_key))


async def _probe_one(table: TableClient, partition: str, low: str, high: str, count: int) -> list[RowRef]:
    refs: list[RowRef] = []
    rows = table.query_entities(
        _IN_RANGE,
        parameters={"pk": partition, "low": low, "high": min(high, MESSAGE_ROWS_END)},
        select=["RowKey", "size"],
        results_per_page=min(count, 1000),
    )
    async for row in rows:
        refs.append(RowRef(partition, row["RowKey"], int(row.get("size") or 0)))
        if len(refs) == count:
            break
    return refs


def within_budget(refs: Sequence[RowRef], limit: int) -> list[RowRef]:
    """The leading refs that fit `limit` messages and MAX_PAGE_BYTES of payload (at least one)."""
    chosen: list[RowRef] = []
    total = 0
    for ref in refs[:limit]:
        total += ref.size
        if chosen and total > MAX_PAGE_BYTES:
            break
        chosen.append(ref)
    return chosen


async def read_rows(table: TableClient, refs: Sequence[RowRef]) -> dict[str, dict[str, Any]]:
    """The full rows of `refs`, by RowKey. Per partition the refs are consecutive rows, so one range
    query each reads exactly them."""
    spans: dict[str, list[str]] = {}
    for ref in refs:
        spans.setdefault(ref.partition, []).append(ref.row_key)
    found = await asyncio.gather(
        *(_read_span(table, pk, min(keys), max(keys), len(keys)) for pk, keys in spans.items())
    )
    return {row["RowKey"]: row for rows in found for row in rows}


async def _read_span(
    table: TableClient, partition: str, first: str, last: str, count: int
) -> list[dict[str, Any]]:
    rows = table.query_entities(
        _BETWEEN, parameters={"pk": partition, "first": first, "last": last}, results_per_page=count
    )
    return [row async for row in rows]


@dataclass(frozen=True, slots=True)
class Band:
    """The message rows just newer than a given row, newest first, and whether newer ones lie beyond."""

    refs: list[RowRef]
    bounded: bool  # True when a time window cut the band: rows newer than the window may exist


async def band_after(table: TableClient, partitions: Sequence[str], row_key: str, limit: int) -> Band:
    """The rows newer than `row_key` that a catch-up page starts from: at least `limit` of them when they
    exist, never more than SCAN_LIMIT (so a long backlog is not read whole to find its oldest end).

    Row keys sort newest first, so the rows just after a message are the END of its key range: a time
    window after the message's time, narrowed by halving until it holds between `limit` and SCAN_LIMIT
    rows, finds them with bounded reads.
    """
    everything = await probe(table, partitions, MESSAGE_ROW_PREFIX, row_key, SCAN_LIMIT + 1)
    if len(everything) <= SCAN_LIMIT:
        return Band(everything, bounded=False)
    start = row_key_ticks(row_key)
    low, high = 0, ticks(_utc_now()) - start + 1  # window lengths known too small / too large
    for _ in range(_WINDOW_STEPS):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        refs = await probe(table, partitions, ticks_row_key(start + middle), row_key, SCAN_LIMIT + 1)
        if len(refs) > SCAN_LIMIT:
            high = middle
        elif len(refs) >= limit:
            return Band(refs, bounded=True)
        else:
            low = middle
    # More than SCAN_LIMIT messages inside one narrowest window: read that window whole.
    return Band(await probe(table, partitions, ticks_row_key(start + high), row_key, 10**9), bounded=True)


def _utc_now() -> datetime:
    return datetime.now(UTC)
