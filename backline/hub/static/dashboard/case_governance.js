// A consultation's governance on its dashboard page (window.BacklineCase), used by dashboard.js:
// - replyFields(c): the optional part of the reply form: why the AI's draft is denied or edited (override
//   reason, note, the intent the customer meant for "wrong intent") and the verdict on the escalation;
//   replyExtras(c, action, text) adds them to the reply's body (override fields only when the reply
//   overrides the draft: a deny, or a text other than the draft);
// - panel(c, reload): once the case is closed, the verdict buttons (needed / not needed / should have come
//   earlier: governance.yml's labels), POST /dashboard/api/consultations/<id>/verdict; when the draft was
//   overridden, the draft and the final text side by side and the reason (POST .../override).
(() => {
  "use strict";
  const { el, postJson, api, when } = window.Backline;
  let labels = null;

  function governance() {
    labels = labels || api("/dashboard/api/governance").then((response) => response.json());
    return labels;
  }

  function options(items, blank) {
    return [el("option", { value: "" }, blank), ...items.map((i) => el("option", { value: i.key }, i.label))];
  }

  function intentInput(id, intents, value) {
    const list = `${id}-intents`;
    return [el("input", { id, list, placeholder: "the intent the customer meant", value: value || "" }),
      el("datalist", { id: list }, intents.map((name) => el("option", { value: name })))];
  }

  function replyFields(c) {
    const box = el("details", { class: "governance-fields" }, el("summary", {}, "Override reason and verdict"));
    governance().then((g) => {
      const intent = el("label", { class: "stack", hidden: true }, "Intent the customer meant", intentInput("reply-corrected-intent", g.intents));
      const reason = el("select", { id: "reply-override-reason", "aria-label": "Override reason" }, options(g.override_reasons, "— no override reason —"));
      reason.addEventListener("change", () => { intent.hidden = reason.value !== "wrong_intent"; });
      box.append(
        c.ai_draft ? el("div", { class: "fields" },
          el("label", { class: "stack" }, "Why you deny or edit the draft", reason),
          el("label", { class: "stack" }, "Note", el("input", { id: "reply-override-note", placeholder: "optional" })),
          intent) : null,
        el("label", { class: "stack" }, "Was the escalation needed?",
          el("select", { id: "reply-verdict", "aria-label": "Verdict" }, options(g.verdicts, "— no verdict —"))));
    });
    return box;
  }

  function value(id) {
    const node = document.getElementById(id);
    return node && node.value.trim() ? node.value.trim() : null;
  }

  function replyExtras(c, action, text) {
    const extra = {};
    const overrides = c.ai_draft && (action === "deny"
      || ((action === "answer" || action === "approve") && text.trim() && text.trim() !== c.ai_draft.trim()));
    if (overrides && value("reply-override-reason")) {
      extra.override_reason = value("reply-override-reason");
      if (value("reply-override-note")) extra.override_note = value("reply-override-note");
      if (extra.override_reason === "wrong_intent" && value("reply-corrected-intent")) extra.corrected_intent = value("reply-corrected-intent");
    }
    if (["approve", "deny", "answer", "close", "hand_back"].includes(action) && value("reply-verdict")) extra.verdict = value("reply-verdict");
    return extra;
  }

  function say(flash, text, ok) {
    flash.className = `flash ${ok ? "ok" : "error"}`;
    flash.textContent = text;
  }

  function verdictCard(c, g, reload) {
    const flash = el("p", { id: "verdict-flash", class: "flash", role: "status" });
    const note = el("input", { id: "verdict-note", placeholder: "note (optional)" });
    async function give(key) {
      try {
        await postJson(`/dashboard/api/consultations/${c.id}/verdict`, { verdict: key, note: note.value });
        say(flash, "Verdict recorded.", true);
        await reload();
      } catch (error) {
        say(flash, error.message, false);
      }
    }
    const current = c.verdict ? g.verdicts.find((v) => v.key === c.verdict.verdict) : null;
    return el("section", { class: "card verdict" },
      el("h2", {}, "Was the escalation needed?"),
      el("p", { id: "verdict-current", class: "muted" }, current
        ? `${current.label} · ${c.verdict.actor} · ${when(c.verdict.at)}` : "No verdict yet."),
      el("div", { class: "actions" }, g.verdicts.map((v) => el("button", {
        class: c.verdict && c.verdict.verdict === v.key ? "primary" : "", dataset: { verdict: v.key },
        onclick: () => give(v.key),
      }, v.label))),
      note, flash);
  }

  function overrideCard(c, g, reload) {
    const o = c.override;
    const flash = el("p", { id: "override-flash", class: "flash", role: "status" });
    const reason = el("select", { id: "override-reason", "aria-label": "Override reason" }, options(g.override_reasons, "— choose a reason —"));
    reason.value = o.reason || "";
    const note = el("input", { id: "override-note", placeholder: "note (optional)", value: o.note || "" });
    const intentBox = el("label", { class: "stack", hidden: reason.value !== "wrong_intent" },
      "Intent the customer meant", intentInput("override-intent", g.intents, o.corrected_intent));
    reason.addEventListener("change", () => { intentBox.hidden = reason.value !== "wrong_intent"; });
    async function save() {
      try {
        const intent = document.getElementById("override-intent").value.trim();
        await postJson(`/dashboard/api/consultations/${c.id}/override`,
          { reason: reason.value, note: note.value, intent: reason.value === "wrong_intent" && intent ? intent : null });
        say(flash, "Override reason recorded.", true);
        await reload();
      } catch (error) {
        say(flash, error.message, false);
      }
    }
    const found = g.override_reasons.find((r) => r.key === o.reason);
    return el("section", { class: "card override" },
      el("h2", {}, o.kind === "denied" ? "The AI's draft was denied" : "The AI's draft was edited"),
      el("div", { class: "side-by-side" },
        el("div", {}, el("h3", {}, "AI draft"), el("p", { id: "override-draft", class: "text" }, o.ai_draft)),
        el("div", {}, el("h3", {}, "Sent instead"), el("p", { id: "override-final", class: "text" }, o.final_text || "(denied: nothing sent)"))),
      el("p", { id: "override-current", class: "muted" }, found ? `Reason: ${found.label}${o.note ? ` — ${o.note}` : ""}` : "No reason given yet."),
      el("div", { class: "fields" }, el("label", { class: "stack" }, "Reason", reason), el("label", { class: "stack" }, "Note", note), intentBox),
      el("div", { class: "actions" }, el("button", { id: "override-save", class: "primary", onclick: save }, "Save reason")),
      flash);
  }

  // The cards for ``c`` (empty while the case is open and nothing was overridden).
  async function panel(c, reload) {
    const g = await governance();
    return [c.status === "closed" ? verdictCard(c, g, reload) : null, c.override ? overrideCard(c, g, reload) : null]
      .filter(Boolean);
  }

  window.BacklineCase = { replyFields, replyExtras, panel };
})();
