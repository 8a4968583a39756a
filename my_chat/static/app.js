// my_chat's page: plain JavaScript, no build step, no libraries.
//
// It improves on the guide's phase 5 page in the ways the chapters discuss:
// - the name comes from a signed-in session (an HttpOnly cookie the server sets),
//   not from a text box anyone can fill with someone else's name;
// - every piece of user data reaches the DOM through textContent, never innerHTML;
// - the connection state is visible, and the page reconnects by itself, without
//   showing a message twice (de-duplication by message id, resume by Last-Event-ID);
// - heartbeats, presence, private messages and pushed events are all shown.
"use strict";

// Pushed events (POST /api/push, /api/broadcast) carry names the page cannot know in
// advance, and EventSource has no wildcard listener: an event reaches only listeners
// registered for its exact `event:` name, and unnamed events go to "message", which
// here means a chat message. So the page shows the pushed events it knows by name,
// as system lines. A client that must see every name reads the stream with fetch()
// and its own parser instead (the notebooks do that with httpx-sse).
const PUSH_EVENTS = ["notice"];

// When EventSource gives up (readyState CLOSED, e.g. after a 401 or a 5xx answer),
// the page retries by itself, doubling the wait from RETRY_MIN_MS up to RETRY_MAX_MS.
const RETRY_MIN_MS = 1000;
// The `error` events that end a stream because its session ended (my_chat/sessions.py),
// and what the page says then. The page signs out and does not reconnect.
const SESSION_ENDED = {
  session_revoked: "You were signed out (on this or another device). Please sign in again.",
  session_expired: "Your session has expired. Please sign in again.",
};
const RETRY_MAX_MS = 10000;
const HISTORY_PAGE = 50;

// The exercises in the order `python -m exercises` lists them, and what the server does
// while one is not done (see my_chat/server.py): it runs without that part.
const EXERCISES = {
  heartbeat: {
    number: 1,
    title: "Heartbeats",
    effect: "streams get no heartbeats: the ♥ indicator stays empty, and a proxy may cut "
      + "an idle connection.",
  },
  tokens: {
    number: 2,
    title: "Sign-in tokens",
    effect: "sign-in uses sessions kept in memory, which a server restart forgets.",
  },
  message_store: {
    number: 3,
    title: "Message store",
    effect: "messages are not stored: no history, and nothing to replay after a reconnection.",
  },
  private: {
    number: 4,
    title: "Private messages",
    effect: "messages to one person are refused.",
  },
};

const state = {
  me: null, // the signed-in user's name
  source: null, // the current EventSource
  seen: new Set(), // ids of the messages in the DOM: nothing is shown twice
  lastStreamId: 0, // the highest message id received on the stream
  recipient: null, // null: the room; otherwise a user's name
  retryDelay: RETRY_MIN_MS,
  retryTimer: null,
  heartbeats: 0,
  olderExhausted: false,
  online: new Set(), // who is online: the stream's `online` list, then `presence` changes
};

const $ = (id) => document.getElementById(id);

function lastIdKey(name) {
  return `my_chat:last_event_id:${name}`;
}

// ---------------------------------------------------------------- the HTTP API

// Calls the API and never throws: {ok, status, data}, where a failure's data is
// always {error, message}, from the server or made up here.
async function api(method, path, body) {
  const init = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    return {
      ok: false,
      status: 0,
      data: { error: "network", message: "Cannot reach the server." },
    };
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok && !(data && typeof data.message === "string")) {
    const answer = [response.status, response.statusText].filter(Boolean).join(" ");
    data = { error: `http_${response.status}`, message: `The server answered ${answer}.` };
  }
  return { ok: response.ok, status: response.status, data };
}

function showApiError(result) {
  if (result.status === 401 && state.me) {
    signedOut("Your session has ended. Please sign in again.");
    return;
  }
  setStatus(result.data.message, "error", result.data.error);
  if (result.data.error === "exercise_not_done") loadExerciseStatus();
}

// ---------------------------------------------------------------- status bar

function setStatus(text, kind, code = "") {
  const line = $("status-line");
  line.textContent = text;
  line.dataset.kind = kind;
  line.dataset.error = code;
}

// Clears the status line if it still shows something of this kind.
function clearStatus(kind) {
  if ($("status-line").dataset.kind === kind) setStatus("", "");
}

const CONNECTION_LABELS = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  offline: "offline",
  "signed-out": "signed out",
};

function setConnection(name, label = CONNECTION_LABELS[name]) {
  const badge = $("connection-state");
  badge.dataset.state = name;
  badge.textContent = label;
}

function formatClock(ms) {
  return new Date(ms).toLocaleTimeString([], { hourCycle: "h23" });
}

function showHeartbeat(beat) {
  const indicator = $("heartbeat");
  state.heartbeats += 1;
  const when = typeof beat.timestamp === "number" ? formatClock(beat.timestamp) : beat.data;
  indicator.textContent = `♥ ${beat.type} ${when}`;
  indicator.dataset.type = beat.type;
  indicator.dataset.count = String(state.heartbeats);
  indicator.title = `Last heartbeat: ${beat.type}, sent ${beat.data}`;
  // Restart the pulse animation: remove the class, force a style flush, add it again.
  indicator.classList.remove("beat");
  void indicator.offsetWidth;
  indicator.classList.add("beat");
}

async function loadExerciseStatus() {
  const result = await api("GET", "/api/status");
  if (!result.ok || !result.data) return;
  const { exercises = {}, mode = "" } = result.data;
  $("mode").textContent = mode ? `mode: ${mode}` : "";
  const banner = $("banner");
  const unfinished = Object.entries(exercises).filter(([, status]) => status !== "done");
  if (unfinished.length === 0) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  const heading = document.createElement("strong");
  heading.textContent = unfinished.length === 1
    ? "An exercise is not done yet."
    : `${unfinished.length} exercises are not done yet.`;
  const list = document.createElement("ul");
  for (const [name, status] of unfinished) {
    const known = EXERCISES[name] || { title: name, effect: "this part of the server is off." };
    const item = document.createElement("li");
    item.dataset.exercise = name;
    const title = document.createElement("strong");
    title.textContent = `${known.title}: `;
    const which = known.number ? `exercise ${known.number} (${name})` : `exercise ${name}`;
    // "not done" is a stub that still raises NotImplementedError; anything else is what
    // went wrong when the server tried the learner's code.
    const how = status === "not done" ? "is not done yet" : `does not work yet (${status})`;
    const command = document.createElement("code");
    command.textContent = `python -m exercises check ${name}`;
    item.append(title, `${which} ${how}, so ${known.effect} Run `, command, ".");
    list.append(item);
  }
  banner.replaceChildren(heading, list);
  banner.hidden = false;
}

// ---------------------------------------------------------------- messages

function isNearBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 48;
}

// Inserts an element carrying data-id into a list kept in id order. Messages nearly
// always arrive in order, so the search starts from the end.
function insertInOrder(list, element, id) {
  let before = null;
  for (let child = list.lastElementChild; child; child = child.previousElementSibling) {
    if (!child.dataset.id) continue;
    if (Number(child.dataset.id) > id) before = child;
    else break;
  }
  const follow = before === null && isNearBottom(list);
  list.insertBefore(element, before);
  if (follow) list.scrollTop = list.scrollHeight;
}

function peerButton(name, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link peer";
  button.dataset.peer = name;
  button.textContent = label;
  button.title = `Send ${name} a private message`;
  button.addEventListener("click", () => pickRecipient(name));
  return button;
}

// --8<-- [start:render]
function renderMessage(msg) {
  const item = document.createElement("li");
  item.className = "msg";
  item.dataset.id = String(msg.id);
  item.dataset.from = msg.from;
  if (msg.from === state.me) item.classList.add("mine");

  const meta = document.createElement("div");
  meta.className = "meta";
  if (msg.to) {
    const outgoing = msg.from === state.me;
    const peer = outgoing ? msg.to : msg.from;
    item.classList.add(outgoing ? "outgoing" : "incoming");
    item.dataset.to = msg.to;
    meta.append(peerButton(peer, outgoing ? `to ${peer}` : `from ${peer}`));
  } else {
    const sender = document.createElement("span");
    sender.className = "from";
    sender.textContent = msg.from;
    meta.append(sender);
  }
  const time = document.createElement("time");
  const date = new Date(msg.timestamp);
  time.dateTime = date.toISOString();
  time.title = date.toLocaleString();
  time.textContent = date.toLocaleTimeString([], {
    hourCycle: "h23",
    hour: "2-digit",
    minute: "2-digit",
  });
  meta.append(time);

  const text = document.createElement("div");
  text.className = "text";
  text.dataset.testid = "message-text";
  text.textContent = msg.text;

  item.append(meta, text);
  return item;
}

function addMessage(msg) {
  if (!msg || typeof msg.id !== "number" || state.seen.has(msg.id)) return;
  state.seen.add(msg.id);
  const list = msg.to ? $("private-messages") : $("room-messages");
  insertInOrder(list, renderMessage(msg), msg.id);
  updateLoadOlder();
}
// --8<-- [end:render]

function addSystemLine(text) {
  const item = document.createElement("li");
  item.className = "system";
  item.textContent = text;
  const list = $("room-messages");
  const follow = isNearBottom(list);
  list.append(item);
  if (follow) list.scrollTop = list.scrollHeight;
}

function oldestSeenId() {
  let oldest = Infinity;
  for (const id of state.seen) oldest = Math.min(oldest, id);
  return oldest;
}

function updateLoadOlder() {
  $("load-older").hidden = state.olderExhausted || state.seen.size === 0 || oldestSeenId() <= 1;
}

// Fetches up to HISTORY_PAGE messages older than `before` (all of them are de-duplicated
// against what the stream already delivered).
async function loadHistory(before) {
  const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  if (before) query.set("before", String(before));
  const result = await api("GET", `/api/history?${query}`);
  if (!result.ok) {
    showApiError(result);
    return;
  }
  const messages = result.data.messages || [];
  if (messages.length < HISTORY_PAGE) state.olderExhausted = true;
  for (const msg of messages) addMessage(msg);
  updateLoadOlder();
}

// ---------------------------------------------------------------- online list, recipient

function renderOnline(users) {
  const list = $("online-list");
  const items = [...users].sort().map((name) => {
    const item = document.createElement("li");
    item.dataset.user = name;
    if (name === state.me) {
      item.classList.add("me");
      const label = document.createElement("span");
      label.textContent = `${name} (you)`;
      item.append(label);
    } else {
      const button = peerButton(name, name);
      if (name === state.recipient) item.classList.add("selected");
      item.append(button);
    }
    return item;
  });
  list.replaceChildren(...items);
  $("online-count").textContent = `(${[...users].length})`;
}

function setRecipient(name) {
  if (name && name === state.me) return;
  state.recipient = name;
  const indicator = $("recipient");
  indicator.dataset.to = name || "";
  $("recipient-name").textContent = name || "everyone";
  $("recipient-clear").hidden = !name;
  $("composer").classList.toggle("private", Boolean(name));
  $("message-input").placeholder = name
    ? `Private message to ${name} — Enter sends`
    : "Write a message — Enter sends, Shift+Enter for a new line";
  for (const item of $("online-list").children) {
    item.classList.toggle("selected", item.dataset.user === name);
  }
}

function pickRecipient(name) {
  setRecipient(name);
  $("message-input").focus();
}

// ---------------------------------------------------------------- the event stream

function closeStream() {
  if (state.source) state.source.close();
  state.source = null;
}

function parseData(event) {
  try {
    return JSON.parse(event.data);
  } catch {
    return event.data;
  }
}

// --8<-- [start:open-stream]
function openStream() {
  closeStream();
  clearTimeout(state.retryTimer);
  // The first connection after a reload resumes from the id kept in sessionStorage.
  // (EventSource cannot set headers; on its own reconnections it sends Last-Event-ID.)
  const url = state.lastStreamId > 0 ? `/sse?last_event_id=${state.lastStreamId}` : "/sse";
  const source = new EventSource(url);
  state.source = source;
  setConnection("connecting");

  // Events from a source we have since replaced are ignored.
  const on = (name, handler) => {
    source.addEventListener(name, (event) => {
      if (source !== state.source) return;
      handler(event);
    });
  };

  on("open", () => {
    setConnection("live");
    state.retryDelay = RETRY_MIN_MS;
    clearStatus("connection");
  });

  on("connection_id", (event) => {
    const data = parseData(event);
    $("connection-state").title = `client id ${data.client_id}`;
  });

  // The whole list comes once per connection; after it, only changes.
  on("online", (event) => {
    state.online = new Set(parseData(event).users || []);
    renderOnline(state.online);
  });

  on("heartbeat", (event) => showHeartbeat(parseData(event)));

  on("message", (event) => {
    const msg = parseData(event);
    addMessage(msg);
    if (msg.id > state.lastStreamId) {
      state.lastStreamId = msg.id;
      sessionStorage.setItem(lastIdKey(state.me), String(msg.id));
    }
  });

  on("presence", (event) => {
    const change = parseData(event);
    if (change.online) state.online.add(change.user);
    else state.online.delete(change.user);
    renderOnline(state.online);
  });

  // The server resumed us from further back than one replay sends: what is on screen has a
  // gap. Start the lists over from the paged history API (the stream sends the latest
  // messages after this event; addMessage drops any that the history page also had).
  on("recovered", (event) => {
    const data = parseData(event);
    if (data && data.recovered === false) {
      state.seen.clear();
      state.olderExhausted = false;
      $("room-messages").replaceChildren();
      $("private-messages").replaceChildren();
      addSystemLine("You were away a long time: showing the latest messages.");
      loadHistory();
    }
  });

  on("reconnect", () => {
    // The server is going away and has set `retry:`; EventSource reconnects by itself.
    setConnection("reconnecting", "server restarting, reconnecting…");
    setStatus("Server restarting, reconnecting…", "connection");
  });

  for (const name of PUSH_EVENTS) {
    on(name, (event) => {
      const data = parseData(event);
      let text = data;
      if (data && typeof data === "object") {
        text = data.text || data.message || JSON.stringify(data);
      }
      addSystemLine(`${name}: ${text}`);
    });
  }

  // Two different things arrive as "error": the server's own `event: error` frame (a
  // MessageEvent, with data) and EventSource's report that the connection failed (a
  // plain Event). readyState tells a failure EventSource retries (CONNECTING) from one
  // it gave up on (CLOSED).
  on("error", (event) => {
    if (typeof event.data === "string") {
      const data = parseData(event);
      if (SESSION_ENDED[data.error]) {
        // Signed out elsewhere, or the token expired: reconnecting would only be refused.
        closeStream();
        signedOut(SESSION_ENDED[data.error]);
        return;
      }
      setStatus(data.message || "The server closed the stream.", "error", data.error || "");
      return;
    }
    if (source.readyState === EventSource.CLOSED) {
      closeStream();
      scheduleRetry();
    } else {
      setConnection("reconnecting");
    }
  });
}
// --8<-- [end:open-stream]

function scheduleRetry() {
  clearTimeout(state.retryTimer);
  // Some jitter, so that pages do not all come back at the same instant after a restart.
  const delay = Math.round(state.retryDelay * (0.8 + Math.random() * 0.4));
  state.retryDelay = Math.min(state.retryDelay * 2, RETRY_MAX_MS);
  setConnection("offline", `offline — retrying in ${Math.ceil(delay / 1000)} s`);
  state.retryTimer = setTimeout(retryNow, delay);
}

// Asks /api/me before opening a new stream: a 401 means the session is over, and
// reconnecting would only fail again.
async function retryNow() {
  clearTimeout(state.retryTimer);
  const result = await api("GET", "/api/me");
  if (result.ok) {
    if (result.data.username === state.me) openStream();
    else enterChat(result.data.username);
  } else if (result.status === 401) {
    signedOut(state.me ? "Your session has ended. Please sign in again." : "");
  } else {
    scheduleRetry();
  }
}

// ---------------------------------------------------------------- views

function resetChat() {
  closeStream();
  clearTimeout(state.retryTimer);
  state.seen.clear();
  state.lastStreamId = 0;
  state.olderExhausted = false;
  state.retryDelay = RETRY_MIN_MS;
  $("room-messages").replaceChildren();
  $("private-messages").replaceChildren();
  $("online-list").replaceChildren();
  $("online-count").textContent = "";
  setRecipient(null);
  updateLoadOlder();
}

function enterChat(name) {
  resetChat();
  state.me = name;
  $("me-name").textContent = name;
  $("whoami").hidden = false;
  $("auth-view").hidden = true;
  $("chat-view").hidden = false;
  clearStatus("error");

  const stored = Number(sessionStorage.getItem(lastIdKey(name)) || 0);
  if (stored > 0) {
    // A reload: repaint what was on screen, and let the stream send only what is newer.
    state.lastStreamId = stored;
    loadHistory(stored + 1);
  }
  openStream();
  $("message-input").focus();
}

function signedOut(message = "") {
  resetChat();
  state.me = null;
  $("whoami").hidden = true;
  $("chat-view").hidden = true;
  $("auth-view").hidden = false;
  setConnection("signed-out");
  if (message) setStatus(message, "info");
  $("username").focus();
}

// ---------------------------------------------------------------- actions

async function onAuthSubmit(event) {
  event.preventDefault();
  const action = event.submitter && event.submitter.value === "signup" ? "signup" : "login";
  const username = $("username").value.trim();
  const password = $("password").value;
  const buttons = event.currentTarget.querySelectorAll("button");
  buttons.forEach((button) => { button.disabled = true; });
  // The answer also carries a token for API clients. The page ignores it: its credential
  // is the HttpOnly cookie, which no script (and so no injected script) can read.
  const result = await api("POST", `/api/${action}`, { username, password });
  buttons.forEach((button) => { button.disabled = false; });
  if (!result.ok) {
    showApiError(result);
    return;
  }
  $("password").value = "";
  enterChat(result.data.username);
}

// --8<-- [start:send]
async function onSend(event) {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value;
  if (text === "") return;
  const body = state.recipient ? { text, to: state.recipient } : { text };
  $("send").disabled = true;
  const result = await api("POST", "/api/messages", body);
  $("send").disabled = false;
  if (result.ok) {
    input.value = "";
    clearStatus("error");
    // The stream brings the same message; the id makes sure it is shown once.
    addMessage(result.data);
  } else {
    showApiError(result);
  }
  input.focus();
}
// --8<-- [end:send]

async function onLogout() {
  const name = state.me;
  await api("POST", "/api/logout");
  if (name) sessionStorage.removeItem(lastIdKey(name));
  signedOut("Signed out.");
}

function onComposerKey(event) {
  // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is not a send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
}

async function start() {
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("composer").addEventListener("submit", onSend);
  $("message-input").addEventListener("keydown", onComposerKey);
  $("logout").addEventListener("click", onLogout);
  $("recipient-clear").addEventListener("click", () => pickRecipient(null));
  $("load-older").addEventListener("click", () => loadHistory(oldestSeenId()));
  window.addEventListener("online", () => {
    if (state.me && !state.source) retryNow();
  });

  loadExerciseStatus();
  setConnection("connecting", "checking session…");
  const result = await api("GET", "/api/me");
  if (result.ok) enterChat(result.data.username);
  else if (result.status === 401) signedOut();
  else {
    setStatus(result.data.message, "error", result.data.error);
    scheduleRetry();
  }
}

start();
