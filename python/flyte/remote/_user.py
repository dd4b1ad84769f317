"""Who this client is signed in to the backend as: ``flyte.remote.User.get().name()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flyte.remote._common import ToJSONMixin, connection
from flyte.syncify import syncify


@dataclass
class User(ToJSONMixin):
    """The backend's view of the caller (``IdentityService.UserInfo``)."""

    pb2: Any

    @syncify
    @classmethod
    async def get(cls) -> User:
        client, _ = connection()
        return cls(await client.user_info())

    def subject(self) -> str:
        """The stable identifier of the user (the token's subject)."""
        return str(self.pb2.subject)

    def name(self) -> str:
        return str(self.pb2.name)
