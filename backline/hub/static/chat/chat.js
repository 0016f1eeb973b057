// The customer web chat: Rasa's socket.io channel (events user_uttered / bot_uttered, one session
// per browser), and the hub's /chat/state for "a specialist is checking" and the human's name.
// The session id is the server's: it is signed by the Rasa server, kept in localStorage and sent
// back on reconnect (an id the server did not issue is replaced by a fresh one in session_confirm).
(() => {
  "use strict";
  const SESSION_KEY = "backline.chat.session";
  const HISTORY_KEY = "backline.chat.history";
  const $ = (id) => document.getElementById(id);
  const list = $("messages"), input = $("message"), send = $("send"), status = $("status");
  let state = { state: "ai" };
  let pending = Promise.resolve();
  let socket = null;

  let sessionId = localStorage.getItem(SESSION_KEY);

  function history() {
    try { return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]"); } catch (e) { return []; }
  }

  function render(entry) {
    const item = document.createElement("li");
    item.className = `message ${entry.from}`;
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = entry.author;
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = entry.text;
    item.append(author, text);
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
  }

  function add(entry) {
    const kept = history();
    kept.push(entry);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(kept.slice(-200)));
    render(entry);
  }

  function showState(next) {
    state = next;
    status.dataset.state = state.state;
    status.hidden = state.state === "ai";
    if (state.state === "checking") {
      status.textContent = `A specialist from our ${state.team} team is checking your request. ` +
        "You can keep asking me other questions meanwhile.";
    } else if (state.state === "human") {
      status.textContent = `You are chatting with ${state.agent} from our ${state.team} team.`;
    } else {
      status.textContent = "";
    }
  }

  async function refreshState() {
    try {
      const response = await fetch(`/chat/state/${encodeURIComponent(sessionId)}`);
      if (response.ok) showState(await response.json());
    } catch (e) { /* the hub is unreachable: keep the last state */ }
  }

  function botEntry(message) {
    let text = message.text || "";
    let author = "Kestrel assistant";
    let from = "bot";
    const prefix = state.agent ? `${state.agent}: ` : null;
    if (state.state === "human" && prefix && text.startsWith(prefix)) {
      text = text.slice(prefix.length);
      author = state.agent;
      from = "human";
    }
    const choices = (message.quick_replies || message.buttons || []).map((b) => ({ title: b.title, payload: b.payload }));
    return { from, author, text, choices };
  }

  function say(text, shown) {
    if (!socket || !sessionId || !text.trim()) return;
    add({ from: "customer", author: "You", text: shown || text });
    socket.emit("user_uttered", { message: text, session_id: sessionId });
  }

  function connect(config) {
    socket = io(config.socket_url, { path: config.socket_path });
    socket.on("connect", () => socket.emit("session_request", sessionId ? { session_id: sessionId } : {}));
    socket.on("session_confirm", (issued) => {
      if (issued !== sessionId) {
        if (sessionId) localStorage.removeItem(HISTORY_KEY);
        sessionId = issued;
        localStorage.setItem(SESSION_KEY, sessionId);
      }
      $("connection").textContent = "Online: ask about orders, invoices, refunds, plans…";
      input.disabled = send.disabled = false;
      input.focus();
      refreshState();
    });
    socket.on("disconnect", () => {
      $("connection").textContent = "Reconnecting…";
      input.disabled = send.disabled = true;
    });
    socket.on("bot_uttered", (message) => {
      pending = pending.then(refreshState).then(() => add(botEntry(message)));
    });
  }

  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    say(input.value);
    input.value = "";
  });

  $("new-chat").addEventListener("click", () => {
    localStorage.removeItem(SESSION_KEY);
    localStorage.removeItem(HISTORY_KEY);
    location.reload();
  });

  history().forEach(render);
  fetch("/chat/config.json").then((r) => r.json()).then(connect);
})();
