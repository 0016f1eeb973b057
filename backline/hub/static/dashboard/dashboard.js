// The operator dashboard: the queue (/dashboard) and a consultation (/dashboard/consultations/<id>).
// Data comes from /dashboard/api/*; /dashboard/events says when the store changed, and the view
// fetches its data again (no reload). SLA countdowns tick every second.
// Every POST carries the session's CSRF token (X-CSRF-Token, from /dashboard/api/session) and, when it
// has a body, Content-Type: application/json; the hub refuses any other (backline/hub/forgery.py):
// common.js's api(). A closed case's verdict and an override's reason are case_governance.js's panel.
(() => {
  "use strict";
  const app = document.getElementById("app");
  const caseMatch = location.pathname.match(/^\/dashboard\/consultations\/([^/]+)/);
  const PRIORITY_LABEL = { urgent: "Urgent", high: "High", normal: "Normal", low: "Low" };
  const ACTION_LABEL = {
    approve: "approved the AI draft", deny: "denied", answer: "answered", need_info: "asked for a detail",
    take_over: "took over the conversation", message: "wrote", hand_back: "handed back to the AI",
    close: "closed the case",
  };
  let session = null;
  let reload = () => {};

  const { el, api, when } = window.Backline;

  function duration(seconds) {
    const s = Math.abs(Math.round(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  }

  // SLA countdowns: each .sla element carries the moment its first reply is due (client clock).
  function slaBadge(item) {
    if (item.status === "closed") return el("span", { class: "sla done" }, `closed · ${item.resolution || ""}`);
    if (item.sla_seconds_left === null || item.sla_seconds_left === undefined) {
      return el("span", { class: "sla done" }, item.first_reply_at ? "replied" : "no SLA");
    }
    return el("span", { class: "sla", dataset: { due: String(Date.now() + item.sla_seconds_left * 1000) } });
  }

  function tick() {
    for (const node of document.querySelectorAll(".sla[data-due]")) {
      const left = (Number(node.dataset.due) - Date.now()) / 1000;
      node.textContent = left >= 0 ? `SLA ${duration(left)}` : `overdue ${duration(left)}`;
      node.classList.toggle("overdue", left < 0);
      node.classList.toggle("soon", left >= 0 && left < 600);
    }
  }

  function badges(item) {
    return [
      item.mode === "handoff" ? el("span", { class: "badge handoff" }, "Handoff") : el("span", { class: "badge consult" }, "Review"),
      el("span", { class: `badge priority ${item.priority}` }, PRIORITY_LABEL[item.priority] || item.priority),
      el("span", { class: "badge queue" }, item.queue),
      el("span", { class: `badge status ${item.status}` }, item.status),
      deliveryBadge(item),
    ];
  }

  // A reply that has not reached the customer yet, or never will (an alert).
  function deliveryBadge(item) {
    if (item.delivery_status === "awaiting_delivery") {
      return el("span", { class: "badge delivery awaiting", title: "The reply is recorded; the customer has not been reached yet. Retrying." }, "awaiting delivery");
    }
    if (item.delivery_status === "undeliverable") {
      return el("span", { class: "badge delivery undeliverable", title: "A reply could not reach the customer within the retry budget." }, "NOT DELIVERED");
    }
    return null;
  }

  function summary(item) {
    const brief = item.brief || {};
    const parts = [brief.intent && brief.intent.replace(/_/g, " "), brief.amount && brief.amount.display, brief.product];
    return parts.filter(Boolean).join(" · ") || (item.reasons || []).join(", ");
  }

  // --- the queue ------------------------------------------------------------------------------

  function queueView() {
    const params = new URLSearchParams(location.search);
    const queueFilter = el("select", { id: "queue-filter", "aria-label": "Queue" },
      el("option", { value: "" }, "All queues"),
      session.queues.map((q) => el("option", { value: q, selected: params.get("queue") === q }, q)));
    const statusFilter = el("select", { id: "status-filter", "aria-label": "Status" },
      session.statuses.map((s) => el("option", { value: s, selected: (params.get("status") || "active") === s }, s)));
    const list = el("ul", { id: "queue", class: "queue" });
    const count = el("span", { class: "muted" });
    app.replaceChildren(
      el("section", { class: "toolbar" }, el("h1", {}, "Queue"), count, el("span", { class: "spacer" }),
        el("label", {}, "Queue ", queueFilter), el("label", {}, "Status ", statusFilter)),
      list);

    async function load() {
      const query = new URLSearchParams();
      if (queueFilter.value) query.set("queue", queueFilter.value);
      if (statusFilter.value !== "active") query.set("status", statusFilter.value);
      history.replaceState(null, "", `/dashboard${query.toString() ? "?" + query : ""}`);
      const data = await (await api(`/dashboard/api/queue?${query}`)).json();
      count.textContent = `${data.consultations.length} ${data.consultations.length === 1 ? "case" : "cases"}`;
      list.replaceChildren(...data.consultations.map((item) => el("li", {},
        el("a", { class: `case ${item.mode}`, href: `/dashboard/consultations/${item.id}`, dataset: { id: item.id } },
          el("div", { class: "case-top" }, badges(item), el("span", { class: "spacer" }), slaBadge(item)),
          el("p", { class: "claim" }, (item.brief || {}).user_claim || "(no customer message)"),
          el("div", { class: "case-meta muted" },
            el("span", {}, summary(item)),
            el("span", {}, item.assignee_name ? `→ ${item.assignee_name}` : "unassigned"),
            el("span", {}, `opened ${when(item.created_at)}`))))));
      if (!data.consultations.length) list.append(el("li", { class: "empty muted" }, "Nothing waiting. New cases appear here live."));
      tick();
    }
    queueFilter.addEventListener("change", load);
    statusFilter.addEventListener("change", load);
    return load;
  }

  // --- one consultation -----------------------------------------------------------------------

  function field(label, value) {
    return value ? [el("dt", {}, label), el("dd", {}, value)] : [];
  }

  function flat(value) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) return value.map(flat).join(", ");
    if (typeof value === "object") {
      return Object.entries(value).filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
        .map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join(" · ");
    }
    return String(value);
  }

  function briefCard(c) {
    const brief = c.brief || {}, context = c.context || {}, risk = brief.risk || {};
    const account = context.account_snapshot;
    return el("section", { class: "card brief" },
      el("h2", {}, "Brief"),
      el("dl", {},
        field("Intent", brief.intent && brief.intent.replace(/_/g, " ")),
        field("Amount", brief.amount && brief.amount.display),
        field("Product", brief.product),
        field("Customer says", brief.user_claim),
        field("Risk", risk.level && `${risk.level}${(risk.grounds || []).length ? " — " + risk.grounds.join("; ") : ""}`),
        field("Reasons", (c.reasons || []).join(", ") + (c.detail ? ` (${c.detail})` : "")),
        field("Next step", context.next_step),
        field("Assigned to", c.assignee_name),
        field("Conversation", c.conversation_id)),
      account ? el("details", {}, el("summary", {}, "Account snapshot"),
        el("dl", {}, Object.entries(account).flatMap(([k, v]) => field(k.replace(/_/g, " "), flat(v))))) : null);
  }

  function timelineCard(c) {
    const items = c.timeline.map((entry) => el("li", { class: `turn ${entry.role}` },
      el("span", { class: "author" }, entry.role === "expert" ? `${entry.author} ${ACTION_LABEL[entry.action] || entry.action}`
        : entry.role === "assistant" ? "AI assistant" : "Customer"),
      entry.text ? el("p", {}, entry.text) : null,
      (entry.notes || []).map((note) => el("p", { class: "note" }, `internal: ${note}`)),
      el("time", { class: "muted" }, when(entry.at))));
    return el("section", { class: "card transcript" }, el("h2", {}, "Live transcript"),
      el("ol", { id: "timeline", class: "timeline" }, items));
  }

  // Undeliverable replies go back into the outbox; the page reloads when the state changes.
  async function resend(c) {
    const button = document.getElementById("resend");
    if (button) button.disabled = true;
    for (const d of (c.deliveries || []).filter((x) => x.status === "undeliverable")) {
      await api(`/dashboard/api/deliveries/${d.id}/retry`, { method: "POST" });
    }
  }

  function decisionPanel(c, act) {
    const delivery = c.delivery_status === "awaiting_delivery"
      ? el("p", { id: "delivery-state", class: "flash warn" }, "Awaiting delivery: the reply is recorded and is being retried until the customer is reached.")
      : c.delivery_status === "undeliverable"
        ? el("div", { id: "delivery-state", class: "flash error" },
          el("p", {}, "Not delivered: a reply did not reach the customer within the retry budget."),
          el("button", { id: "resend", onclick: () => resend(c) }, "Send again"))
        : null;
    if (c.status === "closed") {
      return el("section", { class: "card decision" }, el("h2", {}, "Closed"),
        el("p", {}, `Resolution: ${c.resolution || "—"} · ${when(c.closed_at)}`), delivery);
    }
    const text = el("textarea", { id: "reply-text", rows: 5, placeholder: "Text for the customer. Lines starting with // stay internal." });
    if (c.human_mode) {
      const followups = session.followups.map((f) => el("label", { class: "check" },
        el("input", { type: "checkbox", name: "followup", value: f.key, checked: f.key === "informational" }), ` ${f.label}`));
      return el("section", { class: "card decision human" },
        el("h2", {}, `Human mode · ${c.human_agent} is talking to the customer`),
        delivery,
        text,
        el("div", { class: "actions" }, el("button", { class: "primary", id: "send-message", onclick: () => act("message") }, "Send message")),
        el("h3", {}, "Close the case"),
        el("p", { class: "muted" }, "The text above is the resolution the customer reads; then the AI is back, with no limits."),
        el("div", { class: "actions" }, el("button", { class: "danger", id: "close-case", onclick: () => act("close") }, "Close case")),
        window.BacklineCase.replyFields(c),
        el("h3", {}, "Hand back to the AI"),
        el("p", { class: "muted" }, "After the hand-back the AI may only handle:"),
        el("div", { class: "followups" }, followups),
        el("div", { class: "actions" }, el("button", { id: "hand-back", onclick: () => act("hand_back", true) }, "Hand back")));
    }
    if (c.ai_draft) text.value = c.ai_draft;
    return el("section", { class: "card decision" },
      el("h2", {}, c.ai_draft ? "AI draft — approve, edit and send, or deny" : "Your answer"),
      delivery,
      text,
      window.BacklineCase.replyFields(c),
      el("div", { class: "actions" },
        c.ai_draft ? el("button", { class: "primary", id: "approve", onclick: () => act("approve") }, "Approve draft") : null,
        el("button", { class: c.ai_draft ? "" : "primary", id: "send-answer", onclick: () => act("answer") },
          c.ai_draft ? "Edit and send" : "Send answer"),
        el("button", { class: "danger", id: "deny", onclick: () => act("deny") }, "Deny"),
        el("button", { id: "take-over", onclick: () => act("take_over") }, "Take over")),
      el("p", { class: "muted small" }, "Take over: you talk to the customer yourself; the AI stays silent until you hand back."));
  }

  function caseView(id) {
    const header = el("section", { class: "toolbar" });
    const flash = el("p", { id: "flash", class: "flash", role: "status" });
    const brief = el("div"), panel = el("div"), transcript = el("div"), govern = el("div", { id: "governance" });
    app.replaceChildren(header, flash,
      el("div", { class: "case-grid" }, el("div", { class: "column" }, brief, panel, govern), el("div", { class: "column" }, transcript)));

    let current = null;
    let panelKey = null;
    let governKey = null;

    // Approve and deny send the text only when the operator changed the prefilled AI draft.
    async function act(action, withFollowups) {
      const textArea = document.getElementById("reply-text");
      const edited = textArea.value !== (current.ai_draft || "") ? textArea.value : "";
      const body = { action, text: action === "approve" || action === "deny" ? edited : textArea.value };
      Object.assign(body, window.BacklineCase.replyExtras(current, action, body.text || (action === "approve" ? current.ai_draft || "" : "")));
      if (withFollowups) body.allowed_followups = [...document.querySelectorAll("input[name=followup]:checked")].map((i) => i.value);
      for (const button of document.querySelectorAll(".decision button")) button.disabled = true;
      flash.className = "flash";
      flash.textContent = "Sending…";
      try {
        const response = await api(`/dashboard/api/consultations/${id}/reply`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        const result = await response.json();
        if (!response.ok) throw new Error(result.error || response.statusText);
        const said = (result.customer_messages || []).map((m) => m.text).filter(Boolean).join(" ");
        if (response.status === 202) {
          flash.className = "flash warn";
          flash.textContent = "Recorded. The customer could not be reached yet: it is delivered as soon as the assistant is back (awaiting delivery).";
        } else {
          flash.className = "flash ok";
          flash.textContent = said ? `The customer was told: “${said}”` : "Sent to the customer.";
        }
        textArea.value = "";  // sent: not carried into the redrawn panel
        panelKey = null;
        await load();
      } catch (error) {
        flash.className = "flash error";
        flash.textContent = error.message;
        for (const button of document.querySelectorAll(".decision button")) button.disabled = false;
      }
    }

    async function load() {
      const response = await api(`/dashboard/api/consultations/${id}`);
      if (response.status === 404) {
        app.replaceChildren(el("p", { class: "card" }, "No such consultation. ", el("a", { href: "/dashboard" }, "Back to the queue")));
        return;
      }
      const c = (await response.json()).consultation;
      current = c;
      document.title = `${summary(c)} · Backline`;
      header.replaceChildren(el("a", { href: "/dashboard", class: "back" }, "← Queue"),
        el("h1", {}, summary(c) || "Consultation"), ...badges(c), el("span", { class: "spacer" }), slaBadge(c));
      brief.replaceChildren(briefCard(c));
      transcript.replaceChildren(timelineCard(c));
      const key = `${c.status}/${c.human_mode}/${c.human_agent}/${c.delivery_status}`;
      if (key !== panelKey) {
        // A new state (taken over, delivered, ...) redraws the panel; what the operator was typing stays.
        const typing = document.getElementById("reply-text");
        const typed = typing && typing.value && typing.value !== (c.ai_draft || "") ? typing.value : null;
        panelKey = key;
        panel.replaceChildren(decisionPanel(c, act));
        const redrawn = document.getElementById("reply-text");
        if (typed !== null && redrawn) redrawn.value = typed;
      }
      const stateOfGovernance = JSON.stringify([c.status, c.verdict, c.override]);
      if (stateOfGovernance !== governKey) {
        governKey = stateOfGovernance;
        govern.replaceChildren(...await window.BacklineCase.panel(c, load));
      }
      const timeline = document.getElementById("timeline");
      timeline.scrollTop = timeline.scrollHeight;
      tick();
    }
    return load;
  }

  // --- live updates ---------------------------------------------------------------------------

  function listen() {
    const live = document.getElementById("live");
    const events = new EventSource("/dashboard/events");
    events.addEventListener("change", () => reload());
    events.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
    events.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live"; });
  }

  async function start() {
    session = await window.Backline.start();
    reload = caseMatch ? caseView(decodeURIComponent(caseMatch[1])) : queueView();
    await reload();
    listen();
    setInterval(tick, 1000);
  }

  start();
})();
