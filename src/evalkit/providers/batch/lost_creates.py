"""Not paying twice for a batch whose create reply was lost.

A create that fails with a dropped connection, a timeout or a 5xx may have made the batch
anyway. Protocols whose API can tag a batch (OpenAI: `metadata`; Gemini: `display_name`) and
list recent batches tag each create with its submission's digest; the batcher's retry of such
a create first looks for a batch with that tag and adopts it, and creates again only when there
is none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from evalkit.model.batch.protocol import BatchRequest

LOOKUP_LIMIT = 1000
"""How many of the most recent batches are looked through for one a lost create made."""


def submission_tag(requests: list[BatchRequest]) -> str:
    """A digest naming one submission (its custom_ids, which no other submission shares)."""
    return hashlib.sha256("\n".join(r.custom_id for r in requests).encode()).hexdigest()[:32]


def may_have_created(status: int | None) -> bool:
    """Whether a create that failed with HTTP `status` (None: no reply) may have made the batch."""
    return status is None or status >= 500 or status == 408


class LostCreates:
    """The submissions whose create failed in a way that may have made the batch anyway."""

    def __init__(self, status: Callable[[BaseException], int | None]) -> None:
        self._status = status
        self._unsure: set[str] = set()

    async def create(self, tag: str, find: Callable[[str], Awaitable[str | None]], create: Callable[[], Awaitable[str]]) -> str:
        """The id of the batch of submission `tag`: one an earlier, failed try made (`find`),
        else a new one (`create`)."""
        if tag in self._unsure:
            found = await find(tag)
            self._unsure.discard(tag)  # found, or surely not made: create it now
            if found is not None:
                return found
        try:
            return await create()
        except Exception as error:
            if may_have_created(self._status(error)):
                self._unsure.add(tag)
            raise
