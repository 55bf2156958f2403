"""Table keys of the message and presence stores: escaping, ordering, idempotency claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wps_upstream.store.keys import (
    claim_row_key,
    escape_key,
    message_partition,
    message_row_key,
    shard_of,
    ticks,
    unescape_key,
)

FORBIDDEN = set("/\\#?") | {chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))}
AWKWARD = "a/b\\c#d?e%f\x00g\x1fh\x7fi\x9fj é😀 k"


def test_escaped_key_contains_no_character_azure_forbids() -> None:
    assert not FORBIDDEN & set(escape_key(AWKWARD))


@pytest.mark.parametrize("value", [AWKWARD, "%41", "%", "plain", "", "conn-ID_1.2~x"])
def test_escaped_key_round_trips(value: str) -> None:
    assert unescape_key(escape_key(value)) == value


def test_ordinary_key_is_left_as_is() -> None:
    assert escape_key("chat-Hub_1.x~y") == "chat-Hub_1.x~y"


def test_distinct_values_escape_to_distinct_keys() -> None:
    assert escape_key("a%2Fb") != escape_key("a/b")


def test_key_longer_than_azure_allows_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        escape_key("/" * 200)


def test_ticks_count_from_year_one_like_dotnet() -> None:
    # .NET: new DateTime(1970, 1, 1).Ticks == 621355968000000000
    assert ticks(datetime(1970, 1, 1, tzinfo=UTC)) == 621_355_968_000_000_000


def test_naive_time_counts_as_utc() -> None:
    assert ticks(datetime(2026, 1, 2, 3, 4, 5, 678901)) == ticks(datetime(2026, 1, 2, 3, 4, 5, 678901, UTC))


def test_message_row_key_is_m_19_digits_and_8_hex() -> None:
    key = message_row_key(datetime(2026, 11, 29, tzinfo=UTC))
    assert key[0] == "m"
    assert key[1:20].isdigit()
    assert len(key) == 28
    int(key[20:], 16)


def test_newer_message_row_key_sorts_first() -> None:
    older = datetime(2026, 11, 29, 6, 0, 0, tzinfo=UTC)
    newer = older + timedelta(microseconds=1)
    assert message_row_key(newer, "ffffffff") < message_row_key(older, "00000000")


def test_message_row_keys_of_one_instant_differ() -> None:
    moment = datetime(2026, 11, 29, tzinfo=UTC)
    assert len({message_row_key(moment) for _ in range(100)}) == 100


def test_claim_row_key_is_the_same_for_the_same_event() -> None:
    assert claim_row_key("conn", "event-1") == claim_row_key("conn", "event-1")


def test_claim_row_key_differs_per_connection() -> None:
    assert claim_row_key("conn-a", "1") != claim_row_key("conn-b", "1")


def test_claim_row_key_keeps_connection_and_event_apart() -> None:
    assert claim_row_key("a:b", "c") != claim_row_key("a", "b:c")


def test_claim_row_key_is_safe_for_any_input() -> None:
    key = claim_row_key(AWKWARD, AWKWARD * 100)
    assert not FORBIDDEN & set(key)
    assert len(key) == 65


def test_claim_rows_sort_outside_the_message_range() -> None:
    key = claim_row_key("conn", "1")
    assert key > "n"
    assert message_row_key(datetime(1, 1, 1, tzinfo=UTC)) < "n"


def test_first_shard_of_a_hub_is_the_escaped_hub() -> None:
    assert message_partition("chat/1", 0) == "chat%2F1"


def test_shards_of_a_hub_never_meet_another_hubs_partition() -> None:
    assert message_partition("a", 1) == "a%p1"
    assert message_partition("a%p1", 0) == "a%25p1"


def test_an_event_always_lands_in_the_same_shard() -> None:
    claim = claim_row_key("conn", "7")
    assert shard_of(claim, 5) == shard_of(claim_row_key("conn", "7"), 5)


def test_events_spread_over_every_shard() -> None:
    shards = {shard_of(claim_row_key("conn", str(i)), 4) for i in range(200)}
    assert shards == {0, 1, 2, 3}


def test_one_partition_means_shard_zero() -> None:
    assert {shard_of(claim_row_key("conn", str(i)), 1) for i in range(50)} == {0}
