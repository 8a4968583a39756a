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
// What the page says then is the message table's text for the code.
const SESSION_ENDED = new Set(["session_revoked", "session_expired"]);
const RETRY_MAX_MS = 10000;
const HISTORY_PAGE = 50;

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

// ---------------------------------------------------------------- the page's language

// Every text the page shows comes from a message table, one JSON file per language in
// /static/texts/, keyed by message key. The server's error codes are stable and in English;
// the table maps each code (key "error.CODE") to readable text. The page follows the
// browser's languages (the first one it has a table for), or ?lang=en|zh in the address.
const LANGUAGES = ["en", "zh"];
const DEFAULT_LANGUAGE = "en";
const texts = { chosen: {}, fallback: {} };

function pageLanguage() {
  const asked = new URLSearchParams(window.location.search).get("lang");
  const wanted = [asked, ...(navigator.languages || [navigator.language])];
  for (const tag of wanted) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (LANGUAGES.includes(primary)) return primary;
  }
  return DEFAULT_LANGUAGE;
}

async function loadTable(language) {
  try {
    const response = await fetch(`/static/texts/${language}.json`, { credentials: "same-origin" });
    return response.ok ? await response.json() : {};
  } catch {
    return {};
  }
}

async function loadTexts() {
  const language = pageLanguage();
  const tables = [loadTable(DEFAULT_LANGUAGE)];
  if (language !== DEFAULT_LANGUAGE) tables.push(loadTable(language));
  const [fallback, chosen = fallback] = await Promise.all(tables);
  texts.fallback = fallback;
  texts.chosen = chosen;
  document.documentElement.lang = language === "zh" ? "zh-CN" : language;
  applyTexts(document);
}

// The text for `key`, with each {name} replaced by params[name]. A key missing from the
// chosen table falls back to English, then to the key itself (visible, so it gets fixed).
function t(key, params = {}) {
  return tParts(key, params).map((part) => (typeof part === "string" ? part : part.textContent))
    .join("");
}

// The same, as a list of strings and the nodes given as params: a sentence can hold an
// element (a <code> command) wherever its language puts it, without innerHTML.
function tParts(key, params = {}) {
  const template = texts.chosen[key] ?? texts.fallback[key] ?? key;
  return template.split(/(\{\w+\})/).filter(Boolean).map((piece) => {
    const name = piece.startsWith("{") && piece.endsWith("}") ? piece.slice(1, -1) : null;
    return name !== null && name in params ? params[name] : piece;
  }).map((part) => (part instanceof Node ? part : String(part)));
}

function hasText(key) {
  return key in texts.chosen || key in texts.fallback;
}

// Fills the elements marked in index.html: data-i18n (text), data-i18n-placeholder,
// data-i18n-title, data-i18n-aria-label.
function applyTexts(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  const attributes = {
    i18nPlaceholder: "placeholder",
    i18nTitle: "title",
    i18nAriaLabel: "aria-label",
  };
  for (const [data, attribute] of Object.entries(attributes)) {
    const selector = `[data-${data.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
    for (const element of root.querySelectorAll(selector)) {
      element.setAttribute(attribute, t(element.dataset[data]));
    }
  }
}

// Readable text for a server error {error, message}: the table's text for its code, or the
// server's own (English) message for a code the table does not know.
function errorText(data, fallback = "") {
  if (data && data.error && hasText(`error.${data.error}`)) return t(`error.${data.error}`);
  return (data && data.message) || fallback;
}

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
      data: { error: "network", message: t("error.network") },
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
    data = { error: `http_${response.status}`, message: t("error.http_status", { answer }) };
  }
  return { ok: response.ok, status: response.status, data };
}

function showApiError(result) {
  if (result.status === 401 && state.me) {
    signedOut(t("status.session_ended"));
    return;
  }
  setStatus(errorText(result.data), "error", result.data.error);
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

// The badge's label for a state is the message connection.STATE.
function setConnection(name, label = t(`connection.${name}`)) {
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
  indicator.title = t("heartbeat.title", { type: beat.type, data: beat.data });
  // Restart the pulse animation: remove the class, force a style flush, add it again.
  indicator.classList.remove("beat");
  void indicator.offsetWidth;
  indicator.classList.add("beat");
}

async function loadExerciseStatus() {
  const result = await api("GET", "/api/status");
  if (!result.ok || !result.data) return;
  // The server lists its exercise parts in their order, exercise 1 first (my_chat/parts.py).
  // What the server runs while one is not done is its stand-in; the titles, and what the
  // stand-in means here, are in the message tables as exercise.NAME.title and .effect.
  const { exercises = {}, mode = "" } = result.data;
  $("mode").textContent = mode ? t("footer.mode", { mode }) : "";
  const banner = $("banner");
  const unfinished = Object.entries(exercises)
    .map(([name, status], index) => ({ name, status, number: index + 1 }))
    .filter(({ status }) => status !== "done");
  if (unfinished.length === 0) {
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  const heading = document.createElement("strong");
  heading.textContent = unfinished.length === 1
    ? t("banner.one")
    : t("banner.many", { count: unfinished.length });
  const list = document.createElement("ul");
  for (const { name, status, number } of unfinished) {
    const item = document.createElement("li");
    item.dataset.exercise = name;
    const title = document.createElement("strong");
    title.textContent = t(`exercise.${name}.title`);
    const which = t("banner.numbered", { number, name });
    // "not done" is a stub that still raises NotImplementedError; anything else is what
    // went wrong when the server tried the learner's code.
    const how = status === "not done" ? t("banner.not_done") : t("banner.failing", { status });
    const effect = t(`exercise.${name}.effect`);
    const command = document.createElement("code");
    command.textContent = `python -m exercises check ${name}`;
    item.append(...tParts("banner.item", { title, which, how, effect, command }));
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
  button.title = t("peer.title", { name });
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
    meta.append(peerButton(peer, t(outgoing ? "peer.to" : "peer.from", { name: peer })));
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
      label.textContent = t("online.you", { name });
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
  $("recipient-name").textContent = name || t("composer.everyone");
  $("recipient-clear").hidden = !name;
  $("composer").classList.toggle("private", Boolean(name));
  $("message-input").placeholder = name
    ? t("composer.placeholder_private", { name })
    : t("composer.placeholder_room");
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
  watchForSilence(source);
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
    $("connection-state").title = t("connection.client_id", { id: data.client_id });
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
      addSystemLine(t("room.away"));
      loadHistory();
    }
  });

  on("reconnect", () => {
    // The server is going away and has set `retry:`; EventSource reconnects by itself.
    setConnection("reconnecting", t("connection.server_restarting"));
    setStatus(t("status.server_restarting"), "connection");
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
      if (SESSION_ENDED.has(data.error)) {
        // Signed out elsewhere, or the token expired: reconnecting would only be refused.
        closeStream();
        signedOut(errorText(data));
        return;
      }
      setStatus(errorText(data, t("status.stream_closed")), "error", data.error || "");
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
  setConnection("offline", t("connection.retrying", { seconds: Math.ceil(delay / 1000) }));
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
    signedOut(state.me ? t("status.session_ended") : "");
  } else {
    scheduleRetry();
  }
}

// ---------------------------------------------------------------- the silence watchdog

// --8<-- [start:watchdog]
// The server sends a heartbeat to every stream at least every periodic interval (30 s by
// default). A stream silent for much longer is dead even if its socket has not noticed: a
// laptop that slept, a proxy or a NAT that dropped the connection without a word. EventSource
// itself would wait forever, so the page closes such a stream and opens a new one, which
// resumes after the last message it saw. Any frame counts as a sign of life.
const SILENCE_LIMIT_MS = 70_000; // two periodic heartbeats missed, plus a margin
const SILENCE_CHECK_MS = 5_000;
const SIGNS_OF_LIFE = ["open", "connection_id", "heartbeat", "online", "message", "presence"];

function watchForSilence(source) {
  let lastSign = Date.now();
  const alive = () => { lastSign = Date.now(); };
  for (const name of [...SIGNS_OF_LIFE, "reconnect", ...PUSH_EVENTS]) {
    source.addEventListener(name, alive);
  }
  const timer = setInterval(() => {
    if (source !== state.source) {
      clearInterval(timer); // this stream was replaced or closed: nothing left to watch
    } else if (source.readyState !== EventSource.OPEN) {
      lastSign = Date.now(); // EventSource is reconnecting by itself; silence starts after
    } else if (Date.now() - lastSign > SILENCE_LIMIT_MS) {
      clearInterval(timer);
      setStatus(t("status.silence"), "connection");
      openStream();
    }
  }, SILENCE_CHECK_MS);
}
// --8<-- [end:watchdog]

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
  signedOut(t("status.signed_out"));
}

function onComposerKey(event) {
  // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition is not a send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
}

async function start() {
  await loadTexts();
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
  setConnection("connecting", t("connection.checking"));
  const result = await api("GET", "/api/me");
  if (result.ok) enterChat(result.data.username);
  else if (result.status === 401) signedOut();
  else {
    setStatus(errorText(result.data), "error", result.data.error);
    scheduleRetry();
  }
}

start();
