"use strict";
// The chat page: negotiate, then a plain WebSocket with the JSON subprotocol of Web PubSub.
// User text only ever reaches the DOM through textContent, never as HTML.
(() => {
  const SUBPROTOCOL = "json.webpubsub.azure.v1";
  const ACK_TIMEOUT_MS = 10000;
  const HISTORY_LIMIT = 50;

  const byId = (id) => document.getElementById(id);
  const joinForm = byId("join-form");
  const nameInput = byId("name");
  const connectButton = byId("connect");
  const leaveButton = byId("disconnect");
  const statusLine = byId("status");
  const log = byId("log");
  const sendForm = byId("send-form");
  const textInput = byId("text");
  const sendButton = byId("send");

  let socket = null;
  let me = { userId: null, connectionId: null };
  let closeReason = "";
  let nextAckId = 1;
  const shownMessages = new Map(); // message id -> <li>; broadcasts are at-least-once
  const shownPresence = new Set(); // "event:connectionId"
  // Our own sends by ackId, until both the ack and their broadcast have arrived (or the socket closed).
  const pendingSends = new Map(); // ackId -> {ackId, text, li, timer, matched, refused, state, error}

  function setStatus(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  function setConnected(connected) {
    nameInput.disabled = connected;
    connectButton.hidden = connected;
    leaveButton.hidden = !connected;
    textInput.disabled = !connected;
    sendButton.disabled = !connected;
  }

  function make(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function timeElement(iso) {
    const el = make("time", "time");
    const date = new Date(iso);
    if (iso && !Number.isNaN(date.getTime())) {
      el.dateTime = iso;
      el.title = iso;
      el.textContent = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    }
    return el;
  }

  function messageText(message) {
    if (message.dataType === "text") return String(message.data);
    if (message.dataType === "binary") {
      const size = Math.floor((String(message.data).replace(/=+$/, "").length * 3) / 4);
      return `[binary data, ${size} bytes]`;
    }
    return JSON.stringify(message.data);
  }

  // Keep the log in time order (ISO-8601 UTC strings sort as text); sends still waiting for
  // their broadcast have no time yet and stay at the end.
  function place(li) {
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const time = li.dataset.time;
    let before = null;
    for (let node = log.lastElementChild; node; node = node.previousElementSibling) {
      if (node.dataset.time && node.dataset.time <= time) break;
      before = node;
    }
    log.insertBefore(li, before);
    if (nearBottom) log.scrollTop = log.scrollHeight;
  }

  function fillMessage(li, message) {
    li.replaceChildren(
      make("span", "who", message.userId ?? ""),
      timeElement(message.time),
      make("span", "text", messageText(message)),
      make("span", "state"),
    );
    li.children[0].dataset.testid = "message-user";
    li.children[1].dataset.testid = "message-time";
    li.children[2].dataset.testid = "message-text";
    li.children[3].dataset.testid = "message-state";
    li.classList.toggle("own", message.userId != null && message.userId === me.userId);
    if (message.id) li.dataset.id = message.id;
    if (message.time) li.dataset.time = message.time;
  }

  function showMessage(message, source) {
    if (typeof message.id !== "string" || shownMessages.has(message.id)) return;
    const ownSend = source === "live" ? claimPendingSend(message) : null;
    const li = ownSend ? ownSend.li : make("li", "message");
    li.dataset.testid = "message";
    li.dataset.source = source;
    fillMessage(li, message);
    shownMessages.set(message.id, li);
    if (ownSend) {
      li.remove();
      // The broadcast comes only after the message was stored, so a send that timed out did get through.
      if (ownSend.state === "failed") ownSend.state = "sent";
      showSendState(ownSend);
      if (ownSend.state === "sent") forgetSend(ownSend);
    }
    place(li);
  }

  // The broadcast of our own send: the oldest unmatched send of this connection with the same text
  // (identical texts are interchangeable on screen). A send the service refused keeps its failed mark.
  function claimPendingSend(message) {
    if (!me.connectionId || message.connectionId !== me.connectionId || message.dataType !== "text") return null;
    for (const send of pendingSends.values()) {
      if (!send.matched && !send.refused && send.text === message.data) {
        send.matched = true;
        return send;
      }
    }
    return null;
  }

  function showPresence(presence) {
    const key = `${presence.event}:${presence.connectionId}`;
    if (shownPresence.has(key)) return;
    shownPresence.add(key);
    const who = String(presence.userId ?? "someone");
    let text = presence.event === "connected" ? `${who} joined` : `${who} left`;
    if (presence.event === "disconnected" && presence.reason) text += ` (${presence.reason})`;
    const li = make("li", "presence");
    li.dataset.testid = "presence";
    li.dataset.event = String(presence.event);
    li.dataset.user = who;
    li.append(timeElement(presence.time), make("span", "text", text));
    if (presence.time) li.dataset.time = presence.time;
    place(li);
  }

  function showNotice(text) {
    const li = make("li", "notice", text);
    li.dataset.testid = "notice";
    li.dataset.time = new Date().toISOString();
    place(li);
  }

  function showSendState(send) {
    const li = send.li;
    li.dataset.state = send.state;
    const state = li.querySelector(".state");
    state.replaceChildren();
    if (send.state === "pending") state.textContent = "sending…";
    if (send.state === "failed") {
      state.append(make("span", "error", `Not sent: ${send.error}`));
      const retry = make("button", "retry", "Retry");
      retry.type = "button";
      retry.dataset.testid = "retry-button";
      retry.addEventListener("click", () => {
        forgetSend(send);
        li.remove();
        sendText(send.text);
      });
      state.append(" ", retry);
    }
  }

  function forgetSend(send) {
    clearTimeout(send.timer);
    pendingSends.delete(send.ackId);
  }

  function failSend(send, reason) {
    send.state = "failed";
    send.error = reason;
    showSendState(send);
  }

  function sendText(text) {
    const ackId = nextAckId++;
    const li = make("li", "message own");
    li.dataset.testid = "message";
    li.dataset.source = "sent";
    fillMessage(li, { userId: me.userId ?? nameInput.value, dataType: "text", data: text });
    log.append(li);
    log.scrollTop = log.scrollHeight;
    const send = { ackId, text, li, matched: false, refused: false, state: "pending", error: "" };
    pendingSends.set(ackId, send);
    showSendState(send);
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      failSend(send, "not connected.");
      return;
    }
    send.timer = setTimeout(() => failSend(send, "no answer from the server."), ACK_TIMEOUT_MS);
    socket.send(JSON.stringify({ type: "event", event: "message", dataType: "text", data: text, ackId }));
  }

  function onAck(frame) {
    const send = pendingSends.get(frame.ackId);
    if (!send) return;
    clearTimeout(send.timer);
    // "Duplicate" means the service already processed this ackId: the send did succeed.
    if (frame.success || frame.error?.name === "Duplicate") {
      send.state = "sent";
      showSendState(send);
      if (send.matched) forgetSend(send);
    } else {
      const error = frame.error ?? {};
      send.refused = true;
      failSend(send, String(error.message || error.name || "the server refused the message."));
    }
  }

  function onServerData(data) {
    if (!data || typeof data !== "object") return;
    if (data.type === "message") showMessage(data, "live");
    else if (data.type === "presence") showPresence(data);
    // Anything else (the reply to our own send, carrying the stored id) needs no display:
    // the broadcast shows the message and the ack confirms it.
  }

  function onFrame(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "ack") onAck(frame);
    else if (frame.type === "message" && frame.from === "server" && frame.dataType === "json") {
      onServerData(frame.data);
    } else if (frame.type === "system" && frame.event === "connected") {
      me = { userId: frame.userId ?? null, connectionId: frame.connectionId ?? null };
      setStatus("connected", `Connected as ${me.userId ?? nameInput.value}.`);
    } else if (frame.type === "system" && frame.event === "disconnected") {
      closeReason = String(frame.message ?? "");
    }
  }

  async function loadHistory(name) {
    // Locally the app learns who asks from ?userId=; in Azure from App Service Authentication.
    const query = new URLSearchParams({ limit: String(HISTORY_LIMIT), userId: name });
    try {
      const response = await fetch(`messages?${query}`, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      for (const message of body.messages ?? []) showMessage(message, "history");
    } catch (error) {
      showNotice(`Could not load earlier messages: ${error.message}`);
    }
  }

  function onClose(event, opened) {
    socket = null;
    setConnected(false);
    for (const send of pendingSends.values()) {
      clearTimeout(send.timer);
      if (send.state === "pending") failSend(send, "the connection closed before the server confirmed it.");
    }
    pendingSends.clear();
    const reason = closeReason || event.reason;
    closeReason = "";
    if (!opened) setStatus("error", `Could not connect: the service refused the connection (${event.code}).`);
    else setStatus("closed", reason ? `Disconnected: ${reason}` : "Disconnected.");
  }

  async function connect(name) {
    setStatus("connecting", "Connecting…");
    connectButton.disabled = true;
    try {
      const response = await fetch(`negotiate?userId=${encodeURIComponent(name)}`);
      if (!response.ok) throw new Error((await response.text()) || `HTTP ${response.status}`);
      const { url } = await response.json();
      const ws = new WebSocket(url, SUBPROTOCOL);
      let opened = false;
      ws.addEventListener("open", () => {
        opened = true;
        setConnected(true);
        setStatus("connected", `Connected as ${name}.`);
        textInput.focus();
        loadHistory(name);
      });
      ws.addEventListener("message", onFrame);
      ws.addEventListener("close", (event) => onClose(event, opened));
      socket = ws;
    } catch (error) {
      setStatus("error", `Could not connect: ${error.message}`);
    } finally {
      connectButton.disabled = false;
    }
  }

  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name || socket) return;
    try {
      localStorage.setItem("chat.name", name);
    } catch {
      // storage may be disabled; the name is only a convenience
    }
    connect(name);
  });

  leaveButton.addEventListener("click", () => socket?.close(1000, "left the chat"));

  sendForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textInput.value;
    if (!text.trim()) return;
    textInput.value = "";
    sendText(text);
  });

  try {
    nameInput.value = localStorage.getItem("chat.name") ?? "";
  } catch {
    // no stored name
  }
})();
