// The customer web chat: Rasa's socket.io channel (events user_uttered / bot_uttered, one session
// per browser), and the hub's /chat/state for the status line ("a specialist is checking", "you are
// chatting with ...").
// The session id is the server's: it is signed by the Rasa server, kept in localStorage and sent
// back on reconnect (an id the server did not issue is replaced by a fresh one in session_confirm).
//
// Who speaks (issue 15): a bot message from a person carries `metadata.sender_name`; the page shows
// that name as the author and the text as it came. Messages without it are the assistant's.
//
// Connection (issue 15): when the chat server cannot be reached (the config, connect_error, a lost
// connection) the page says so in #connection-error (role="alert") with a Retry button that tries
// again at once (the page also retries on its own, ever more slowly). Messages written meanwhile are shown as
// "not sent yet", kept in localStorage and sent, in order, once the session is confirmed again.
(() => {
  "use strict";
  const SESSION_KEY = "backline.chat.session";
  const HISTORY_KEY = "backline.chat.history";
  const QUEUE_KEY = "backline.chat.unsent";
  const ASSISTANT = "Kestrel assistant";
  const $ = (id) => document.getElementById(id);
  const list = $("messages"), input = $("message"), send = $("send"), status = $("status");
  const problem = $("connection-error"), problemText = $("connection-error-text"), retry = $("retry");
  let pending = Promise.resolve();
  let socket = null;
  let ready = false;  // connected and the session confirmed: messages can go out

  let sessionId = localStorage.getItem(SESSION_KEY);

  function stored(key) {
    try { return JSON.parse(localStorage.getItem(key) || "[]"); } catch (e) { return []; }
  }

  function render(entry, unsent) {
    const item = document.createElement("li");
    item.className = `message ${entry.from}`;
    if (unsent) item.classList.add("unsent");
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = entry.author;
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = entry.text;
    item.append(author, text);
    if (unsent) {
      const note = document.createElement("span");
      note.className = "delivery";
      note.textContent = "Not sent yet: it goes out when the connection is back.";
      item.append(note);
    }
    if (entry.choices && entry.choices.length) {
      const choices = document.createElement("div");
      choices.className = "choices";
      for (const choice of entry.choices) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = choice.title;
        button.addEventListener("click", () => say(choice.payload, choice.title));
        choices.append(button);
      }
      item.append(choices);
    }
    list.append(item);
    item.scrollIntoView({ block: "end" });
    return item;
  }

  function remember(entry) {
    const kept = stored(HISTORY_KEY);
    kept.push(entry);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(kept.slice(-200)));
  }

  function add(entry) {
    remember(entry);
    render(entry);
  }

  function showState(next) {
    status.dataset.state = next.state;
    status.hidden = next.state === "ai";
    if (next.state === "checking") {
      status.textContent = `A specialist from our ${next.team} team is checking your request. ` +
        "You can keep asking me other questions meanwhile.";
    } else if (next.state === "human") {
      status.textContent = `You are chatting with ${next.agent} from our ${next.team} team.`;
    } else {
      status.textContent = "";
    }
  }

  async function refreshState() {
    if (!sessionId) return;
    try {
      const response = await fetch(`/chat/state/${encodeURIComponent(sessionId)}`);
      if (response.ok) showState(await response.json());
    } catch (e) { /* the hub is unreachable: keep the last state */ }
  }

  function botEntry(message) {
    const name = message.metadata && typeof message.metadata.sender_name === "string"
      ? message.metadata.sender_name.trim() : "";
    const choices = (message.quick_replies || message.buttons || []).map((b) => ({ title: b.title, payload: b.payload }));
    return { from: name ? "human" : "bot", author: name || ASSISTANT, text: message.text || "", choices };
  }

  // --- connection trouble ---------------------------------------------------------------------
  // socket.io's own reconnection is off: its backoff ignores socket.connect(), so Retry could not try
  // at once. The page retries itself (1 s, 2 s, 4 s, ... at most every 30 s) and Retry tries now.
  let attempts = 0;
  let timer = null;

  function showProblem(text, canRetry = true) {
    problemText.textContent = text;
    problem.hidden = false;
    retry.hidden = !canRetry;
    retry.disabled = false;
  }

  function hideProblem() {
    problem.hidden = true;
    problemText.textContent = "";
  }

  function offline(text) {
    ready = false;
    $("connection").textContent = "Offline";
    showProblem(`${text} What you write is kept and sent once the connection is back.`);
    clearTimeout(timer);
    timer = setTimeout(reconnect, Math.min(1000 * 2 ** attempts, 30000));
    attempts += 1;
  }

  function reconnect() {
    clearTimeout(timer);
    timer = null;
    $("connection").textContent = "Connecting…";
    if (!socket) start();
    else if (!socket.connected) socket.connect();
  }

  // --- sending ----------------------------------------------------------------------------------
  const unsent = [];  // [{entry, payload, item}], oldest first

  function keepUnsent() {
    localStorage.setItem(QUEUE_KEY, JSON.stringify(unsent.map(({ entry, payload }) => ({ entry, payload }))));
  }

  function queue(entry, payload) {
    unsent.push({ entry, payload, item: render(entry, true) });
    keepUnsent();
  }

  function emit(payload) {
    socket.emit("user_uttered", { message: payload, session_id: sessionId });
  }

  function flush() {
    while (ready && unsent.length) {
      const { entry, payload, item } = unsent.shift();
      item.classList.remove("unsent");
      const note = item.querySelector(".delivery");
      if (note) note.remove();
      remember(entry);
      emit(payload);
    }
    keepUnsent();
  }

  function say(text, shown) {
    if (!text.trim()) return false;
    const entry = { from: "customer", author: "You", text: shown || text };
    if (!ready || unsent.length) {
      queue(entry, text);
      flush();
      return true;
    }
    if (retry.hidden) hideProblem();  // the notice of a refused message: this one is new
    add(entry);
    emit(text);
    return true;
  }

  function connect(config) {
    socket = io(config.socket_url, { path: config.socket_path, reconnection: false });
    socket.on("connect", () => socket.emit("session_request", sessionId ? { session_id: sessionId } : {}));
    socket.on("session_confirm", (issued) => {
      if (issued !== sessionId) {
        if (sessionId) localStorage.removeItem(HISTORY_KEY);
        sessionId = issued;
        localStorage.setItem(SESSION_KEY, sessionId);
      }
      attempts = 0;
      hideProblem();
      $("connection").textContent = "Online: ask about orders, invoices, refunds, plans…";
      ready = true;
      input.focus();
      flush();
      refreshState();
    });
    socket.on("connect_error", () => offline("We cannot reach the chat server right now."));
    socket.on("disconnect", () => offline("The connection to the chat server was lost."));
    socket.on("bot_uttered", (message) => {
      add(botEntry(message));
      pending = pending.then(refreshState);
    });
    socket.on("message_refused", (refused) => {
      showProblem(`Your last message was not accepted: ${(refused && refused.error) || "unknown error"}.`, false);
    });
  }

  function start() {
    return fetch("/chat/config.json")
      .then((r) => { if (!r.ok) throw new Error(`config: ${r.status}`); return r.json(); })
      .then(connect)
      .catch(() => offline("We cannot reach the chat service right now."));
  }

  retry.addEventListener("click", () => {
    retry.disabled = true;
    problemText.textContent = "Trying again…";
    reconnect();
  });

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    if (say(input.value)) input.value = "";
  });

  $("new-chat").addEventListener("click", () => {
    localStorage.removeItem(SESSION_KEY);
    localStorage.removeItem(HISTORY_KEY);
    localStorage.removeItem(QUEUE_KEY);
    location.reload();
  });

  stored(HISTORY_KEY).forEach((entry) => render(entry));
  stored(QUEUE_KEY).forEach(({ entry, payload }) => queue(entry, payload));
  input.disabled = send.disabled = false;
  $("connection").textContent = "Connecting…";
  start();
})();
