// The analytics page (/dashboard/analytics): the outcome metrics of GET /dashboard/api/metrics for the
// operator's queues, as headline numbers and Chart.js charts (vendor/chart.umd.min.js): rates and CSAT by
// week, first reply and resolution times (median and P90, business hours and off-hours), the verdicts, the
// override reasons, and one measure by a chosen breakdown (queue, intent, reason, channel).
// Changing a filter fetches the metrics again and updates the charts in place; the filters are kept in the
// address (?since=&until=&queue=...). The Chart instances are window.backlineCharts.{weekly, times,
// verdicts, overrides, breakdown}; rates are drawn as percentages, times in minutes (one decimal).
(() => {
  "use strict";
  const { el, api, label } = window.Backline;
  const FILTERS = ["since", "until", "queue", "intent", "channel", "reason"];
  const COLORS = ["#1f5fbf", "#c62828", "#2e7d4f", "#b7791f", "#7b3fb5", "#00838f", "#5d6679"];
  const WEEKLY = [
    ["containment_rate", "Containment"], ["escalation_rate", "Escalation"],
    ["escalation_accuracy", "Escalation accuracy"], ["reopened_rate", "Reopened"], ["override_rate", "Override"],
  ];
  const MEASURES = [
    ["consultations", "consultations"], ["conversations", "conversations"], ["escalation_rate", "escalation rate (%)"],
    ["containment_rate", "containment rate (%)"], ["escalation_accuracy", "escalation accuracy (%)"],
    ["override_rate", "override rate (%)"], ["reopened_rate", "reopened rate (%)"], ["handback_rate", "hand-back rate (%)"],
    ["csat", "CSAT (1-5)"], ["first_reply_median", "first reply, median (min)"],
    ["resolution_median", "resolution, median (min)"], ["sla_breaches", "SLA breaches"],
  ];
  const charts = {};
  window.backlineCharts = charts;
  let labels = { verdicts: [], override_reasons: [] };
  let last = null;
  let asked = 0;

  const control = (name) => document.getElementById(name);
  const round1 = (x) => Math.round(x * 10) / 10;
  const percent = (rate) => (rate === null || rate === undefined ? null : round1(rate * 100));
  const minutes = (seconds) => (seconds === null || seconds === undefined ? null : round1(seconds / 60));
  function scaled(key, value) {
    if (value === null || value === undefined) return null;
    if (key.endsWith("_rate") || key === "escalation_accuracy") return percent(value);
    if (key.endsWith("_median") || key.endsWith("_p90")) return minutes(value);
    return value;
  }
  const shown = (value, unit) => (value === null || value === undefined ? "—" : `${value}${unit || ""}`);

  function chart(name, type, options) {
    charts[name] = new window.Chart(control(`chart-${name}`), {
      type,
      data: { labels: [], datasets: [] },
      options: { animation: false, responsive: true, maintainAspectRatio: false, ...options },
    });
    return charts[name];
  }

  function makeCharts() {
    const percentAxis = { beginAtZero: true, suggestedMax: 100, title: { display: true, text: "%" } };
    chart("weekly", "line", {
      spanGaps: true,
      scales: { y: percentAxis, csat: { position: "right", min: 1, max: 5, grid: { drawOnChartArea: false }, title: { display: true, text: "CSAT" } } },
    });
    chart("times", "bar", { scales: { y: { beginAtZero: true, title: { display: true, text: "minutes" } } } });
    chart("verdicts", "bar", { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } });
    chart("overrides", "bar", { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } });
    chart("breakdown", "bar", { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } });
  }

  function dataset(name, data, index, extra) {
    return { label: name, data, borderColor: COLORS[index % COLORS.length], backgroundColor: COLORS[index % COLORS.length], ...extra };
  }

  function drawWeekly(m) {
    const weeks = m.breakdowns.week || {};
    const order = Object.keys(weeks).sort();
    const c = charts.weekly;
    c.data.labels = order;
    c.data.datasets = [
      ...WEEKLY.map(([key, name], i) => dataset(name, order.map((w) => scaled(key, weeks[w][key])), i, { yAxisID: "y" })),
      dataset("CSAT", order.map((w) => weeks[w].csat ?? null), WEEKLY.length, { yAxisID: "csat", borderDash: [5, 4] }),
    ];
    c.update();
  }

  function drawTimes(m) {
    const parts = [["median", "median"], ["p90", "P90"]];
    const groups = [[null, ""], ["business_hours", ", business hours"], ["off_hours", ", off-hours"]];
    const c = charts.times;
    c.data.labels = groups.flatMap(([, where]) => parts.map(([, name]) => `${name}${where}`));
    const series = (times) => groups.flatMap(([group]) => parts.map(([key]) => minutes(((group ? times[group] : times) || {})[key])));
    c.data.datasets = [dataset("First reply", series(m.first_reply_seconds), 0), dataset("Resolution", series(m.resolution_seconds), 2)];
    c.update();
  }

  function drawCounts(c, entries) {
    c.data.labels = entries.map(([name]) => name);
    c.data.datasets = [dataset("count", entries.map(([, n]) => n), 0, { backgroundColor: entries.map((_, i) => COLORS[i % COLORS.length]) })];
    c.update();
  }

  function drawBreakdown(m) {
    const dimension = control("dimension").value, measure = control("measure").value;
    const rows = m.breakdowns[dimension] || {};
    const keys = Object.keys(rows).sort();
    const c = charts.breakdown;
    c.data.labels = keys;
    c.data.datasets = [dataset(measure, keys.map((k) => scaled(measure, rows[k][measure])), 0)];
    c.update();
  }

  function headline(m) {
    const tile = (id, name, value, hint) => el("div", { class: "tile", id: `kpi-${id}` },
      el("span", { class: "muted small" }, name), el("strong", {}, value), hint ? el("span", { class: "muted small" }, hint) : null);
    const answered = m.csat_responses ? m.csat_responses.count : 0;
    control("headline").replaceChildren(
      tile("conversations", "Conversations", shown(m.conversations)),
      tile("containment", "Containment", shown(percent(m.containment_rate), " %")),
      tile("escalation", "Escalation rate", shown(percent(m.escalation_rate), " %")),
      tile("accuracy", "Escalation accuracy", shown(percent(m.escalation_accuracy), " %"), `${m.consultations} consultations`),
      tile("missed", "Missed escalations", shown(m.missed_escalations)),
      tile("first-reply", "First reply, median", shown(minutes(m.first_reply_seconds.median), " min"), `P90 ${shown(minutes(m.first_reply_seconds.p90), " min")}`),
      tile("resolution", "Resolution, median", shown(minutes(m.resolution_seconds.median), " min"), `P90 ${shown(minutes(m.resolution_seconds.p90), " min")}`),
      tile("reopened", "Reopened", shown(percent(m.reopened_rate), " %")),
      tile("csat", "CSAT", shown(m.csat === null || m.csat === undefined ? null : round1(m.csat)), `${answered} answers`),
      tile("override", "Override rate", shown(percent(m.override_rate), " %")),
      tile("sla", "SLA breaches", shown(m.sla_breaches)),
      tile("qa", "QA reviews pending", shown((m.qa || {}).pending)));
  }

  function draw(m) {
    headline(m);
    drawWeekly(m);
    drawTimes(m);
    const verdicts = m.verdicts || {};
    drawCounts(charts.verdicts, labels.verdicts.map((v) => [v.label, verdicts[v.key] || 0]));
    const reasons = m.override_reasons || {};
    const known = labels.override_reasons.map((r) => [r.label, reasons[r.key] || 0]);
    drawCounts(charts.overrides, [...known, ["Unspecified", reasons.unspecified || 0]]);
    drawBreakdown(m);
  }

  function fill(select, values) {
    const keep = select.value;
    const first = select.options[0];
    select.replaceChildren(first, ...[...new Set(values)].sort().map((v) => el("option", { value: v }, label(v))));
    select.value = keep;
  }

  function query() {
    const params = new URLSearchParams();
    for (const name of FILTERS) if (control(name).value) params.set(name, control(name).value);
    return params;
  }

  async function load() {
    const params = query();
    const mine = ++asked;
    const flash = control("flash");
    history.replaceState(null, "", `/dashboard/analytics${params.toString() ? "?" + params : ""}`);
    const response = await api(`/dashboard/api/metrics?${params}`);
    const result = await response.json();
    if (mine !== asked) return;  // a newer filter change is on its way
    if (!response.ok) {
      flash.className = "flash error";
      flash.textContent = result.error || response.statusText;
      return;
    }
    flash.className = "flash";
    flash.textContent = "";
    last = result;
    draw(result);
    document.body.dataset.loaded = String(mine);
  }

  async function start() {
    await window.Backline.start();
    labels = await (await api("/dashboard/api/governance")).json();
    const params = new URLSearchParams(location.search);
    fill(control("queue"), labels.queues);
    fill(control("intent"), labels.intents);
    control("measure").replaceChildren(...MEASURES.map(([key, name]) => el("option", { value: key }, name)));
    const everything = await (await api("/dashboard/api/metrics")).json();
    const breakdowns = everything.breakdowns || {};
    fill(control("channel"), Object.keys(breakdowns.channel || {}));
    fill(control("reason"), Object.keys(breakdowns.reason || {}));
    fill(control("intent"), [...labels.intents, ...Object.keys(breakdowns.intent || {})]);
    for (const name of FILTERS) {
      const wanted = params.get(name);
      if (wanted && control(name).tagName === "SELECT" && ![...control(name).options].some((o) => o.value === wanted)) {
        control(name).append(el("option", { value: wanted }, label(wanted)));
      }
      if (wanted) control(name).value = wanted;
      control(name).addEventListener("change", load);
    }
    control("dimension").addEventListener("change", () => last && drawBreakdown(last));
    control("measure").addEventListener("change", () => last && drawBreakdown(last));
    makeCharts();
    await load();
  }

  start();
})();
