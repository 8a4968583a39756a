"""my_chat: the SSE chat server that the workbook teaches.

The modules follow the guide's phase 4, in its order:

1. :mod:`my_chat.events` -- event definitions (module 1, data structures)
2. :mod:`my_chat.client_manager` -- the client manager (module 2)
3. :mod:`my_chat.connection` -- connection handling, ``GET /sse`` (module 3)
4. :mod:`my_chat.push` -- the push API for other services (module 4)
5. :mod:`my_chat.server` and :mod:`my_chat.__main__` -- start-up (module 5)

:mod:`my_chat.sse` is the wire format, built by hand because it is the lesson.
"""

__version__ = "0.1.0"
