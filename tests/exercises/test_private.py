"""Exercise 4: private messages. Run: python -m exercises check private"""

from __future__ import annotations

import pytest

from my_chat.errors import ApiError
from my_chat.events import Message


@pytest.fixture
def private(impl):
    return impl.module("private")


def message(sender: str, to: str | None) -> Message:
    return Message(id=1, sender=sender, to=to, text="x", timestamp=0)


def test_a_known_recipient_is_accepted(private):
    assert private.check_recipient("alice", "bob", recipient_exists=True) is None


def test_a_message_to_yourself_is_a_400(private):
    with pytest.raises(ApiError) as caught:
        private.check_recipient("alice", "alice", recipient_exists=True)
    assert caught.value.status == 400 and caught.value.code == "self_message"


def test_an_unknown_recipient_is_a_404(private):
    with pytest.raises(ApiError) as caught:
        private.check_recipient("alice", "nobody", recipient_exists=False)
    assert caught.value.status == 404 and caught.value.code == "unknown_recipient"


def test_the_room_goes_to_everyone(private):
    assert private.audience(message("alice", None)) is None


def test_a_private_message_goes_to_both_ends(private):
    assert private.audience(message("alice", "bob")) == frozenset({"alice", "bob"})


@pytest.mark.parametrize(
    ("sender", "to", "viewer", "allowed"),
    [
        ("alice", None, "carol", True),
        ("alice", None, "alice", True),
        ("alice", "bob", "alice", True),
        ("alice", "bob", "bob", True),
        ("alice", "bob", "carol", False),
        ("alice", "bob", "Bob", False),
        ("alice", "bob", "", False),
    ],
)
def test_who_may_see(private, sender, to, viewer, allowed):
    assert private.may_see(message(sender, to), viewer) is allowed
