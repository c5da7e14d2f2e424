// The activity dashboard (moderators and admins): live counts polled from /api/activity/stats,
// activity over a chosen range from /api/activity/history, and match statistics from
// /api/matches/stats, drawn with Chart.js (window.Chart, loaded by a <script> tag) with a
// summary and a table beside each chart.
import { api, duration, make } from "/static/auth.js";
import { startStaffPage } from "/static/staff.js";

const POLL_MS = 5000; // live counts
const CHARTS_MS = 60000; // charts of the chosen range
// Buckets keep every chart at or under ~200 points; `matches` (the coarser) aligns the range.
const RANGES = {
  hour: { span: 3600, activity: 60, matches: 300, per: "5 minutes", words: "the last hour" },
  day: { span: 86400, activity: 600, matches: 3600, per: "hour", words: "the last 24 hours" },
  week: { span: 7 * 86400, activity: 3600, matches: 3600, per: "hour", words: "the last 7 days" },
};
const COLORS = { online: "#2156d1", searching: "#b35c00", inCall: "#1e7d3a", video: "#2156d1", text: "#8e44ad" };
const EVERY = { 60: "minute", 300: "5 minutes", 600: "10 minutes", 3600: "hour", 86400: "day" };

const $ = (id) => document.getElementById(id);
const el = {
  title: $("dash-title"), updated: $("updated"), online: $("now-online"), searching: $("now-searching"),
  inCall: $("now-in-call"), breakdown: $("now-breakdown"), nowMessage: $("now-message"),
  ranges: $("ranges"), rangeMessage: $("range-message"),
  activityCanvas: $("activity-chart"), activitySummary: $("activity-summary"), activityTable: $("activity-table"),
  total: $("stat-total"), active: $("stat-active"), ended: $("stat-ended"), average: $("stat-average"),
  modeCanvas: $("mode-chart"), modeVideo: $("mode-video"), modeText: $("mode-text"), modeSummary: $("mode-summary"),
  perBucketTitle: $("per-bucket-title"), matchesCanvas: $("matches-chart"), matchesSummary: $("matches-summary"),
  matchesTable: $("matches-table"),
};

const view = {
  token: null,
  range: "day",
  charts: { activity: null, matches: null, mode: null },
  now: null, // the latest /api/activity/stats answer
  history: null,
  stats: null,
  historyQuery: null,
  statsQuery: null,
  polls: 0,
  pollTimer: null,
  chartTimer: null,
  generation: 0, // a newer range choice makes older answers stale
};

// -------------------------------------------------------------------------- live counts

async function pollNow() {
  clearTimeout(view.pollTimer);
  if (!view.token) return;
  if (!document.hidden) {
    const answer = await api(view.token, "GET", "/api/activity/stats");
    if (!view.token) return;
    view.polls += 1;
    if (answer.ok) {
      const now = answer.data;
      view.now = now;
      el.online.textContent = String(now.totalOnline);
      el.searching.textContent = String(now.searching);
      el.inCall.textContent = String(now.inCall);
      const busy = now.breakdown || { video: 0, text: 0 };
      el.breakdown.textContent = `Searching or in a call, by mode: ${busy.video} video, ${busy.text} text.`;
      el.updated.textContent = `Updated ${new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })}`;
      el.nowMessage.textContent = "";
    } else {
      el.nowMessage.textContent = `Could not update the counts: ${answer.error.message}. Retrying…`;
    }
  }
  view.pollTimer = setTimeout(pollNow, POLL_MS);
}

// ------------------------------------------------------------------------------ charts

function rangeQuery(range) {
  const spec = RANGES[range];
  const end = Date.now();
  const step = spec.matches * 1000;
  const start = Math.floor((end - spec.span * 1000) / step) * step;
  return { start: new Date(start).toISOString(), end: new Date(end).toISOString() };
}

function label(iso, range) {
  const date = new Date(iso);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return range === "week" ? `${date.toLocaleDateString([], { weekday: "short", day: "numeric" })} ${time}` : time;
}

function baseOptions(extra = {}) {
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false, // the data changes at most once a minute: nothing to animate, nothing to wait for
    plugins: { legend: { position: "bottom", labels: { usePointStyle: true, pointStyle: "line", boxWidth: 28 } } },
    ...extra,
  };
}

function countAxis() {
  return { beginAtZero: true, ticks: { precision: 0 } };
}

function draw(key, canvas, config) {
  const chart = view.charts[key];
  if (chart) {
    chart.data = config.data;
    if (config.options) chart.options = config.options;
    chart.update();
    return chart;
  }
  if (!window.Chart) return null; // the tables and summaries still say it all
  view.charts[key] = new window.Chart(canvas, config);
  return view.charts[key];
}

function fillTable(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(
    ...rows.map((cells) => {
      const row = make("tr");
      cells.forEach((cell, i) => row.append(make(i === 0 ? "th" : "td", "", cell)));
      if (row.firstChild) row.firstChild.scope = "row";
      return row;
    }),
  );
}

function peak(points, key) {
  let best = null;
  for (const point of points) if (!best || point[key] > best[key]) best = point;
  return best;
}

function renderHistory(range) {
  const timeline = view.history.timeline;
  const labels = timeline.map((p) => label(p.timestamp, range));
  draw("activity", el.activityCanvas, {
    type: "line",
    data: {
      labels,
      datasets: [
        { label: "Online", data: timeline.map((p) => p.onlineCount), borderColor: COLORS.online, backgroundColor: COLORS.online },
        { label: "Searching", data: timeline.map((p) => p.searchingCount), borderColor: COLORS.searching, backgroundColor: COLORS.searching, borderDash: [6, 3] },
        { label: "In a call", data: timeline.map((p) => p.inCallCount), borderColor: COLORS.inCall, backgroundColor: COLORS.inCall },
      ].map((set) => ({ ...set, pointRadius: timeline.length > 80 ? 0 : 2, borderWidth: 2, tension: 0 })),
    },
    options: baseOptions({
      interaction: { mode: "index", intersect: false },
      scales: { x: { ticks: { maxTicksLimit: 8, maxRotation: 0 } }, y: countAxis() },
    }),
  });
  fillTable(el.activityTable, timeline.map((p, i) => [labels[i], p.onlineCount, p.searchingCount, p.inCallCount]));
  const top = peak(timeline, "onlineCount");
  const busiest = peak(timeline, "inCallCount");
  el.activitySummary.textContent = !timeline.length || !top
    ? `No activity recorded in ${RANGES[range].words}.`
    : `In ${RANGES[range].words}: at most ${top.onlineCount} online (at ${label(top.timestamp, range)}), ` +
      `at most ${busiest.inCallCount} in a call (at ${label(busiest.timestamp, range)}). ` +
      `${timeline.length} points, one every ${EVERY[view.history.bucket || RANGES[range].activity] || `${view.history.bucket} s`}.`;
}

function renderStats(range) {
  const stats = view.stats;
  const spec = RANGES[range];
  el.total.textContent = String(stats.totalMatches);
  el.active.textContent = String(stats.activeMatches);
  el.ended.textContent = String(stats.endedMatches);
  el.average.textContent = duration(stats.averageDuration);
  el.average.title = `${stats.averageDuration} seconds`;
  for (const [node, value] of [[el.total, stats.totalMatches], [el.active, stats.activeMatches], [el.ended, stats.endedMatches], [el.average, stats.averageDuration]]) {
    node.dataset.value = String(value);
  }

  const video = stats.matchesByMode.VIDEO || 0;
  const text = stats.matchesByMode.TEXT || 0;
  el.modeVideo.textContent = String(video);
  el.modeText.textContent = String(text);
  draw("mode", el.modeCanvas, {
    type: "doughnut",
    data: {
      labels: ["Video", "Text"],
      datasets: [{ data: [video, text], backgroundColor: [COLORS.video, COLORS.text], borderWidth: 1 }],
    },
    options: baseOptions({ plugins: { legend: { display: false } } }),
  });
  const all = video + text;
  el.modeSummary.textContent = all
    ? `${video} video and ${text} text matches in ${spec.words} (${Math.round((video / all) * 100)}% video). ` +
      `Average duration of the calls that started: ${duration(stats.averageDuration)} (${stats.averageDuration} s).`
    : `No matches in ${spec.words}.`;

  const buckets = stats.matchesByTimeRange;
  const labels = buckets.map((b) => label(b.time, range));
  el.perBucketTitle.textContent = `Matches per ${spec.per}`;
  draw("matches", el.matchesCanvas, {
    type: "bar",
    data: {
      labels,
      datasets: [{ label: `Matches per ${spec.per}`, data: buckets.map((b) => b.count), backgroundColor: COLORS.online }],
    },
    options: baseOptions({
      plugins: { legend: { display: false } },
      scales: { x: { ticks: { maxTicksLimit: 8, maxRotation: 0 } }, y: countAxis() },
    }),
  });
  fillTable(el.matchesTable, buckets.map((b, i) => [labels[i], b.count]));
  const top = peak(buckets, "count");
  el.matchesSummary.textContent = top && top.count
    ? `${stats.totalMatches} matches in ${spec.words}; the busiest ${spec.per} began at ${label(top.time, range)} with ${top.count}.`
    : `No matches in ${spec.words}.`;
}

async function loadCharts() {
  clearTimeout(view.chartTimer);
  if (!view.token) return;
  const range = view.range;
  const spec = RANGES[range];
  const generation = ++view.generation;
  const { start, end } = rangeQuery(range);
  const historyQuery = new URLSearchParams({ startTime: start, endTime: end, bucket: String(spec.activity) }).toString();
  const statsQuery = new URLSearchParams({ startTime: start, endTime: end, bucket: String(spec.matches) }).toString();
  const [history, stats] = await Promise.all([
    api(view.token, "GET", `/api/activity/history?${historyQuery}`),
    api(view.token, "GET", `/api/matches/stats?${statsQuery}`),
  ]);
  if (generation !== view.generation || !view.token) return;
  const problems = [];
  if (history.ok) {
    view.history = history.data;
    view.historyQuery = historyQuery;
    renderHistory(range);
  } else problems.push(`activity: ${history.error.message}`);
  if (stats.ok) {
    view.stats = stats.data;
    view.statsQuery = statsQuery;
    renderStats(range);
  } else problems.push(`matches: ${stats.error.message}`);
  el.rangeMessage.textContent = problems.length ? `Could not load ${problems.join("; ")}` : "";
  view.chartTimer = setTimeout(loadCharts, CHARTS_MS);
}

function chooseRange(range) {
  if (!RANGES[range]) return;
  view.range = range;
  for (const button of el.ranges.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.range === range));
  }
  loadCharts();
}

// ------------------------------------------------------------------------------ wiring

el.ranges.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-range]");
  if (button) chooseRange(button.dataset.range);
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && view.token) pollNow();
});

// A small read-only view for tests and debugging.
window.pairwireDashboard = {
  get charts() { return { ...view.charts }; },
  get now() { return view.now && { ...view.now }; },
  get stats() { return view.stats && { ...view.stats }; },
  get historyQuery() { return view.historyQuery; },
  get statsQuery() { return view.statsQuery; },
  get polls() { return view.polls; },
  get range() { return view.range; },
};

startStaffPage({
  page: { path: "/static/dashboard.html", noun: "dashboard", role: "admin" },
  probe: (token) => api(token, "GET", `/api/activity/history?bucket=3600`),
  ready: ({ token }) => {
    view.token = token;
    el.title.focus();
    if (!window.Chart) el.rangeMessage.textContent = "The chart library did not load (npm ci installs chart.js); the tables below still work.";
    pollNow();
    loadCharts();
  },
  stop: () => {
    view.token = null;
    clearTimeout(view.pollTimer);
    clearTimeout(view.chartTimer);
  },
});
