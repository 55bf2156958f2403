"""Group commit on real Table storage (Azurite): concurrent appends share entity-group transactions.

When nothing is in flight for a partition, an append writes alone, at once; appends that arrive meanwhile
queue and go out together when it returns, or beside it once eight of them wait.
`MessageStore.commit_statistics` counts the shared transactions. In `asyncio.gather`, the first append
starts first and leads; the others queue behind it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.data.tables.aio import TableClient

from devhost.processes import free_port
from tests.constants import HUB, table_connection_string
from wps_upstream.chat import ChatMessage
from wps_upstream.payload import Payload
from wps_upstream.store import MAX_MESSAGE_BYTES, MessageStore, MessageTooLarge, StoreUnavailable
from wps_upstream.store.errors import RedeliveryMismatch

T0 = datetime(2026, 12, 3, 10, 11, 12, 345000, tzinfo=UTC)


@pytest.fixture
async def store(azurite: Any) -> AsyncIterator[MessageStore]:
    async with MessageStore.from_connection_string(
        azurite.connection_string, table_name="groups" + uuid.uuid4().hex[:16]
    ) as opened:
        yield opened


async def append(
    store: MessageStore,
    connection_id: str,
    event_id: str = "1",
    data: bytes = b"hello",
    received_at: datetime = T0,
    data_type: str = "text",
) -> tuple[ChatMessage, bool]:
    return await store.append(
        hub=HUB,
        connection_id=connection_id,
        event_id=event_id,
        user_id="alice",
        payload=Payload.decode(data_type, data),
        received_at=received_at,
    )


async def history(store: MessageStore) -> list[ChatMessage]:
    """Every stored message, oldest first (page after page: a page holds at most 4 MiB)."""
    messages, cursor = await store.page(hub=HUB, limit=1000)
    while cursor is not None:
        older, cursor = await store.page(hub=HUB, limit=1000, before=cursor)
        messages += older
    return messages[::-1]


async def test_concurrent_appends_share_transactions(store: MessageStore) -> None:
    results = await asyncio.gather(*(append(store, f"conn-{i}") for i in range(40)))
    assert all(created for _, created in results)
    assert len(await history(store)) == 40
    shared = store.commit_statistics
    assert shared.appends == 39  # all but the first, which went out alone
    assert shared.transactions < 39


async def test_a_lone_append_is_written_at_once_in_a_transaction_of_its_own(store: MessageStore) -> None:
    for i in range(3):
        await append(store, f"conn-{i}")
    assert store.commit_statistics.transactions == 0
    assert len(await history(store)) == 3


async def test_a_transaction_holds_at_most_fifty_messages(store: MessageStore) -> None:
    await asyncio.gather(*(append(store, f"conn-{i}") for i in range(121)))
    assert store.commit_statistics.largest == 50  # 100 entities: a message row and a claim row each
    assert len(await history(store)) == 121


async def test_large_messages_share_a_transaction_only_while_it_stays_under_4_mib(
    store: MessageStore,
) -> None:
    sent = [bytes([i]) * 921_600 for i in range(6)]
    await asyncio.gather(
        *(append(store, f"conn-{i}", data=data, data_type="binary") for i, data in enumerate(sent))
    )
    assert store.commit_statistics.largest == 2  # 3 x 1.2 MB of base64 would pass the limit
    stored = sorted(hashlib.sha256(message.payload.data).hexdigest() for message in await history(store))
    assert stored == sorted(hashlib.sha256(data).hexdigest() for data in sent)


async def test_a_redelivery_queued_with_its_original_is_stored_once(store: MessageStore) -> None:
    results = await asyncio.gather(
        append(store, "leader"),
        append(store, "conn-a"),
        append(store, "conn-b", event_id="7", data=b"once"),
        append(store, "conn-b", event_id="7", data=b"once", received_at=T0 + timedelta(seconds=1)),
        append(store, "conn-c"),
    )
    original, again = results[2], results[3]
    assert original[1] and not again[1]
    assert again[0] == original[0]
    assert [message.connection_id for message in await history(store)].count("conn-b") == 1
    assert len(await history(store)) == 4


async def test_a_replay_queued_with_its_original_is_refused_and_the_others_are_stored(
    store: MessageStore,
) -> None:
    results = await asyncio.gather(
        append(store, "leader"),
        append(store, "conn-b", event_id="7", data=b"real"),
        append(store, "conn-b", event_id="7", data=b"forged"),
        append(store, "conn-c"),
        return_exceptions=True,
    )
    assert isinstance(results[2], RedeliveryMismatch)
    assert [message.payload.data for message in await history(store)].count(b"forged") == 0
    assert len(await history(store)) == 3


async def test_a_conflict_in_a_shared_transaction_stores_every_other_message_once(
    store: MessageStore,
) -> None:
    stored, _ = await append(store, "conn-old", event_id="1", data=b"stored before")
    results = await asyncio.gather(
        append(store, "leader"),
        append(store, "conn-a"),
        append(store, "conn-old", event_id="1", data=b"stored before", received_at=T0 + timedelta(minutes=1)),
        append(store, "conn-b"),
    )
    assert store.commit_statistics.transactions == 1  # refused as a whole (409), then each went alone
    assert results[2] == (stored, False)
    assert [created for _, created in (results[1], results[3])] == [True, True]
    assert sorted(message.connection_id for message in await history(store)) == [
        "conn-a",
        "conn-b",
        "conn-old",
        "leader",
    ]


async def test_an_oversized_message_is_refused_without_touching_its_neighbours(store: MessageStore) -> None:
    results = await asyncio.gather(
        append(store, "leader"),
        append(store, "conn-a"),
        append(store, "conn-big", data=bytes(MAX_MESSAGE_BYTES + 1), data_type="binary"),
        append(store, "conn-b"),
        return_exceptions=True,
    )
    assert isinstance(results[2], MessageTooLarge)
    assert sorted(message.connection_id for message in await history(store)) == ["conn-a", "conn-b", "leader"]


@pytest.fixture
def storage_refusing_user_mallory(monkeypatch: pytest.MonkeyPatch) -> None:
    """RefusingStorage (fault injection): any transaction holding a row of user "mallory" is refused with
    400, as the service refuses a row it does not accept; nothing of such a transaction is stored."""
    from azure.core.exceptions import HttpResponseError

    submit = TableClient.submit_transaction

    async def refusing(self: TableClient, operations: Any, **kwargs: Any) -> Any:
        operations = list(operations)
        if any(operation[1].get("userId") == "mallory" for operation in operations):
            error = HttpResponseError(message="0:One of the request inputs is not valid.")
            error.status_code = 400
            raise error
        return await submit(self, operations, **kwargs)

    monkeypatch.setattr(TableClient, "submit_transaction", refusing)


@pytest.mark.usefixtures("storage_refusing_user_mallory")
async def test_a_row_the_service_refuses_fails_only_its_own_message(store: MessageStore) -> None:
    async def as_mallory() -> tuple[ChatMessage, bool]:
        return await store.append(
            hub=HUB,
            connection_id="conn-m",
            event_id="1",
            user_id="mallory",
            payload=Payload.decode("text", b"refused"),
            received_at=T0,
        )

    results = await asyncio.gather(
        append(store, "leader"), append(store, "conn-a"), as_mallory(), append(store, "conn-b"),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(results[2], StoreUnavailable)
    assert store.commit_statistics.transactions == 1
    assert sorted(message.connection_id for message in await history(store)) == ["conn-a", "conn-b", "leader"]


@pytest.fixture
def shared_transactions_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """FailingSharedTransactions (fault injection): storage drops the connection whenever a transaction of
    more than one message is sent; a lone message's transaction goes through."""
    submit = TableClient.submit_transaction

    async def failing(self: TableClient, operations: Any, **kwargs: Any) -> Any:
        operations = list(operations)
        if len(operations) > 2:
            raise ServiceRequestError("connection reset by the storage account (fault injection)")
        return await submit(self, operations, **kwargs)

    monkeypatch.setattr(TableClient, "submit_transaction", failing)


@pytest.mark.usefixtures("shared_transactions_fail")
async def test_storage_failing_under_a_shared_transaction_fails_each_of_its_messages(
    store: MessageStore,
) -> None:
    results = await asyncio.gather(*(append(store, f"conn-{i}") for i in range(8)), return_exceptions=True)
    assert results[0][1] is True  # type: ignore[index]  # the leader's own transaction went through
    assert all(isinstance(result, StoreUnavailable) for result in results[1:])
    assert [message.connection_id for message in await history(store)] == ["conn-0"]


@pytest.fixture
def closed_port() -> Iterator[str]:
    yield table_connection_string(free_port())


async def test_unreachable_storage_fails_every_concurrent_append(closed_port: str) -> None:
    async with MessageStore.from_connection_string(closed_port, retries=0) as unreachable:
        results = await asyncio.gather(
            *(append(unreachable, f"conn-{i}") for i in range(6)), return_exceptions=True
        )
    assert all(isinstance(result, StoreUnavailable) for result in results)


async def test_one_connection_s_messages_keep_their_order_in_a_shared_transaction(
    store: MessageStore,
) -> None:
    sent = [f"message {i}".encode() for i in range(10)]
    await asyncio.gather(
        append(store, "leader"),
        *(
            append(store, "conn-a", event_id=str(i), data=data, received_at=T0 + timedelta(milliseconds=i))
            for i, data in enumerate(sent)
        ),
    )
    assert [m.payload.data for m in await history(store) if m.connection_id == "conn-a"] == sent


async def test_connections_sending_one_after_the_other_keep_their_order(store: MessageStore) -> None:
    async def converse(connection_id: str) -> list[bytes]:
        sent = []
        for i in range(5):
            data = f"{connection_id} {i}".encode()
            await append(store, connection_id, event_id=str(i), data=data, received_at=datetime.now(UTC))
            sent.append(data)
        return sent

    conversations = await asyncio.gather(*(converse(f"conn-{i}") for i in range(8)))
    stored = await history(store)
    assert store.commit_statistics.transactions > 0
    for sent in conversations:
        connection_id = sent[0].decode().split()[0]
        assert [m.payload.data for m in stored if m.connection_id == connection_id] == sent


@dataclass
class HeldBack:
    """What the `first_shared_transaction_held_back` fixture saw: the most transactions in flight at once."""

    most_in_flight: int = 0


@pytest.fixture
def first_shared_transaction_held_back(monkeypatch: pytest.MonkeyPatch) -> HeldBack:
    """SlowStorage (fault injection): the first transaction of more than one message waits 0.3 s before it
    is sent, as a slow commit would; every transaction is counted while it is in flight."""
    submit = TableClient.submit_transaction
    seen, in_flight, shared = HeldBack(), [0], [0]

    async def slow_first(self: TableClient, operations: Any, **kwargs: Any) -> Any:
        operations = list(operations)
        in_flight[0] += 1
        seen.most_in_flight = max(seen.most_in_flight, in_flight[0])
        try:
            if len(operations) > 2:
                shared[0] += 1
                if shared[0] == 1:
                    await asyncio.sleep(0.3)
            return await submit(self, operations, **kwargs)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(TableClient, "submit_transaction", slow_first)
    return seen


async def test_a_second_transaction_goes_out_beside_a_slow_one_and_is_acknowledged_after_it(
    store: MessageStore, first_shared_transaction_held_back: HeldBack
) -> None:
    answered: list[str] = []

    async def send(connection_id: str) -> None:
        await append(store, connection_id)
        answered.append(connection_id)

    first = [f"first-{i}" for i in range(10)]
    second = [f"second-{i}" for i in range(10)]
    earlier = asyncio.gather(send("leader"), *map(send, first))
    await asyncio.sleep(0.1)  # the leader is stored; the first shared transaction is held back
    await asyncio.gather(earlier, *map(send, second))

    assert first_shared_transaction_held_back.most_in_flight == 2
    assert store.commit_statistics.transactions == 2
    # The second transaction committed first, but its messages were acknowledged after the first's.
    assert set(answered[1:11]) == set(first) and set(answered[11:]) == set(second)
    assert len(await history(store)) == 21


async def test_appends_waiting_behind_a_write_go_out_together_below_the_early_batch(
    store: MessageStore, first_shared_transaction_held_back: HeldBack
) -> None:
    # Seven appends wait behind the leader, then seven behind the held-back transaction: each time too few
    # to start a write beside the one in flight, so they wait for it and go out together.
    earlier = asyncio.gather(append(store, "leader"), *(append(store, f"first-{i}") for i in range(7)))
    await asyncio.sleep(0.1)
    await asyncio.gather(earlier, *(append(store, f"second-{i}") for i in range(7)))
    assert first_shared_transaction_held_back.most_in_flight == 1
    assert store.commit_statistics.transactions == 2
    assert store.commit_statistics.largest == 7
    assert len(await history(store)) == 15


async def test_with_one_write_in_flight_a_long_queue_waits_for_it(
    store: MessageStore, first_shared_transaction_held_back: HeldBack
) -> None:
    store.max_in_flight = 1
    earlier = asyncio.gather(append(store, "leader"), *(append(store, f"first-{i}") for i in range(10)))
    await asyncio.sleep(0.1)
    await asyncio.gather(earlier, *(append(store, f"second-{i}") for i in range(10)))
    assert first_shared_transaction_held_back.most_in_flight == 1
    assert store.commit_statistics.transactions == 2
    assert len(await history(store)) == 21


def test_at_least_one_write_stays_allowed_in_flight(store: MessageStore) -> None:
    with pytest.raises(ValueError, match="at least one write"):
        store.max_in_flight = 0
