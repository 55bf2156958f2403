"""Table storage for chat messages and presence (async `azure.data.tables.aio`, clients reused).

Modules, one concern each: `sizes` (Azure's size accounting and payload chunks), `keys` (row and
partition keys), `cursors` (paging cursors), `tables` (a table's client and creation), `messages` and
`presence` (the two stores), `errors`. Layout, limits and the reasoning behind them: docs/store.md.
"""

from wps_upstream.errors import MessageTooLarge
from wps_upstream.store.errors import CorruptRow, InvalidCursor, StoreUnavailable
from wps_upstream.store.messages import MessageStore
from wps_upstream.store.presence import PresenceStore
from wps_upstream.store.sizes import MAX_MESSAGE_BYTES

__all__ = [
    "MAX_MESSAGE_BYTES",
    "CorruptRow",
    "InvalidCursor",
    "MessageStore",
    "MessageTooLarge",
    "PresenceStore",
    "StoreUnavailable",
]
