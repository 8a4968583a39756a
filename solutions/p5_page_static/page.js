// The page of phase 5, step 6: EventSource, by hand.
//
// Signing in, sending and the online list are written for you. Yours are the four
// functions marked TODO, the stream's life: which URL to open, what "open" and "error"
// mean for the state shown in #state, and how a message is shown once and remembered.
"use strict";

// sessionStorage lives as long as the tab: it survives a reload, and each tab has its own.
const TOKEN_KEY = "p5.token";
const USER_KEY = "p5.user";
const LAST_ID_KEY = "p5.lastId";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: sessionStorage.getItem(USER_KEY),
  // The highest message id shown; after a reload it comes back from sessionStorage.
  lastId: Number(sessionStorage.getItem(LAST_ID_KEY) || 0),
  seen: new Set(), // ids of the messages on the page: none is shown twice
  online: new Set(),
  source: null,
};

const $ = (id) => document.getElementById(id);

// Shows the stream's state: "offline", "connecting", "live" or "reconnecting".
function setState(name) {
  $("state").textContent = name;
  $("state").dataset.state = name;
}

// The URL of the stream for `token`, resuming after message `lastId` when it is above 0:
//   /sse?token=TOKEN                      (lastId 0: a first visit)
//   /sse?token=TOKEN&last_event_id=17     (after a reload that had shown message 17)
// EventSource cannot send headers, so both go in the query; encode the token.
// (On its own reconnections EventSource sends the Last-Event-ID header by itself.)
function streamUrl(token, lastId) {
  // ### BEGIN SOLUTION: the /sse URL with the token, plus last_event_id when lastId > 0
  const url = `/sse?token=${encodeURIComponent(token)}`;
  return lastId > 0 ? `${url}&last_event_id=${lastId}` : url;
  // ### END SOLUTION
}

// The stream is open: the state is "live".
function onOpen() {
  // ### BEGIN SOLUTION: show the state live
  setState("live");
  // ### END SOLUTION
}

// The connection failed or ended. EventSource then either tries again by itself
// (source.readyState is EventSource.CONNECTING): the state is "reconnecting"; or it has
// given up (EventSource.CLOSED, e.g. the server answered 401): the state is "offline".
function onError(source) {
  // ### BEGIN SOLUTION: reconnecting while EventSource retries, offline once it is CLOSED
  setState(source.readyState === EventSource.CLOSED ? "offline" : "reconnecting");
  // ### END SOLUTION
}

// A `message` event: its data is the message as JSON ({id, from, to, text, timestamp}).
// Show it with addMessage(msg) unless a message with its id is already shown (a replay can
// overlap what arrived live), and remember the highest id in state.lastId and in
// sessionStorage under LAST_ID_KEY, so that a reload can resume after it.
function onMessage(event) {
  // ### BEGIN SOLUTION: parse, skip an id already in state.seen, show it, remember the id
  const msg = JSON.parse(event.data);
  if (state.seen.has(msg.id)) return;
  state.seen.add(msg.id);
  addMessage(msg);
  if (msg.id > state.lastId) {
    state.lastId = msg.id;
    sessionStorage.setItem(LAST_ID_KEY, String(msg.id));
  }
  // ### END SOLUTION
}

function connect() {
  if (state.source) state.source.close();
  setState("connecting");
  const source = new EventSource(streamUrl(state.token, state.lastId));
  state.source = source;
  source.addEventListener("open", () => onOpen());
  source.addEventListener("error", () => onError(source));
  source.addEventListener("message", (event) => onMessage(event));
  source.addEventListener("online", (event) => {
    state.online = new Set(JSON.parse(event.data).users);
    renderOnline();
  });
  source.addEventListener("presence", (event) => {
    const change = JSON.parse(event.data);
    if (change.online) state.online.add(change.user);
    else state.online.delete(change.user);
    renderOnline();
  });
}

// Every piece of user data reaches the page through textContent, never innerHTML.
function addMessage(msg) {
  const item = document.createElement("li");
  item.dataset.id = String(msg.id);
  const sender = document.createElement("b");
  sender.textContent = msg.to ? `${msg.from} → ${msg.to}` : msg.from;
  item.append(sender, document.createTextNode(msg.text));
  $("messages").append(item);
}

function renderOnline() {
  $("online").textContent = [...state.online].sort().join(", ");
}

function showChat() {
  $("login").hidden = true;
  $("chat").hidden = false;
  $("me").textContent = state.me;
}

async function post(path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error(data.message || response.statusText);
  return data;
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const data = await post("/api/login", { username: $("username").value });
    state.token = data.token;
    state.me = data.username;
    sessionStorage.setItem(TOKEN_KEY, data.token);
    sessionStorage.setItem(USER_KEY, data.username);
    showChat();
    connect();
  } catch (error) {
    alert(error.message);
  }
});

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await post("/api/messages", { text: $("text").value }, state.token);
    $("text").value = "";
    $("problem").textContent = "";
  } catch (error) {
    $("problem").textContent = error.message;
  }
});

// A reload keeps the tab's sessionStorage: sign in again without asking, and resume.
if (state.token) {
  showChat();
  connect();
}
