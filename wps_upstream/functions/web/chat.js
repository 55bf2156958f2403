"use strict";
// The chat page: negotiate, then a plain WebSocket with the JSON subprotocol of Web PubSub.
// User text only ever reaches the DOM through textContent, never as HTML.
(() => {
  const SUBPROTOCOL = "json.webpubsub.azure.v1";
  const ACK_TIMEOUT_MS = 10000;
  const HISTORY_LIMIT = 50;
  const CATCH_UP_LIMIT = 200; // messages per catch-up page: the API's largest page
  const CATCH_UP_MAX_PAGES = 25; // 5,000 missed messages; past that the page shows the latest instead
  const CATCH_UP_TRIES = 3; // a failed catch-up request is tried again, with the reconnect backoff
  const RETRY_BASE_MS = 1000; // reconnect backoff: 1 s, 2 s, 4 s, ... each with jitter, capped
  const RETRY_CAP_MS = 30000;
  const STABLE_MS = 10000; // a connection that lasted this long resets the backoff

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
  const onlineList = byId("online");
  const onlineCount = byId("online-count");

  // --- the connection -------------------------------------------------------------------------------
  let name = ""; // who this page is (the user id locally)
  let wanted = false; // Connect pressed and not Leave: a dropped socket is opened again
  let everConnected = false; // a first connection that fails is reported, not retried
  let socket = null;
  let generation = 0; // one per connection attempt: answers of older attempts are dropped
  let attempt = 0; // reconnect attempts since the last stable connection
  let retryTimer = null;
  let openedAt = 0;
  let closeReason = "";
  let me = { userId: null, connectionId: null };
  let presenceGroup = null; // with PresenceBroadcast=group:<name>, the group presence notices go to
  const myConnections = new Set(); // every connection id this page had: its sends come back from them

  // --- messages -------------------------------------------------------------------------------------
  let nextAckId = 1;
  const shownMessages = new Map(); // message id -> <li>; broadcasts are at-least-once
  // Our own sends by ackId, until both the ack and their broadcast have arrived, or until Retry.
  const pendingSends = new Map(); // ackId -> {ackId, text, li, timer, matched, refused, state, error}
  // The newest message seen with nothing missing before it: where catch-up continues (after=).
  let cursor = null; // {id, time}
  let catchingUp = false;
  let liveBuffer = []; // broadcasts that arrive while catching up, shown once the gap is filled

  // --- presence -------------------------------------------------------------------------------------
  const shownPresence = new Set(); // "event:connectionId": each notice once
  const online = new Map(); // userId -> {userId, userName}
  const liveConnections = new Map(); // userId -> ids of connections seen joining and not yet leaving
  const goneConnections = new Set(); // connection ids seen leaving: a connection never comes back
  let noticesDuringSnapshot = null; // notices that arrived while /api/presence was being asked

  function setStatus(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
    if (state !== "reconnecting") {
      delete statusLine.dataset.attempt;
      delete statusLine.dataset.retryMs;
    }
  }

  // idle | connecting | connected | reconnecting | closed | error
  function setControls(state) {
    const inSession = state === "connected" || state === "reconnecting";
    nameInput.disabled = inSession || state === "connecting";
    connectButton.hidden = inSession;
    connectButton.disabled = state === "connecting";
    leaveButton.hidden = !inSession;
    // While reconnecting, sends are allowed and marked not sent, with Retry.
    textInput.disabled = !inSession;
    sendButton.disabled = !inSession;
    onlineList.dataset.stale = String(state !== "connected");
  }

  function make(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function displayName(userId, userName) {
    const id = String(userId ?? "");
    return userName && userName !== id ? `${userName} (${id})` : id;
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

  // Keep the log in time order (ISO-8601 UTC strings sort as text; equal times keep arrival order, and
  // catch-up arrives in the order the app stored the messages). Sends still waiting for their
  // broadcast have no time yet and stay at the end.
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

  // --- messages -------------------------------------------------------------------------------------

  function fillMessage(li, message) {
    li.replaceChildren(
      make("span", "who", displayName(message.userId, message.userName)),
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

  function advanceCursor(message) {
    if (typeof message.time !== "string") return;
    if (!cursor || message.time >= cursor.time) cursor = { id: message.id, time: message.time };
  }

  // source: history | catch-up | live
  function showMessage(message, source) {
    if (typeof message.id !== "string" || shownMessages.has(message.id)) return;
    const ownSend = claimPendingSend(message);
    const li = ownSend ? ownSend.li : make("li", "message");
    li.dataset.testid = "message";
    li.dataset.source = source;
    fillMessage(li, message);
    shownMessages.set(message.id, li);
    advanceCursor(message);
    if (ownSend) {
      li.remove();
      // The broadcast comes only after the message was stored, so a send that timed out, or whose
      // connection closed before the ack, did get through.
      if (ownSend.state === "failed") ownSend.state = "sent";
      showSendState(ownSend);
      if (ownSend.state === "sent") forgetSend(ownSend);
    }
    place(li);
  }

  // A message from one of our connections: the oldest unmatched send with the same text (identical
  // texts are interchangeable on screen). A send the service refused keeps its failed mark.
  function claimPendingSend(message) {
    if (!myConnections.has(message.connectionId) || message.dataType !== "text") return null;
    for (const send of pendingSends.values()) {
      if (!send.matched && !send.refused && send.text === message.data) {
        send.matched = true;
        return send;
      }
    }
    return null;
  }

  function onLiveMessage(message) {
    if (catchingUp) liveBuffer.push(message);
    else showMessage(message, "live");
  }

  function showNotice(text) {
    const li = make("li", "notice", text);
    li.dataset.testid = "notice";
    li.dataset.time = new Date().toISOString();
    place(li);
  }

  // --- our own sends --------------------------------------------------------------------------------

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
    clearTimeout(send.timer);
    send.state = "failed";
    send.error = reason;
    showSendState(send);
  }

  function sendText(text) {
    const ackId = nextAckId++;
    const li = make("li", "message own");
    li.dataset.testid = "message";
    li.dataset.source = "sent";
    fillMessage(li, { userId: me.userId ?? name, dataType: "text", data: text });
    log.append(li);
    log.scrollTop = log.scrollHeight;
    const send = { ackId, text, li, matched: false, refused: false, state: "pending", error: "" };
    pendingSends.set(ackId, send);
    showSendState(send);
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      failSend(send, retryTimer || wanted ? "not connected (reconnecting)." : "not connected.");
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

  // --- who is online --------------------------------------------------------------------------------
  // Notices are set operations on connection ids, so duplicates and any arrival order give the same
  // list: a connection seen leaving never counts again, and a user goes offline only when the app says
  // so ("user": "offline") and no connection of theirs is known to be live.

  function connectionsOf(userId) {
    let live = liveConnections.get(userId);
    if (!live) liveConnections.set(userId, (live = new Set()));
    return live;
  }

  // Whether the notice still says something (a join of a connection already gone says nothing).
  function applyNotice(notice) {
    const userId = String(notice.userId);
    const connectionId = String(notice.connectionId);
    if (notice.event === "connected") {
      if (goneConnections.has(connectionId)) return false;
      connectionsOf(userId).add(connectionId);
      online.set(userId, { userId, userName: notice.userName ?? online.get(userId)?.userName });
      return true;
    }
    if (notice.event === "disconnected") {
      goneConnections.add(connectionId);
      const live = connectionsOf(userId);
      live.delete(connectionId);
      if (notice.user === "offline" && live.size === 0) online.delete(userId);
      return true;
    }
    return false;
  }

  // The snapshot replaces what the page knew, then the notices that arrived while it was on its way
  // are applied again: those it already reflects change nothing, the newer ones are not lost.
  function applySnapshot(users, notices) {
    online.clear();
    liveConnections.clear();
    for (const user of users) {
      if (typeof user?.userId === "string") {
        online.set(user.userId, { userId: user.userId, userName: user.userName });
      }
    }
    for (const notice of notices) applyNotice(notice);
    renderOnline();
  }

  function renderOnline() {
    const users = [...online.values()].sort((a, b) =>
      displayName(a.userId, a.userName).localeCompare(displayName(b.userId, b.userName)),
    );
    onlineList.replaceChildren(
      ...users.map((user) => {
        const li = make("li", "user", displayName(user.userId, user.userName));
        li.dataset.testid = "online-user";
        li.dataset.user = user.userId;
        if (user.userId === me.userId) li.append(make("span", "you", " (you)"));
        return li;
      }),
    );
    onlineCount.textContent = String(users.length);
  }

  function showPresence(notice) {
    const key = `${notice.event}:${notice.connectionId}`;
    if (shownPresence.has(key)) return;
    shownPresence.add(key);
    if (noticesDuringSnapshot) noticesDuringSnapshot.push(notice);
    const userId = String(notice.userId);
    const wasOnline = online.has(userId);
    if (!applyNotice(notice)) return;
    renderOnline();
    // The log tells when users came and went: another tab of someone already here, or a repeated
    // "online", is not news.
    if (online.has(userId) === wasOnline) return;
    const who = displayName(notice.userId ?? "someone", notice.userName);
    let text = notice.event === "connected" ? `${who} joined` : `${who} left`;
    if (notice.event === "disconnected" && notice.reason) text += ` (${notice.reason})`;
    const li = make("li", "presence");
    li.dataset.testid = "presence";
    li.dataset.event = String(notice.event);
    li.dataset.user = String(notice.userId ?? "someone");
    li.append(timeElement(notice.time), make("span", "text", text));
    if (notice.time) li.dataset.time = notice.time;
    place(li);
  }

  // --- frames ---------------------------------------------------------------------------------------

  function onServerData(data) {
    if (!data || typeof data !== "object") return;
    if (data.type === "message") onLiveMessage(data);
    else if (data.type === "presence") showPresence(data);
    // Anything else (the reply to our own send, carrying the stored id) needs no display:
    // the broadcast shows the message and the ack confirms it.
  }

  // The app's broadcasts come from the server, or from the presence group when presence goes there.
  function fromTheApp(frame) {
    return frame.from === "server" || (frame.from === "group" && presenceGroup !== null && frame.group === presenceGroup);
  }

  function onFrame(event) {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "ack") onAck(frame);
    else if (frame.type === "message" && fromTheApp(frame) && frame.dataType === "json") {
      onServerData(frame.data);
    } else if (frame.type === "system" && frame.event === "connected") {
      me = { userId: frame.userId ?? null, connectionId: frame.connectionId ?? null };
      if (me.connectionId) myConnections.add(me.connectionId);
      setStatus("connected", `Connected as ${me.userId ?? name}.`);
      renderOnline();
    } else if (frame.type === "system" && frame.event === "disconnected") {
      closeReason = String(frame.message ?? "");
    }
  }

  // --- the app's routes -----------------------------------------------------------------------------

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // Locally the app learns who asks from ?userId=; in Azure from App Service Authentication.
  async function getJson(route, params) {
    const query = new URLSearchParams({ ...params, userId: name });
    const response = await fetch(`${route}?${query}`, { headers: { Accept: "application/json" } });
    if (!response.ok) {
      const text = (await response.text()).trim();
      throw new HttpError(response.status, text || `HTTP ${response.status}`);
    }
    return response.json();
  }

  const current = (gen) => gen === generation;

  async function loadLatest(gen) {
    const body = await getJson("messages", { limit: String(HISTORY_LIMIT) });
    if (!current(gen)) return;
    for (const message of body.messages ?? []) showMessage(message, "history");
  }

  // Every message stored after the cursor, oldest first, page after page until `next` is null.
  async function catchUp(gen) {
    let after = cursor.id;
    for (let pages = 0; after; pages++) {
      if (pages === CATCH_UP_MAX_PAGES) {
        showNotice(`More than ${CATCH_UP_LIMIT * pages} messages were missed; only the latest are shown.`);
        await loadLatest(gen);
        return;
      }
      const body = await getJson("messages", { after, limit: String(CATCH_UP_LIMIT) });
      if (!current(gen)) return;
      for (const message of body.messages ?? []) showMessage(message, "catch-up");
      after = body.next ?? null;
    }
  }

  async function fillGap(gen) {
    if (!cursor) return loadLatest(gen);
    try {
      return await catchUp(gen);
    } catch (error) {
      if (!(error instanceof HttpError) || error.status !== 400) throw error;
      // The app does not know the message any more: show the latest instead, and say so.
      showNotice(`Could not catch up (${error.message}); some messages may be missing.`);
      return loadLatest(gen);
    }
  }

  // After each (re)connection: fill in what was missed, then show the broadcasts that came meanwhile.
  async function synchronize(gen) {
    catchingUp = true;
    log.setAttribute("aria-busy", "true"); // history is being filled in
    liveBuffer = [];
    for (let tries = 1; ; tries++) {
      try {
        await fillGap(gen);
        break;
      } catch (error) {
        if (!current(gen)) return;
        if (tries === CATCH_UP_TRIES || (error instanceof HttpError && error.status < 500)) {
          showNotice(`Could not load ${cursor ? "missed" : "earlier"} messages: ${error.message}`);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, backoff(tries - 1)));
        if (!current(gen)) return;
      }
    }
    if (!current(gen)) return;
    catchingUp = false;
    const buffered = liveBuffer;
    liveBuffer = [];
    for (const message of buffered) showMessage(message, "live");
    log.setAttribute("aria-busy", "false");
  }

  async function loadPresence(gen) {
    noticesDuringSnapshot = [];
    try {
      const body = await getJson("presence", {});
      if (!current(gen)) return;
      applySnapshot(Array.isArray(body.users) ? body.users : [], noticesDuringSnapshot);
    } catch (error) {
      if (current(gen)) showNotice(`Could not load who is online: ${error.message}`);
    } finally {
      if (current(gen)) noticesDuringSnapshot = null;
    }
  }

  // --- connecting and reconnecting ------------------------------------------------------------------

  // Exponential backoff with jitter: half to all of min(cap, base × 2^n).
  function backoff(n) {
    const ceiling = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(n, 16));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  function scheduleReconnect(reason) {
    const delay = backoff(attempt);
    attempt += 1;
    setControls("reconnecting");
    const why = reason ? ` (${reason})` : "";
    setStatus("reconnecting", `Connection lost${why}. Reconnecting in ${Math.ceil(delay / 1000)} s… (attempt ${attempt})`);
    statusLine.dataset.attempt = String(attempt);
    statusLine.dataset.retryMs = String(delay);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      openConnection();
    }, delay);
  }

  function giveUp(text) {
    wanted = false;
    setControls("error");
    setStatus("error", text);
  }

  function onOpen(gen) {
    // Presence sent to a group reaches only members: join before the snapshot is asked for.
    if (presenceGroup) socket.send(JSON.stringify({ type: "joinGroup", group: presenceGroup }));
    everConnected = true;
    openedAt = Date.now();
    setControls("connected");
    setStatus("connected", `Connected as ${name}.`);
    textInput.focus();
    synchronize(gen);
    loadPresence(gen);
  }

  function onClose(event, opened) {
    socket = null;
    generation += 1; // answers of this connection's requests are no longer wanted
    catchingUp = false;
    log.setAttribute("aria-busy", "false");
    liveBuffer = [];
    noticesDuringSnapshot = null;
    for (const send of pendingSends.values()) {
      if (send.state === "pending") failSend(send, "the connection closed before the server confirmed it.");
    }
    const reason = closeReason || event.reason;
    closeReason = "";
    if (!wanted) {
      setControls("closed");
      setStatus("closed", reason ? `Disconnected: ${reason}` : "Disconnected.");
    } else if (!everConnected) {
      giveUp(`Could not connect: the service refused the connection (${event.code}).`);
    } else {
      if (opened && Date.now() - openedAt >= STABLE_MS) attempt = 0;
      scheduleReconnect(reason || (opened ? "" : `the service refused the connection (${event.code})`));
    }
  }

  async function openConnection() {
    const gen = ++generation;
    if (!everConnected) {
      setControls("connecting");
      setStatus("connecting", "Connecting…");
    } else {
      statusLine.textContent = `Reconnecting… (attempt ${attempt})`;
    }
    let url;
    try {
      ({ url, presenceGroup = null } = await getJson("negotiate", {}));
    } catch (error) {
      if (!current(gen) || !wanted) return;
      const refused = error instanceof HttpError && [400, 401, 403].includes(error.status);
      if (!everConnected) giveUp(`Could not connect: ${error.message}`);
      else if (refused) giveUp(`Could not reconnect: ${error.message}. Press Connect to try again.`);
      else scheduleReconnect(error.message);
      return;
    }
    if (!current(gen) || !wanted) return;
    const ws = new WebSocket(url, SUBPROTOCOL);
    let opened = false;
    ws.addEventListener("open", () => {
      if (!current(gen)) return;
      opened = true;
      onOpen(gen);
    });
    ws.addEventListener("message", (event) => {
      if (socket === ws) onFrame(event);
    });
    ws.addEventListener("close", (event) => {
      if (socket === ws) onClose(event, opened);
    });
    socket = ws;
  }

  function leave() {
    wanted = false;
    if (socket) {
      socket.close(1000, "left the chat"); // onClose reports it
      return;
    }
    clearTimeout(retryTimer);
    retryTimer = null;
    generation += 1;
    setControls("closed");
    setStatus("closed", "Disconnected.");
  }

  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = nameInput.value.trim();
    if (!typed || wanted) return;
    try {
      localStorage.setItem("chat.name", typed);
    } catch {
      // storage may be disabled; the name is only a convenience
    }
    everConnected = false;
    name = typed;
    wanted = true;
    attempt = 0;
    openConnection();
  });

  leaveButton.addEventListener("click", leave);

  // Back online: try now instead of waiting for the backoff.
  window.addEventListener("online", () => {
    if (!retryTimer) return;
    clearTimeout(retryTimer);
    retryTimer = null;
    openConnection();
  });

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
