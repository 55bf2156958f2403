"""Payload chunks and entity sizes counted the way Azure counts them (not the way Azurite does)."""

from __future__ import annotations

import os

import pytest

from wps_upstream.errors import MessageTooLarge
from wps_upstream.store.sizes import (
    BINARY_PROPERTY_LIMIT,
    ENTITY_SIZE_LIMIT,
    MAX_MESSAGE_BYTES,
    chunks_size,
    entity_problem,
    entity_size,
    join_chunks,
    payload_capacity,
    split_chunks,
    utf16_units,
)

ENVELOPE = {
    "PartitionKey": "chat",
    "RowKey": "m2516063680943943179dbd1b0bf",
    "v": 1,
    "userId": "alice",
    "connectionId": "vFt6E4Xk1kU0b8pI9_x0Rw2a1b3c4d5",
    "time": "2026-11-29T06:07:08.123Z",
    "dataType": "text",
    "size": 0,
    "chunks": 0,
}


def test_utf16_units_count_emoji_as_two_and_accents_as_one() -> None:
    assert utf16_units("a") == 1
    assert utf16_units("é") == 1
    assert utf16_units("😀") == 2


def test_entity_size_follows_azures_formula() -> None:
    entity = {"PartitionKey": "pk", "RowKey": "rk", "Name": "abc", "Count": 7, "Blob": b"12345", "Ok": True}
    keys = 4 + 2 * 4
    name = 8 + 2 * 4 + (2 * 3 + 4)
    count = 8 + 2 * 5 + 4
    blob = 8 + 2 * 4 + (5 + 4)
    ok = 8 + 2 * 2 + 1
    assert entity_size(entity) == keys + name + count + blob + ok


def test_large_integers_count_as_int64() -> None:
    small = entity_size({"PartitionKey": "", "RowKey": "", "n": 1})
    assert entity_size({"PartitionKey": "", "RowKey": "", "n": 2**40}) == small + 4


def test_string_of_exactly_32k_utf16_units_is_within_limits() -> None:
    assert entity_problem({"PartitionKey": "p", "RowKey": "r", "s": "😀" * 16384}) is None


def test_string_over_32k_utf16_units_is_too_large_for_azure() -> None:
    problem = entity_problem({"PartitionKey": "p", "RowKey": "r", "s": "😀" * 16385})
    assert problem is not None
    assert "UTF-16" in problem


def test_binary_property_over_64_kib_is_too_large() -> None:
    problem = entity_problem({"PartitionKey": "p", "RowKey": "r", "b": bytes(BINARY_PROPERTY_LIMIT + 1)})
    assert problem is not None
    assert "bytes" in problem


def test_more_than_252_properties_are_too_many() -> None:
    entity = {"PartitionKey": "p", "RowKey": "r"} | {f"p{i}": 1 for i in range(253)}
    assert entity_problem(entity) == "253 properties; the limit is 252"


def test_text_entity_that_azurite_would_accept_is_too_large_for_azure() -> None:
    # 31 strings of 32,768 ASCII characters: ~0.97 MiB as UTF-8 (Azurite stores it), ~1.94 MiB in UTF-16.
    entity = {"PartitionKey": "p", "RowKey": "r"} | {f"s{i}": "a" * 32768 for i in range(31)}
    problem = entity_problem(entity)
    assert problem is not None
    assert "limit is 1048576" in problem


@pytest.mark.parametrize(
    "size", [0, 1, BINARY_PROPERTY_LIMIT - 1, BINARY_PROPERTY_LIMIT, BINARY_PROPERTY_LIMIT + 1]
)
def test_chunks_join_back_to_the_payload(size: int) -> None:
    data = os.urandom(size)
    chunks = split_chunks(data)
    assert join_chunks(chunks, len(chunks)) == data


def test_chunks_are_named_in_order_and_at_most_64_kib() -> None:
    chunks = split_chunks(bytes(MAX_MESSAGE_BYTES))
    assert list(chunks) == [f"d{i:02d}" for i in range(16)]
    assert max(len(chunk) for chunk in chunks.values()) == BINARY_PROPERTY_LIMIT


def test_chunks_size_matches_entity_size_of_the_chunks() -> None:
    data = bytes(200_000)
    bare = {"PartitionKey": "p", "RowKey": "r"}
    assert entity_size(bare | split_chunks(data)) == entity_size(bare) + chunks_size(len(data))


def test_max_message_bytes_is_at_least_900_kib() -> None:
    assert MAX_MESSAGE_BYTES >= 921_600


def test_ordinary_message_may_use_max_message_bytes() -> None:
    assert payload_capacity(ENVELOPE) == MAX_MESSAGE_BYTES


def test_900_kib_of_emoji_text_fits_one_entity() -> None:
    data = ("😀" * (921_600 // 4)).encode()
    assert len(data) == 921_600
    envelope = ENVELOPE | {"size": len(data), "chunks": 15}
    assert entity_problem(envelope | split_chunks(data)) is None


def test_long_ids_lower_the_capacity_to_exactly_what_fits() -> None:
    envelope = ENVELOPE | {"userId": "u" * 30_000}
    capacity = payload_capacity(envelope)
    assert capacity < MAX_MESSAGE_BYTES
    assert entity_size(envelope) + chunks_size(capacity) <= ENTITY_SIZE_LIMIT
    assert entity_size(envelope) + chunks_size(capacity + 1) > ENTITY_SIZE_LIMIT


def test_message_too_large_names_size_and_limit() -> None:
    error = MessageTooLarge(1_048_576, 1_000_000)
    assert (error.size, error.limit) == (1_048_576, 1_000_000)
    assert "1048576 bytes" in str(error)
    assert "1000000 bytes" in str(error)
