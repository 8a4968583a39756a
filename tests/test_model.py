"""A model-based test: Hypothesis drives a real my_chat process, step by step, against a model.

Each run starts ``python -m my_chat`` on a fresh data directory and plays a random sequence of
what users and operators do: sign up (new and taken names, and bad ones), sign in (right and
wrong password), sign out (one session, or everywhere), change the password, send to the room
and privately (valid and invalid), read pages of history, open, close and resume streams with
``Last-Event-ID``, push and broadcast, restart the server with SIGTERM, and ``kill -9`` it.
The model is plain Python: who exists, which tokens are live, which messages were accepted.

After every step the server is checked against the model:

* no answer was a 5xx, and the server logged no failure of its own;
* every message answered with 201 is in the history of exactly the users who may see it,
  with its sender, recipient and text, once, in order;
* every open stream received exactly the messages its user may see (the latest few or those
  after its ``Last-Event-ID``, then every later one), once each, in order, and across its
  reconnections after a close, a SIGTERM or a ``kill -9`` none is lost or repeated;
* a pushed event reached exactly the open streams it was meant for, once;
* a signed-out token stays refused, across restarts, and its open streams were ended;
* the server's count of open streams matches the model's.

Seeded (``derandomize``) and sized for CI; ``make explore`` runs far more and longer
sequences with fresh randomness (MY_CHAT_EXPLORE=1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.chat_client import PASSWORD, ChatClient, ServerProcess, Stream
from tests.conftest import SERVICE_KEY

pytestmark = pytest.mark.slow

EXPLORE = bool(os.environ.get("MY_CHAT_EXPLORE"))
# A small catch-up on connect, so the "latest few" and "everything after" paths both happen.
HISTORY_ON_CONNECT = 4
# Names that no two look alike (case aside), so only the same name counts as taken.
NAMES = ("alice", "bob", "carol", "dave", "erin")
MAX_TEXT = 2000
BAD_SIGN_UPS = [
    {"username": "", "password": PASSWORD},
    {"username": "a b", "password": PASSWORD},
    {"username": "x" * 33, "password": PASSWORD},
    {"username": "zed", "password": "short"},
    {"username": "zed"},
    {"username": 5, "password": PASSWORD},
]
MAX_OPEN_STREAMS = 6
WAIT = 10.0  # seconds to wait for what must eventually arrive; a failure, not a timing


class EventLoopThread:
    """One asyncio loop in a thread, so the synchronous state machine can use the async client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class User:
    name: str  # as stored: the first sign-up's spelling
    password: str = PASSWORD
    tokens: list[str] = field(default_factory=list)  # live sessions
    failed_password_checks: int = 0


@dataclass
class Sent:
    id: int
    sender: str
    to: str | None
    text: str

    def visible_to(self, viewer: str) -> bool:
        return self.to is None or viewer in (self.sender, self.to)


@dataclass
class Lineage:
    """One logical stream, as a browser's EventSource keeps it across reconnections."""

    user: str
    token: str
    since: int | None  # Last-Event-ID of the first connection
    first_batch: set[int]  # without it: the ids it was due on connect (the latest few)
    opened_after: int  # the newest id when it first connected
    stream: Stream | None = None
    received: list[dict] = field(default_factory=list)  # message payloads, every connection
    seen_events: int = 0  # events of the current connection already moved into ``received``
    pushes_due: list[str] = field(default_factory=list)
    pushes_got: list[str] = field(default_factory=list)
    must_end_with: str | None = None  # "session_revoked" once its token is signed out
    resumable: bool = True

    def last_id(self) -> int | None:
        return self.received[-1]["id"] if self.received else self.since


class ChatModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = EventLoopThread()
        self.data_dir = Path(tempfile.mkdtemp(prefix="my_chat_model_"))
        self.server = ServerProcess(
            self.data_dir / "data",
            "--signup-per-minute",
            "0",
            "--message-burst",
            "1000000",
            "--message-rate",
            "1e6",
            "--history",
            str(HISTORY_ON_CONNECT),
            env={"MY_CHAT_SERVICE_KEY": SERVICE_KEY},
        ).start()
        self.http: aiohttp.ClientSession = self.loop.run(self._new_session())
        self.users: dict[str, User] = {}
        self.revoked: list[str] = []
        self.sent: list[Sent] = []
        self.lineages: list[Lineage] = []
        self.push_count = 0
        self.steps_since_restart = 0

    async def _new_session(self) -> aiohttp.ClientSession:
        # No cookie jar: each request says who it is with its bearer, as a program would.
        return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    def teardown(self) -> None:
        for lineage in self.lineages:
            if lineage.stream is not None:
                self.loop.run(self._close(lineage.stream))
        self.loop.run(self.http.close())
        self.loop.close()
        self.server.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # ---- talking to the server -----------------------------------------------------------

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> tuple[int, Any]:
        """One request; never a 5xx, and every error is the JSON error body."""
        client = ChatClient(self.server.url, self.http)
        client.token = token
        status, body = self.loop.run(client.request(method, path, **kwargs))
        assert status < 500, (method, path, status, body)
        if status >= 400:
            assert isinstance(body, dict) and set(body) >= {"error", "message"}, (status, body)
        return status, body

    def service(self, path: str, body: dict) -> tuple[int, Any]:
        return self.call("POST", path, SERVICE_KEY, json=body)

    def user_of(self, token: str) -> User:
        return next(u for u in self.users.values() if token in u.tokens)

    def live_tokens(self) -> list[str]:
        return [t for u in self.users.values() for t in u.tokens]

    def pick(self, items: list, index: int):
        return items[index % len(items)]

    def visible_ids(self, viewer: str) -> list[int]:
        return [m.id for m in self.sent if m.visible_to(viewer)]

    def newest_id(self) -> int:
        return self.sent[-1].id if self.sent else 0

    def accept(self, body: dict, sender: str, to: str | None, text: str) -> None:
        assert body["from"] == sender and body["to"] == to and body["text"] == text, body
        assert body["id"] > self.newest_id(), "message ids only grow"
        self.sent.append(Sent(body["id"], sender, to, text))

    # ---- accounts ------------------------------------------------------------------------

    @initialize(names=st.sets(st.sampled_from(NAMES), min_size=3, max_size=4))
    def first_users(self, names: set[str]) -> None:
        """A room starts with a few people, each with the page open."""
        for name in sorted(names):
            self.sign_up(name, shout=False)
        for index in range(len(names)):
            self.open_a_stream(index, since=None)

    @rule(name=st.sampled_from(NAMES), shout=st.booleans())
    def sign_up(self, name: str, shout: bool) -> None:
        spelled = name.upper() if shout else name
        status, body = self.call(
            "POST", "/api/signup", json={"username": spelled, "password": PASSWORD}
        )
        if name in self.users:
            assert (status, body["error"]) == (409, "username_taken"), body
        else:
            assert status == 201, body
            assert body["username"] == spelled
            self.users[name] = User(spelled, tokens=[body["token"]])

    @precondition(lambda self: self.users)
    @rule(index=st.integers(0, 99), shout=st.booleans(), right=st.booleans())
    def log_in(self, index: int, shout: bool, right: bool) -> None:
        user = self.pick(list(self.users.values()), index)
        # The limit on failed sign-ins is 10 a minute per name; staying under it keeps every
        # answer predictable (the limit has its own test).
        right = right or user.failed_password_checks >= 4
        spelled = user.name.upper() if shout else user.name.lower()
        password = user.password if right else "not-" + user.password
        status, body = self.call(
            "POST", "/api/login", json={"username": spelled, "password": password}
        )
        if not right:
            assert (status, body["error"]) == (401, "wrong_credentials"), body
            user.failed_password_checks += 1
            return
        assert status == 200 and body["username"] == user.name, body
        user.tokens.append(body["token"])

    @precondition(lambda self: self.live_tokens())
    @rule(index=st.integers(0, 99), everywhere=st.booleans())
    def log_out(self, index: int, everywhere: bool) -> None:
        """This session only (``/api/logout``), or every session of the user."""
        token = self.pick(self.live_tokens(), index)
        user = self.user_of(token)
        status, _ = self.call("POST", "/api/logout-all" if everywhere else "/api/logout", token)
        assert status == 204
        ended = list(user.tokens) if everywhere else [token]
        user.tokens = [t for t in user.tokens if t not in ended]
        self._revoked(ended)

    @precondition(lambda self: self.live_tokens())
    @rule(index=st.integers(0, 99), right=st.booleans())
    def change_password(self, index: int, right: bool) -> None:
        token = self.pick(self.live_tokens(), index)
        user = self.user_of(token)
        if not right and user.failed_password_checks >= 4:
            return
        new_password = f"password-{len(self.revoked)}-{index}"
        old_password = user.password if right else "not-" + user.password
        status, body = self.call(
            "POST",
            "/api/password",
            token,
            json={"old_password": old_password, "new_password": new_password},
        )
        if not right:
            assert (status, body["error"]) == (403, "wrong_password"), body
            user.failed_password_checks += 1
            return
        assert status == 200 and body["username"] == user.name, body
        self._revoked(user.tokens)
        user.tokens = [body["token"]]
        user.password = new_password

    def _revoked(self, tokens: list[str]) -> None:
        self.revoked.extend(tokens)
        for lineage in self.lineages:
            if lineage.token in tokens:
                lineage.resumable = False
                if lineage.stream is not None:
                    lineage.must_end_with = "session_revoked"

    # ---- messages ------------------------------------------------------------------------

    # Several messages a step, to the room (to=None) or to a name, taken or not, in any case.
    @precondition(lambda self: self.live_tokens())
    @rule(
        index=st.integers(0, 99),
        messages=st.lists(
            st.tuples(
                st.text(max_size=40),
                st.one_of(st.none(), st.sampled_from(NAMES)),
                st.booleans(),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def send_messages(self, index: int, messages: list[tuple[str, str | None, bool]]) -> None:
        token = self.pick(self.live_tokens(), index)
        sender = self.user_of(token).name
        for text, to, shout in messages:
            body: dict[str, Any] = {"text": text}
            if to is not None:
                body["to"] = to.upper() if shout else to
            status, reply = self.call("POST", "/api/messages", token, json=body)
            if not text.strip():
                assert (status, reply["error"]) == (400, "empty_text"), reply
            elif to is None:
                assert status == 201, reply
                self.accept(reply, sender, None, text)
            elif to not in self.users:
                assert (status, reply["error"]) == (404, "unknown_recipient"), reply
            elif self.users[to].name == sender:
                assert (status, reply["error"]) == (400, "self_message"), reply
            else:
                assert status == 201, reply
                self.accept(reply, sender, self.users[to].name, text)

    @rule(
        index=st.integers(0, 99),
        case=st.sampled_from(
            ["no token", "bad token", "revoked token", "too long", "not json", "bad to", "no text"]
            + [f"sign-up {i}" for i in range(len(BAD_SIGN_UPS))]
        ),
    )
    def bad_request(self, index: int, case: str) -> None:
        """A sign-up or a message that must be refused with the right 4xx, and change nothing."""
        if case.startswith("sign-up"):
            body = BAD_SIGN_UPS[int(case.split()[1])]
            status, _ = self.call("POST", "/api/signup", json=body)
            assert status == 400, body
            return
        tokens = self.live_tokens()
        token = self.pick(tokens, index) if tokens else None
        expected = {
            "no token": 401,
            "bad token": 401,
            "revoked token": 401,
            "too long": 413,
            "not json": 415,
            "bad to": 400,
            "no text": 400,
        }[case]
        kwargs: dict[str, Any] = {"json": {"text": "hello"}}
        if case == "no token":
            token = None
        elif case == "bad token":
            token = "not-a-token"
        elif case == "revoked token":
            if not self.revoked:
                return
            token = self.pick(self.revoked, index)
        elif token is None:
            return  # the other cases need a signed-in sender
        elif case == "too long":
            kwargs = {"json": {"text": "x" * (MAX_TEXT + 1)}}
        elif case == "not json":
            kwargs = {"data": b"text=hello", "headers": {"Content-Type": "text/plain"}}
        elif case == "bad to":
            kwargs = {"json": {"text": "hello", "to": 5}}
        elif case == "no text":
            kwargs = {"json": {"to": "alice"}}
        status, _ = self.call("POST", "/api/messages", token, **kwargs)
        assert status == expected, case

    @precondition(lambda self: self.live_tokens())
    @rule(index=st.integers(0, 99), before=st.integers(0, 60), limit=st.integers(1, 8))
    def read_a_page_of_history(self, index: int, before: int, limit: int) -> None:
        token = self.pick(self.live_tokens(), index)
        viewer = self.user_of(token).name
        query = f"?limit={limit}" + (f"&before={before}" if before else "")
        status, body = self.call("GET", f"/api/history{query}", token)
        assert status == 200, body
        due = [i for i in self.visible_ids(viewer) if not before or i < before][-limit:]
        assert [m["id"] for m in body["messages"]] == due

    # ---- streams -------------------------------------------------------------------------

    def open_lineages(self) -> list[Lineage]:
        return [lin for lin in self.lineages if lin.stream is not None]

    def resumable_lineages(self) -> list[Lineage]:
        return [lin for lin in self.lineages if lin.stream is None and lin.resumable]

    @precondition(lambda self: self.live_tokens() and len(self.open_lineages()) < MAX_OPEN_STREAMS)
    @rule(index=st.integers(0, 99), since=st.one_of(st.none(), st.integers(0, 60)))
    def open_a_stream(self, index: int, since: int | None) -> None:
        token = self.pick(self.live_tokens(), index)
        viewer = self.user_of(token).name
        if since is not None:
            since = min(since, self.newest_id())  # a client only knows ids it was sent
        visible = self.visible_ids(viewer)
        lineage = Lineage(
            user=viewer,
            token=token,
            since=since,
            first_batch=set(visible[-HISTORY_ON_CONNECT:]) if since is None else set(),
            opened_after=self.newest_id(),
        )
        lineage.stream = self._connect(token, since)
        self.lineages.append(lineage)

    @precondition(lambda self: self.open_lineages())
    @rule(index=st.integers(0, 99))
    def close_a_stream(self, index: int) -> None:
        lineage = self.pick(self.open_lineages(), index)
        self._collect(lineage)
        self.loop.run(self._close(lineage.stream))
        lineage.stream = None

    @precondition(lambda self: self.resumable_lineages())
    @rule(index=st.integers(0, 99))
    def resume_a_stream(self, index: int) -> None:
        """Reconnect as EventSource does: same token, ``Last-Event-ID`` of the last message."""
        if len(self.open_lineages()) >= MAX_OPEN_STREAMS:
            return
        lineage = self.pick(self.resumable_lineages(), index)
        last = lineage.last_id()
        lineage.stream = self._connect(lineage.token, 0 if last is None else last)
        lineage.seen_events = 0

    def _connect(self, token: str, last_event_id: int | None) -> Stream:
        client = ChatClient(self.server.url, self.http)
        client.token = token
        return self.loop.run(client.open_stream(last_event_id))

    async def _close(self, stream: Stream) -> None:
        stream.close()
        with contextlib.suppress(asyncio.CancelledError):
            if stream.reader is not None:
                await asyncio.gather(stream.reader, return_exceptions=True)

    def expected_ids(self, lineage: Lineage) -> list[int]:
        def due(i: int) -> bool:
            if lineage.since is not None:
                return i > lineage.since
            return i in lineage.first_batch or i > lineage.opened_after

        return [i for i in self.visible_ids(lineage.user) if due(i)]

    def _collect(self, lineage: Lineage) -> None:
        """Move the events the current connection has received into the lineage."""
        assert lineage.stream is not None
        events = lineage.stream.received[lineage.seen_events :]
        lineage.seen_events += len(events)
        for event in events:
            if event.type == "message":
                payload = json.loads(event.data)
                assert event.last_event_id == str(payload["id"]), event
                lineage.received.append(payload)
            elif event.type.startswith("model-push"):
                lineage.pushes_got.append(json.loads(event.data)["nonce"])

    # ---- the push API --------------------------------------------------------------------

    @rule(users=st.sets(st.sampled_from(NAMES)), everyone=st.booleans())
    def push(self, users: set[str], everyone: bool) -> None:
        self.push_count += 1
        nonce = f"push-{self.push_count}"
        data = {"nonce": nonce, "numbers": [1, 2.5, None, True]}
        if everyone:
            status, body = self.service("/api/broadcast", {"event": "model-push", "data": data})
            reached = self.open_lineages()
        else:
            if not users:
                status, _ = self.service(
                    "/api/push", {"user_ids": [], "event": "model-push", "data": data}
                )
                assert status == 400
                return
            # Users by the name they signed up with; a name nobody has is simply not reached.
            names = {self.users[t].name if t in self.users else t for t in users}
            status, body = self.service(
                "/api/push", {"user_ids": sorted(names), "event": "model-push", "data": data}
            )
            reached = [lin for lin in self.open_lineages() if lin.user in names]
        assert status == 202, body
        reached = [lin for lin in reached if lin.must_end_with is None]
        assert body["queued"] == len(reached), (body, len(reached))
        for lineage in reached:
            lineage.pushes_due.append(nonce)

    # ---- restarts ------------------------------------------------------------------------

    # A restart only when something happened since the last one: one with nothing at stake
    # tests little and costs a second.
    @precondition(lambda self: self.steps_since_restart >= 5)
    @rule(how=st.sampled_from(["kill -9", "SIGTERM"]))
    def restart(self, how: str) -> None:
        """SIGTERM (a clean stop) or ``kill -9``, then start again on the same data."""
        self.steps_since_restart = 0
        kill = how == "kill -9"
        if kill:
            self.server.kill()
        else:
            exit_code = self.server.terminate()
            assert exit_code == 0, self.server.log()[-3000:]
        self._streams_cut(expect_reconnect=not kill)
        self.server.start()

    def _streams_cut(self, expect_reconnect: bool) -> None:
        for lineage in self.open_lineages():
            stream = lineage.stream
            self.loop.run(asyncio.wait_for(stream.ended.wait(), WAIT))
            self._collect(lineage)
            if expect_reconnect and lineage.must_end_with is None:
                assert any(e.type == "reconnect" for e in stream.received), stream.received
            self.loop.run(self._close(stream))
            lineage.stream = None
            lineage.must_end_with = None

    # ---- invariants ----------------------------------------------------------------------

    @invariant()
    def the_server_agrees_with_the_model(self) -> None:
        self.steps_since_restart += 1
        # One invariant calling the checks in this order: streams ended by a sign-out are
        # settled before the server's count of streams is compared with the model's.
        self.server_is_up_and_logged_no_failure()
        self.streams_get_exactly_what_they_may_see()
        self.the_server_counts_the_streams_the_model_has()
        self.history_holds_every_message_for_exactly_who_may_see_it()
        self.signed_out_tokens_stay_refused_and_live_ones_work()

    def server_is_up_and_logged_no_failure(self) -> None:
        assert self.server.process is not None and self.server.process.poll() is None
        log = self.server.log()
        for failure in ("unexpected error in", "stream failed for", "Traceback"):
            assert failure not in log, log[-5000:]

    def streams_get_exactly_what_they_may_see(self) -> None:
        for lineage in self.open_lineages():
            if lineage.must_end_with is not None:
                self._ended_with(lineage, lineage.must_end_with)
                continue
            expected = self.expected_ids(lineage)
            deadline = time.monotonic() + WAIT
            while True:
                self._collect(lineage)
                got = [m["id"] for m in lineage.received]
                complete = len(got) >= len(expected) and len(lineage.pushes_got) >= len(
                    lineage.pushes_due
                )
                if complete or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            assert got == expected, (lineage.user, lineage.since, got, expected)
            by_id = {m.id: m for m in self.sent}
            for payload in lineage.received:
                sent = by_id[payload["id"]]
                assert (payload["from"], payload["to"], payload["text"]) == (
                    sent.sender,
                    sent.to,
                    sent.text,
                )
            assert lineage.pushes_got == lineage.pushes_due

    def _ended_with(self, lineage: Lineage, code: str) -> None:
        stream = lineage.stream
        self.loop.run(asyncio.wait_for(stream.ended.wait(), WAIT))
        self._collect(lineage)
        errors = [json.loads(e.data) for e in stream.received if e.type == "error"]
        assert [e["error"] for e in errors][-1:] == [code], stream.received
        self.loop.run(self._close(stream))
        lineage.stream = None
        lineage.must_end_with = None

    def the_server_counts_the_streams_the_model_has(self) -> None:
        want = len(self.open_lineages())
        deadline = time.monotonic() + WAIT
        while True:
            status, body = self.call("GET", "/api/stats", SERVICE_KEY)
            assert status == 200
            if body["connections"] == want or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert body["connections"] == want

    def history_holds_every_message_for_exactly_who_may_see_it(self) -> None:
        for user in self.users.values():
            if not user.tokens:
                continue
            ids: list[int] = []
            before = ""
            while True:
                status, body = self.call("GET", f"/api/history?limit=200{before}", user.tokens[-1])
                assert status == 200, body
                page = body["messages"]
                if not page:
                    break
                ids = [m["id"] for m in page] + ids
                before = f"&before={page[0]['id']}"
            assert ids == self.visible_ids(user.name), user.name

    def signed_out_tokens_stay_refused_and_live_ones_work(self) -> None:
        for token in self.revoked[-5:]:
            status, body = self.call("GET", "/api/me", token)
            assert status == 401, body
        for user in self.users.values():
            for token in user.tokens[-2:]:
                status, body = self.call("GET", "/api/me", token)
                assert (status, body) == (200, {"username": user.name})


def model_settings() -> settings:
    if EXPLORE:
        return settings(
            max_examples=int(os.environ.get("MY_CHAT_EXPLORE_EXAMPLES", "60")),
            stateful_step_count=60,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=list(HealthCheck),
        )
    return settings(
        # Hypothesis switches a random part of the rules off in each run (swarm testing),
        # so many shorter runs cover more kinds of sequences than a few long ones.
        max_examples=10,
        stateful_step_count=30,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


# Generous: a failure is shrunk to its shortest sequence of steps, which takes a while.
@pytest.mark.timeout(3600 if EXPLORE else 900)
def test_the_server_behaves_like_the_model():
    run_state_machine_as_test(ChatModel, settings=model_settings())
