"""What ends a supporter's sessions or voids their passes when their support changes.

The catalog tells its listeners of every stored change to a supporter; the readers' feature
follows: support that ends ends every session (and so voids their passes), and a change that
could withdraw what passes grant (another tier, another end date) voids the passes of the
live sessions. (Sessions that end for any reason void their passes:
:meth:`~supportgate.readers.passes.PassService.sessions_ended`.)
"""

from __future__ import annotations

from supportgate.catalog.schemas import Supporter
from supportgate.readers.passes import PassService
from supportgate.readers.sessions import SessionService

__all__ = ["Revocation"]


class Revocation:
    """Keeps sessions and passes in step with the supporter records they rest on."""

    def __init__(self, sessions: SessionService, passes: PassService) -> None:
        self._sessions = sessions
        self._passes = passes

    async def supporter_changed(self, before: Supporter, after: Supporter | None) -> None:
        """A supporter was changed (``after``) or forgotten (``None``): end or void what no longer holds."""
        if after is None or after.status != "active":
            await self._sessions.end_all(before.id)
        else:
            live = [session.id for session in await self._sessions.list(before.id)]
            await self._passes.supporter_changed(before, after, live)
