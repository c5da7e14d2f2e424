// The moderators' queue: flags by status, each with the match's timeline, its chat transcript
// and the flag's audit trail, and the review actions (PATCH /api/flags/{id}).
// Every user-provided string (names, reasons, messages, notes) is set with textContent only.
import { api, duration, make, when } from "/static/auth.js";
import { startStaffPage } from "/static/staff.js";

const PAGE_SIZE = 50;
const STATUSES = ["PENDING", "REVIEWED", "RESOLVED", "DISMISSED"];
const STATUS_WORD = { PENDING: "Pending", REVIEWED: "Reviewed", RESOLVED: "Resolved", DISMISSED: "Dismissed" };
const CATEGORY_WORD = {
  HARASSMENT: "Harassment", INAPPROPRIATE: "Inappropriate content", SPAM: "Spam", SCAM: "Scam or fraud",
  HATE_SPEECH: "Hate speech", VIOLENCE: "Violence or threats", OTHER: "Something else",
};
const ACTION_WORD = { create: "Flag raised", reason: "Reason given", review: "Reviewed", update: "Updated" };
const FIELD_WORD = {
  reason: "reason", category: "category", status: "status", adminNotes: "notes",
  flaggedUserId: "against", matchId: "match",
};

const $ = (id) => document.getElementById(id);
const el = {
  queueTitle: $("queue-title"), refresh: $("refresh"), tabs: $("status-tabs"), queueMessage: $("queue-message"),
  list: $("flag-list"), empty: $("list-empty"), more: $("more"),
  detail: $("detail"), detailTitle: $("detail-title"), detailStatus: $("detail-status"), facts: $("detail-facts"),
  reason: $("detail-reason"), matchSummary: $("match-summary"), timeline: $("timeline"), transcript: $("transcript"),
  reviewForm: $("review-form"), notes: $("admin-notes"), reviewMessage: $("review-message"), audit: $("audit"),
};

const view = {
  token: null,
  me: null,
  status: "PENDING", // "" for all
  flags: [], // rows of the current list
  total: 0,
  names: new Map(), // user id -> display name, from every row seen
  selected: null, // flag id shown in the detail
  detail: null, // {flag, audit, match, messages}
  loading: 0,
};

function name(userId) {
  if (!userId) return "—";
  return view.names.get(userId) || userId;
}

function remember(row) {
  if (row.flaggedBy && row.flaggedBy.name) view.names.set(row.flaggedBy.id, row.flaggedBy.name);
  if (row.flaggedUser && row.flaggedUser.name) view.names.set(row.flaggedUser.id, row.flaggedUser.name);
}

function chip(status) {
  const node = make("span", `chip status-${String(status || "").toLowerCase()}`, STATUS_WORD[status] || status);
  return node;
}

// ------------------------------------------------------------------------------ list

async function loadCounts() {
  const answers = await Promise.all(
    ["", ...STATUSES].map((status) => api(view.token, "GET", `/api/flags?limit=1${status ? `&status=${status}` : ""}`)),
  );
  ["", ...STATUSES].forEach((status, i) => {
    const button = el.tabs.querySelector(`[data-status="${status}"] .count`);
    button.textContent = answers[i].ok ? `(${answers[i].data.total})` : "";
  });
}

async function loadList({ append = false } = {}) {
  const offset = append ? view.flags.length : 0;
  const status = view.status;
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset) });
  if (status) query.set("status", status);
  view.loading += 1;
  el.list.setAttribute("aria-busy", "true");
  const answer = await api(view.token, "GET", `/api/flags?${query}`);
  view.loading -= 1;
  el.list.removeAttribute("aria-busy");
  if (status !== view.status) return; // another tab was chosen meanwhile
  if (!answer.ok) {
    el.queueMessage.textContent = `Could not load the flags: ${answer.error.message}`;
    return;
  }
  for (const row of answer.data.flags) remember(row);
  view.flags = append ? [...view.flags, ...answer.data.flags] : answer.data.flags;
  view.total = answer.data.total;
  renderList();
}

function renderList() {
  el.list.replaceChildren(...view.flags.map(listItem));
  el.empty.hidden = view.flags.length > 0;
  el.empty.textContent = view.status ? `No ${STATUS_WORD[view.status].toLowerCase()} flags.` : "No flags yet.";
  el.more.hidden = view.flags.length >= view.total;
  el.more.textContent = `Show more (${view.total - view.flags.length} left)`;
}

function listItem(flag) {
  const item = make("li", "flag-item");
  const button = make("button", "flag-open");
  button.type = "button";
  button.dataset.flagId = flag.id;
  if (flag.id === view.selected) button.setAttribute("aria-current", "true");
  const top = make("span", "flag-top");
  top.append(make("strong", "against", name(flag.flaggedUserId)), chip(flag.status));
  const by = make("span", "flag-by", `reported by ${name(flag.flaggedById)} · ${when(flag.flaggedAt)}`);
  const meta = make("span", "flag-meta");
  meta.append(make("span", "category", CATEGORY_WORD[flag.category] || "No category"));
  const reason = make("span", flag.reason ? "flag-reason" : "flag-reason none", flag.reason || "No reason given yet");
  button.append(top, by, meta, reason);
  button.addEventListener("click", () => select(flag.id, { focus: true }));
  item.append(button);
  return item;
}

async function refresh() {
  el.queueMessage.textContent = "";
  await Promise.all([loadList(), loadCounts()]);
  if (view.selected) await loadDetail(view.selected);
}

function chooseStatus(status) {
  view.status = status;
  for (const button of el.tabs.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === status));
  }
  view.flags = [];
  renderList();
  loadList();
}

// ---------------------------------------------------------------------------- detail

async function select(flagId, { focus = false } = {}) {
  view.selected = flagId;
  for (const button of el.list.querySelectorAll(".flag-open")) {
    if (button.dataset.flagId === flagId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  el.reviewMessage.textContent = "";
  await loadDetail(flagId);
  if (focus && view.selected === flagId) {
    el.detailTitle.focus();
    el.detail.scrollIntoView({ block: "start", behavior: "smooth" });
  }
}

async function loadDetail(flagId) {
  const flagAnswer = await api(view.token, "GET", `/api/flags/${encodeURIComponent(flagId)}`);
  if (view.selected !== flagId) return;
  if (!flagAnswer.ok) {
    el.queueMessage.textContent = `Could not open the flag: ${flagAnswer.error.message}`;
    return;
  }
  const { flag, audit } = flagAnswer.data;
  let match = null;
  let messages = null;
  let matchProblem = "";
  if (flag.matchId) {
    const id = encodeURIComponent(flag.matchId);
    const [m, t] = await Promise.all([
      api(view.token, "GET", `/api/matches/${id}`),
      api(view.token, "GET", `/api/matches/${id}/messages`),
    ]);
    if (view.selected !== flagId) return;
    if (m.ok) {
      match = m.data.match;
      for (const user of [match.user1, match.user2]) if (user && user.name) view.names.set(user.id, user.name);
    } else matchProblem = m.error.message;
    messages = t.ok ? t.data.messages : null;
  }
  await learnNames([flag.reviewedBy, match && match.endedBy, ...audit.map((entry) => entry.actorId)]);
  if (view.selected !== flagId) return;
  view.detail = { flag, audit, match, messages, matchProblem };
  renderDetail();
}

/** Display names of people not seen in the list yet (other moderators, mostly). */
async function learnNames(ids) {
  const unknown = [...new Set(ids.filter((id) => id && !view.names.has(id)))];
  const answers = await Promise.all(unknown.map((id) => api(view.token, "GET", `/api/users/${encodeURIComponent(id)}`)));
  answers.forEach((answer, i) => {
    if (answer.ok && answer.data.user) view.names.set(unknown[i], answer.data.user.displayName);
  });
}

function fact(term, value, className = "") {
  const wrap = make("div", className);
  wrap.append(make("dt", "", term), make("dd", "", value));
  return wrap;
}

function renderDetail() {
  const { flag, audit, match, messages, matchProblem } = view.detail;
  el.detail.hidden = false;
  el.detailTitle.textContent = `Flag against ${name(flag.flaggedUserId)}`;
  el.detailStatus.replaceWith((el.detailStatus = chip(flag.status)));
  el.detailStatus.id = "detail-status";

  el.facts.replaceChildren(
    fact("Reported user", name(flag.flaggedUserId)),
    fact("Reported by", name(flag.flaggedById)),
    fact("Flagged at", when(flag.flaggedAt)),
    fact("Category", CATEGORY_WORD[flag.category] || "None given"),
    fact("Status", STATUS_WORD[flag.status] || flag.status),
    fact(
      "Reviewed",
      flag.reviewedAt ? `${when(flag.reviewedAt)} by ${name(flag.reviewedBy)}` : "Not yet",
    ),
  );
  el.reason.textContent = flag.reason || "No reason given yet.";
  el.reason.classList.toggle("none", !flag.reason);

  renderTimeline(flag, match, matchProblem);
  renderTranscript(match, messages, flag);

  if (document.activeElement !== el.notes) el.notes.value = flag.adminNotes || "";
  for (const button of el.reviewForm.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.status === flag.status));
  }

  el.audit.replaceChildren(...audit.map(auditItem));
}

function renderTimeline(flag, match, problem) {
  el.timeline.replaceChildren();
  if (!flag.matchId) {
    el.matchSummary.textContent = "This flag names no match.";
    return;
  }
  if (!match) {
    el.matchSummary.textContent = `The match could not be loaded: ${problem || "unknown error"}.`;
    return;
  }
  const topics = match.matchedTopics && match.matchedTopics.length ? match.matchedTopics.join(", ") : "none";
  el.matchSummary.textContent =
    `${match.mode === "TEXT" ? "Text chat" : "Video call"} between ${name(match.user1Id)} and ${name(match.user2Id)}` +
    ` · status ${match.status} · duration ${match.duration == null ? "—" : duration(match.duration)}` +
    ` · shared topics: ${topics}`;
  const events = [
    [match.matchedAt, "Matched", ""],
    [match.user1JoinedAt, `${name(match.user1Id)} joined`, ""],
    [match.user2JoinedAt, `${name(match.user2Id)} joined`, ""],
    [match.startedAt, "Call started", ""],
    [flag.flaggedAt, `Flagged by ${name(flag.flaggedById)}`, "flag-event"],
    [
      match.endedAt,
      `Call ${match.status === "SKIPPED" ? "skipped" : match.status === "TIMEOUT" ? "timed out" : "ended"}` +
        (match.endedBy ? ` by ${name(match.endedBy)}` : ""),
      "",
    ],
  ].filter(([at]) => at);
  events.sort((a, b) => new Date(a[0]) - new Date(b[0]));
  const origin = new Date(match.matchedAt).getTime();
  for (const [at, what, className] of events) {
    const item = make("li", className);
    const offset = (new Date(at).getTime() - origin) / 1000;
    const time = make("time", "", when(at));
    time.dateTime = at;
    item.append(time, make("span", "offset", `+${duration(offset)}`), make("span", "what", what));
    el.timeline.append(item);
  }
  if (!match.endedAt) el.timeline.append(make("li", "open-call", "The call is still open."));
}

function renderTranscript(match, messages, flag) {
  el.transcript.replaceChildren();
  if (!flag.matchId) return;
  if (messages === null) {
    el.transcript.append(make("li", "notice", "The transcript could not be loaded."));
    return;
  }
  if (!messages.length) {
    el.transcript.append(make("li", "notice", "No chat messages in this match."));
    return;
  }
  for (const message of messages) {
    const item = make("li", message.from === flag.flaggedUserId ? "line reported" : "line");
    const head = make("span", "line-head");
    const time = make("time", "", when(message.sentAt));
    time.dateTime = message.sentAt;
    head.append(make("span", "who", name(message.from)), time);
    item.append(head, make("p", "text", message.text));
    el.transcript.append(item);
  }
}

function shown(key, value) {
  if (value === null || value === undefined || value === "") return "(empty)";
  if (key === "status" && STATUS_WORD[value]) return STATUS_WORD[value];
  if (key === "category" && CATEGORY_WORD[value]) return CATEGORY_WORD[value];
  if (typeof value === "string") return `“${value}”`; // user text, quoted (and only ever textContent)
  return JSON.stringify(value);
}

function auditItem(entry) {
  const item = make("li");
  const time = make("time", "", when(entry.at));
  time.dateTime = entry.at;
  const head = make("span", "audit-head");
  head.append(time, make("strong", "", ` ${ACTION_WORD[entry.action] || entry.action}`), make("span", "", ` by ${name(entry.actorId)}`));
  const changes = make("ul", "changes");
  for (const [key, change] of Object.entries(entry.changes || {})) {
    if (entry.action === "create" && (key === "flaggedUserId" || key === "matchId")) continue;
    const line =
      change && typeof change === "object" && "to" in change
        ? `${FIELD_WORD[key] || key}: ${shown(key, change.from)} → ${shown(key, change.to)}`
        : `${FIELD_WORD[key] || key}: ${shown(key, change)}`;
    changes.append(make("li", "", line));
  }
  item.append(head, changes);
  return item;
}

async function review(status) {
  const current = view.detail && view.detail.flag;
  if (!current) return;
  const body = { status };
  const notes = el.notes.value.trim();
  if (notes !== (current.adminNotes || "")) body.adminNotes = notes;
  const buttons = el.reviewForm.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  el.reviewMessage.textContent = "Saving…";
  const answer = await api(view.token, "PATCH", `/api/flags/${encodeURIComponent(current.id)}`, body);
  for (const button of buttons) button.disabled = false;
  if (!answer.ok) {
    el.reviewMessage.textContent = `Not saved: ${answer.error.message}`;
    return;
  }
  el.reviewMessage.textContent = `Saved: marked ${STATUS_WORD[status].toLowerCase()}.`;
  el.notes.blur();
  el.notes.value = answer.data.flag.adminNotes || "";
  await refresh();
  el.reviewMessage.textContent = `Saved: marked ${STATUS_WORD[status].toLowerCase()}.`;
}

// ---------------------------------------------------------------------------- wiring

el.tabs.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-status]");
  if (button) chooseStatus(button.dataset.status);
});
el.refresh.addEventListener("click", refresh);
el.more.addEventListener("click", () => loadList({ append: true }));
el.reviewForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const button = event.submitter;
  if (button && button.dataset.status) review(button.dataset.status);
});

window.pairwireQueue = {
  get flags() { return view.flags.map((f) => ({ ...f })); },
  get selected() { return view.selected; },
  get status() { return view.status; },
};

startStaffPage({
  page: { path: "/static/moderate.html", noun: "moderation queue", role: "moderator" },
  probe: (token) => api(token, "GET", "/api/flags?limit=1"),
  ready: ({ token, user }) => {
    view.token = token;
    view.me = user;
    view.names.set(user.id, user.displayName);
    el.queueTitle.focus();
    refresh();
  },
});
