"""Exercise 4: private messages.

Decide who may receive a message. A room message (``to`` is None) goes to everyone. A
private message goes to its recipient and back to its sender (their other devices show it
too), and to nobody else: not live, not on replay, not in history.

- ``check_recipient`` refuses a private message the server must not accept: one to yourself
  is a ``BadRequest`` (400) with the error code ``self_message``, and one to a user who does
  not exist is a ``NotFound`` (404) with the error code ``unknown_recipient``. The browser
  and the tests read these codes, so spell them exactly.
- ``audience`` names the users who receive a message live, or None for everyone.
- ``may_see`` says whether ``viewer`` may see ``message``; my_chat checks it again before it
  replays or lists any message, so a mistake in a query cannot leak a private one.
"""

from __future__ import annotations

from my_chat.errors import BadRequest, NotFound
from my_chat.events import Message


def check_recipient(sender: str, to: str, *, recipient_exists: bool) -> None:
    """Raise ``BadRequest`` for a message to yourself, ``NotFound`` for an unknown user."""
    ### BEGIN SOLUTION: two checks, each raising the matching error
    if to == sender:
        raise BadRequest("self_message", "you cannot send a private message to yourself")
    if not recipient_exists:
        raise NotFound("unknown_recipient", f"there is no user called {to!r}")
    ### END SOLUTION


def audience(message: Message) -> frozenset[str] | None:
    """The users whose connections get ``message`` live: None means everyone."""
    ### BEGIN SOLUTION: None for the room, else the recipient and the sender
    if message.to is None:
        return None
    return frozenset({message.sender, message.to})
    ### END SOLUTION


def may_see(message: Message, viewer: str) -> bool:
    """Whether ``viewer`` may see ``message`` at all."""
    ### BEGIN SOLUTION: room messages are for all; private ones for their two users
    return message.to is None or viewer in (message.sender, message.to)
    ### END SOLUTION
