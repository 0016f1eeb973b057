// The QA review queue (/dashboard/reviews) and one review (/dashboard/reviews/<id>): the sampled
// conversations and cases of the operator's queues (GET /dashboard/api/reviews); a review shows the
// transcript and the routing decisions (GET /dashboard/api/reviews/<id>), and the reviewer marks it right,
// should have escalated, should not have escalated or wrong answer, with a note and, optionally, the intent
// the customer meant (POST /dashboard/api/reviews/<id>).
(() => {
  "use strict";
  const { el, api, postJson, when, label } = window.Backline;
  const app = document.getElementById("app");
  const match = location.pathname.match(/^\/dashboard\/reviews\/([^/]+)/);
  const VERDICTS = {
    right: "Right", should_have_escalated: "Should have escalated",
    should_not_have_escalated: "Should not have escalated", wrong_answer: "Wrong answer",
  };
  const KINDS = { ai_alone: "AI alone", accepted_draft: "Accepted draft", closed_case: "Closed case" };

  async function listView() {
    const params = new URLSearchParams(location.search);
    const status = el("select", { id: "review-status", "aria-label": "Status" },
      ["pending", "reviewed", "all"].map((s) => el("option", { value: s, selected: (params.get("status") || "pending") === s }, s)));
    const kind = el("select", { id: "review-kind", "aria-label": "Kind" }, el("option", { value: "" }, "All kinds"),
      Object.entries(KINDS).map(([key, name]) => el("option", { value: key, selected: params.get("kind") === key }, name)));
    const body = el("tbody");
    const count = el("span", { class: "muted" });
    app.replaceChildren(
      el("section", { class: "toolbar" }, el("h1", {}, "QA reviews"), count, el("span", { class: "spacer" }),
        el("label", {}, "Status ", status), el("label", {}, "Kind ", kind)),
      el("section", { class: "card" }, el("table", { id: "reviews", class: "table" },
        el("thead", {}, el("tr", {}, ["Kind", "Queue", "Intent", "Channel", "When", "Status"].map((h) => el("th", {}, h)))),
        body)));

    async function load() {
      const query = new URLSearchParams();
      if (status.value !== "pending") query.set("status", status.value);
      if (kind.value) query.set("kind", kind.value);
      history.replaceState(null, "", `/dashboard/reviews${query.toString() ? "?" + query : ""}`);
      const response = await api(`/dashboard/api/reviews?${query}`);
      const data = await response.json();
      if (!response.ok) {
        body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "error" }, data.error || response.statusText)));
        return;
      }
      count.textContent = `${data.reviews.length} ${data.reviews.length === 1 ? "review" : "reviews"}`;
      body.replaceChildren(...data.reviews.map((r) => el("tr", { dataset: { id: r.id } },
        el("td", {}, el("a", { href: `/dashboard/reviews/${encodeURIComponent(r.id)}` }, KINDS[r.kind] || label(r.kind))),
        el("td", {}, r.queue || "—"), el("td", {}, label(r.intent) || "—"), el("td", {}, r.channel || "—"),
        el("td", {}, when(r.subject_at)),
        el("td", {}, r.status === "reviewed" ? `${VERDICTS[r.verdict] || label(r.verdict)} · ${r.reviewer || ""}` : "pending"))));
      if (!data.reviews.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "empty muted" }, "Nothing to review.")));
    }
    status.addEventListener("change", load);
    kind.addEventListener("change", load);
    await load();
  }

  function transcriptCard(lines) {
    const who = (speaker) => (speaker === "customer" || speaker === "user" ? "customer"
      : speaker === "assistant" || speaker === "bot" ? "assistant" : "expert");
    const name = { customer: "Customer", assistant: "AI assistant" };
    return el("section", { class: "card transcript" }, el("h2", {}, "Transcript"),
      el("ol", { id: "review-transcript", class: "timeline" }, (lines || []).map((line) => el("li", { class: `turn ${who(line.speaker)}` },
        el("span", { class: "author" }, name[who(line.speaker)] || line.speaker),
        el("p", {}, line.text || ""), el("time", { class: "muted" }, when(line.at))))));
  }

  function decisionsCard(decisions) {
    const cell = (value) => el("td", {}, value === null || value === undefined || value === "" ? "—"
      : Array.isArray(value) ? value.map(label).join(", ") || "—" : typeof value === "number" ? String(Math.round(value * 100) / 100) : label(value));
    return el("section", { class: "card" }, el("h2", {}, "Routing decisions"),
      el("table", { id: "review-decisions", class: "table" },
        el("thead", {}, el("tr", {}, ["When", "Message", "Intent", "Confidence", "Action", "Reason", "Tier", "Triggers"].map((h) => el("th", {}, h)))),
        el("tbody", {}, (decisions || []).map((d) => el("tr", {},
          el("td", {}, when(d.at)), el("td", {}, d.text || ""), cell(d.intent), cell(d.confidence), cell(d.action),
          cell(d.reason), cell(d.tier), cell(d.triggers))))));
  }

  function verdictForm(review, intents, done) {
    const flash = el("p", { id: "review-flash", class: "flash", role: "status" });
    if (review.status === "reviewed") {
      return el("section", { class: "card" }, el("h2", {}, "Reviewed"),
        el("p", { id: "review-verdict" }, `${VERDICTS[review.verdict] || label(review.verdict)} · ${review.reviewer || ""} · ${when(review.reviewed_at)}`),
        review.note ? el("p", { class: "muted" }, review.note) : null,
        review.corrected_intent ? el("p", { class: "muted" }, `The customer meant: ${label(review.corrected_intent)}`) : null);
    }
    const note = el("textarea", { id: "review-note", rows: 3, placeholder: "What was right or wrong (optional)" });
    const intent = el("input", { id: "review-intent", list: "review-intents", placeholder: "the intent the customer meant (optional)" });
    const submit = el("button", { id: "review-submit", class: "primary", type: "submit" }, "Submit review");
    async function send(event) {
      event.preventDefault();
      const chosen = document.querySelector("input[name=review-verdict]:checked");
      if (!chosen) {
        flash.className = "flash error";
        flash.textContent = "Choose a verdict.";
        return;
      }
      submit.disabled = true;
      try {
        const result = await postJson(`/dashboard/api/reviews/${encodeURIComponent(review.id)}`,
          { verdict: chosen.value, note: note.value, corrected_intent: intent.value.trim() || null });
        flash.className = "flash ok";
        flash.textContent = "Review recorded.";
        done(result.review);
      } catch (error) {
        flash.className = "flash error";
        flash.textContent = error.message;
        submit.disabled = false;
      }
    }
    return el("form", { id: "review-form", class: "card", onsubmit: send }, el("h2", {}, "Your verdict"),
      el("div", { class: "choices" }, Object.entries(VERDICTS).map(([key, name]) => el("label", { class: "check" },
        el("input", { type: "radio", name: "review-verdict", value: key }), ` ${name}`))),
      note, el("label", { class: "stack" }, "Intent the customer meant", intent,
        el("datalist", { id: "review-intents" }, intents.map((name) => el("option", { value: name })))),
      el("div", { class: "actions" }, submit), flash);
  }

  async function detailView(id) {
    const response = await api(`/dashboard/api/reviews/${encodeURIComponent(id)}`);
    const data = await response.json();
    if (!response.ok) {
      app.replaceChildren(el("p", { class: "card", id: "review-error" }, data.error || response.statusText, " ",
        el("a", { href: "/dashboard/reviews" }, "Back to the reviews")));
      return;
    }
    const { intents } = await (await api("/dashboard/api/governance")).json();
    const review = data.review;
    const caseLink = data.consultation && data.consultation.id
      ? el("a", { href: `/dashboard/consultations/${encodeURIComponent(data.consultation.id)}` }, "Open the case") : null;
    const form = el("div");
    const draw = (current) => form.replaceChildren(verdictForm(current, intents, (updated) => {
      const kept = document.getElementById("review-flash");
      draw(updated);
      if (kept) form.append(kept);
    }));
    draw(review);
    app.replaceChildren(
      el("section", { class: "toolbar" }, el("a", { href: "/dashboard/reviews", class: "back" }, "← Reviews"),
        el("h1", {}, `${KINDS[review.kind] || label(review.kind)}${review.intent ? " · " + label(review.intent) : ""}`),
        el("span", { class: "badge" }, review.queue || "no queue"), el("span", { class: "badge" }, review.channel || "—"),
        el("span", { class: "muted" }, when(review.subject_at)), el("span", { class: "spacer" }), caseLink),
      el("div", { class: "case-grid" },
        el("div", { class: "column" }, decisionsCard(data.decisions), form),
        el("div", { class: "column" }, transcriptCard(data.transcript))));
  }

  async function start() {
    await window.Backline.start();
    if (match) await detailView(decodeURIComponent(match[1]));
    else await listView();
  }

  start();
})();
