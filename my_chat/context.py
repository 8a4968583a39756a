"""The service context: what every handler needs, built once at start-up.

The guide's gateway passes a go-zero ``svc.ServiceContext`` (config, Redis, the client
manager) to every handler; this is the same idea, stored on the aiohttp application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from my_chat.client_manager import ClientManager
from my_chat.config import Settings
from my_chat.parts import Parts
from my_chat.ratelimit import Limiter

if TYPE_CHECKING:
    from my_chat.accounts import AccountStore
    from my_chat.broker import Broker
    from my_chat.presence import Presence
    from my_chat.sessions import Sessions
    from my_chat.store import MessageStore


@dataclass
class ServiceContext:
    settings: Settings
    parts: Parts
    manager: ClientManager
    accounts: AccountStore
    store: MessageStore  # the exercise's, Redis's, or a stand-in until the exercise is done
    broker: Broker
    presence: Presence
    sessions: Sessions
    service_key: str
    message_limiter: Limiter
    signup_limiter: Limiter
    login_limiter: Limiter


CONTEXT = web.AppKey("context", ServiceContext)


def context_of(request: web.Request) -> ServiceContext:
    return request.app[CONTEXT]
