"""my_chat: the SSE chat server that the workbook teaches.

The modules follow the guide's phase 4, in its order:

1. :mod:`my_chat.events` -- event definitions (module 1, data structures)
2. :mod:`my_chat.client_manager` -- the client manager (module 2)
3. :mod:`my_chat.connection` -- connection handling, ``GET /sse`` (module 3)
4. :mod:`my_chat.push` -- the push API for other services (module 4)
5. :mod:`my_chat.server` and :mod:`my_chat.__main__` -- start-up (module 5)

The backends behind them are four interfaces, each with its one-process kind in its module
and its Redis kind beside it: :mod:`my_chat.broker`, :mod:`my_chat.presence`,
:mod:`my_chat.store` and :mod:`my_chat.accounts` (``redis_broker``, ``redis_presence``,
``redis_store``, ``redis_accounts``); :func:`my_chat.server.open_services` picks one kind.

:mod:`my_chat.sse` is the wire format, built by hand because it is the lesson.
"""

__version__ = "0.1.0"
