// The match page: guest sign-in, then searching, matched, in call and ended, over Socket.IO
// (docs/protocol.md). User text is only ever set with textContent, never as HTML.
import { io } from "/vendor/socket.io/socket.io.esm.min.js";
import { PeerCall } from "/static/call.js";
import { Chat } from "/static/chat.js";
import { api, forgetToken, isStaff, storeToken, takeToken, tokenRole } from "/static/auth.js";

const ACK_TIMEOUT_MS = 10000;
const RESUME_WAIT_MS = 5000; // after a reconnect, how long match:found may take to come back
const MIN_REASON = 10; // characters of a flag's reason (the server's rule)
const THANKS = "Report submitted. Thank you for keeping our community safe.";

const $ = (id) => document.getElementById(id);
const el = {
  account: $("account"), whoami: $("whoami"), signOut: $("sign-out"), banner: $("banner"),
  signInView: $("sign-in-view"), signInForm: $("guest"), signInStatus: $("sign-in-status"),
  lobbyView: $("lobby-view"), startForm: $("start-form"), lobbyMessage: $("lobby-message"),
  callView: $("call-view"), callTitle: $("call-title"), callDetail: $("call-detail"),
  topicsLine: $("topics-line"), timer: $("timer"), callMessage: $("call-message"),
  stage: $("stage"), media: $("media"), remoteVideo: $("remote-video"), localVideo: $("local-video"),
  remotePlaceholder: $("remote-placeholder"), chat: $("chat"), chatForm: $("chat-form"),
  mute: $("mute"), camera: $("camera"), skip: $("skip"), end: $("end"), flag: $("flag"),
  cancel: $("cancel"), again: $("again"), changeMode: $("change-mode"), newSession: $("new-session"),
  staffNav: $("staff-nav"), flagLabel: $("flag-label"), reportStatus: $("report-status"),
  flagDialog: $("flag-dialog"), flagForm: $("flag-form"), flagTitle: $("flag-title"), flagSaved: $("flag-saved"),
  flagReason: $("flag-reason"), flagCount: $("flag-count"), flagError: $("flag-error"),
  flagCategory: $("flag-category"), flagEndLine: $("flag-end-line"), flagEnd: $("flag-end"),
  flagClose: $("flag-close"), flagSubmit: $("flag-submit"), flagThanks: $("flag-thanks"), flagDone: $("flag-done"),
};

const app = {
  state: "signed-out", // signed-out, idle, searching, matched, in-call, ended
  token: takeToken(), // this tab's sign-in, or one handed over as /#token=...
  user: null,
  mode: "video",
  sessionId: null,
  searchingSince: 0,
  exhausted: null, // the queue:exhausted message while searching
  match: null, // {id, mode, initiator, partner, matchedTopics, iceServers, startedAt}
  ended: null, // {title, detail}
  call: null, // PeerCall of the current match (video)
  localStream: null,
  muted: false,
  cameraOff: false,
  remoteConnected: false,
  report: null, // {matchId, flag, busy, submitted}: the flag raised against the current partner
};

let socket = null;
let connectedOnce = false;
let resumeTimer = null;
let events = Promise.resolve(); // server events are handled one at a time, in arrival order

const chat = new Chat({ request, matchId: () => (app.match && app.state !== "ended" ? app.match.id : null) });

// ---------------------------------------------------------------------------- helpers

function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hours = Math.floor(s / 3600);
  const rest = `${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
  return hours ? `${hours}:${rest}` : rest;
}

/** Emit with an acknowledgement, bounded; answers like the server: {ok, ...}. */
async function request(event, payload) {
  if (!socket) return { ok: false, error: { code: "unavailable", message: "not connected" } };
  try {
    return await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  } catch {
    return { ok: false, error: { code: "timeout", message: "the server did not answer in time" } };
  }
}

function serial(handler) {
  return (payload) => {
    events = events.then(() => handler(payload)).catch((error) => console.error("pairwire:", error));
  };
}

function showBanner(text) {
  el.banner.textContent = text;
  el.banner.hidden = !text;
}

function partnerName() {
  return (app.match && app.match.partner && app.match.partner.displayName) || "Your partner";
}

// ----------------------------------------------------------------------------- render

function setState(state) {
  const changed = state !== app.state;
  app.state = state;
  render();
  if (changed) keepFocus();
}

function render() {
  const { state } = app;
  document.body.dataset.state = state;
  const signedIn = state !== "signed-out";
  el.account.hidden = !signedIn;
  el.whoami.textContent = app.user ? `Signed in as ${app.user.displayName}` : "";
  // Moderators reach their pages from here, but not mid-call (leaving the page ends the call).
  const staff = isStaff(app.user && app.user.role) || isStaff(tokenRole(app.token));
  el.staffNav.hidden = !(staff && (state === "idle" || state === "ended"));
  el.signInView.hidden = signedIn;
  el.lobbyView.hidden = state !== "idle";
  el.callView.hidden = !["searching", "matched", "in-call", "ended"].includes(state);

  const mode = app.match ? app.match.mode : app.mode;
  document.body.dataset.mode = mode;
  const live = state === "matched" || state === "in-call";
  const video = mode === "video";

  // Status line.
  el.topicsLine.hidden = true;
  if (state === "searching") {
    el.callTitle.textContent = "Looking for someone…";
    el.callDetail.textContent = app.exhausted || `Waiting for a ${video ? "video" : "text"} partner.`;
  } else if (state === "matched") {
    el.callTitle.textContent = `Matched with ${partnerName()}`;
    el.callDetail.textContent = app.remoteConnected ? "" : "Connecting…";
  } else if (state === "in-call") {
    el.callTitle.textContent = `In a call with ${partnerName()}`;
    el.callDetail.textContent = video && !app.remoteConnected ? "Connecting video…" : "";
  } else if (state === "ended") {
    el.callTitle.textContent = app.ended ? app.ended.title : "Call ended";
    el.callDetail.textContent = app.ended ? app.ended.detail : "";
  }
  if (live && app.match) {
    const topics = app.match.matchedTopics || [];
    el.topicsLine.hidden = false;
    el.topicsLine.textContent = topics.length ? `Shared topics: ${topics.join(", ")}` : "No shared topics";
  }
  el.callDetail.hidden = !el.callDetail.textContent;
  el.timer.hidden = !(state === "searching" || state === "in-call");
  tick();

  // Media: own preview while searching in video mode, both videos in a video call.
  el.media.hidden = !(video && (state === "searching" || live));
  el.remoteVideo.hidden = !live;
  el.remotePlaceholder.hidden = !live || app.remoteConnected;
  el.remotePlaceholder.textContent = state === "matched" ? "Connecting…" : "Waiting for video…";
  el.stage.classList.toggle("searching", state === "searching");

  // Chat beside the call and in text mode; after the call it stays readable.
  el.chat.hidden = !(live || (state === "ended" && chat.hasMessages));
  chat.setEnabled(live);
  el.chatForm.hidden = !live;

  // Controls.
  el.mute.hidden = el.camera.hidden = !(live && video);
  el.mute.textContent = app.muted ? "Unmute" : "Mute";
  el.camera.textContent = app.cameraOff ? "Camera on" : "Camera off";
  el.skip.hidden = el.end.hidden = !live;
  el.cancel.hidden = state !== "searching";
  el.newSession.hidden = !(state === "searching" && app.exhausted);
  el.again.hidden = el.changeMode.hidden = state !== "ended";
  renderReport(live);
}

function renderReport(live) {
  const report = app.report && app.match && app.report.matchId === app.match.id ? app.report : null;
  const partnerKnown = Boolean(app.match && app.match.partner && app.match.partner.id);
  el.flag.hidden = !(partnerKnown && (live || app.state === "ended"));
  el.flag.disabled = Boolean(report && (report.busy || report.submitted));
  el.flagLabel.textContent = report && report.submitted ? "Reported" : report && report.busy && !report.flag ? "Reporting…" : "Report";
  el.reportStatus.hidden = !el.reportStatus.textContent || !["matched", "in-call", "ended"].includes(app.state);
  // Once the call is over there is nothing left to end.
  el.flagEndLine.hidden = !live;
}

/** When the focused control disappeared with the state, land on the new view's heading. */
function keepFocus() {
  const active = document.activeElement;
  if (active && active !== document.body && active.offsetParent !== null && !active.disabled) return;
  const heading = { "signed-out": "sign-in-title", idle: "lobby-title" }[app.state] || "call-title";
  $(heading).focus();
}

function tick() {
  if (app.state === "searching") el.timer.textContent = mmss((Date.now() - app.searchingSince) / 1000);
  else if (app.state === "in-call" && app.match && app.match.startedAt)
    el.timer.textContent = mmss((Date.now() - app.match.startedAt) / 1000);
}
setInterval(tick, 500);

// ------------------------------------------------------------------------------ media

async function ensureLocalMedia() {
  if (app.localStream) return app.localStream;
  app.localStream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  app.muted = false;
  app.cameraOff = false;
  el.localVideo.srcObject = app.localStream;
  return app.localStream;
}

function stopLocalMedia() {
  if (app.localStream) for (const track of app.localStream.getTracks()) track.stop();
  app.localStream = null;
  el.localVideo.srcObject = null;
}

function mediaError(error) {
  if (error && (error.name === "NotAllowedError" || error.name === "SecurityError"))
    return "Camera and microphone access was denied. Allow it in your browser's site settings, or choose Text chat.";
  if (error && (error.name === "NotFoundError" || error.name === "OverconstrainedError"))
    return "No camera or microphone was found. Connect one, or choose Text chat.";
  if (error && error.name === "NotReadableError")
    return "Your camera or microphone is in use by another application. Close it, or choose Text chat.";
  return `Could not start the camera (${error && error.name ? error.name : "unknown error"}). You can choose Text chat.`;
}

function closeCall() {
  if (app.call) app.call.close();
  app.call = null;
  app.remoteConnected = false;
  el.remoteVideo.srcObject = null;
}

function openCall() {
  closeCall();
  const match = app.match;
  const call = new PeerCall({
    iceServers: match.iceServers,
    initiator: match.initiator,
    localStream: app.localStream,
    sendSignal: async (kind, data) => {
      const answer = await request("signal", { matchId: match.id, kind, data });
      if (!answer.ok) console.warn(`pairwire: signal ${kind} refused`, answer.error);
    },
    onRemoteStream: (stream) => {
      if (el.remoteVideo.srcObject !== stream) el.remoteVideo.srcObject = stream;
    },
    onConnectionState: (state) => {
      if (app.call !== call) return;
      app.remoteConnected = state === "connected";
      if (state === "failed") el.callMessage.textContent = "The video connection failed. You can skip or end the call.";
      else if (state === "disconnected") el.callMessage.textContent = "The video connection is interrupted…";
      else if (state === "connected") el.callMessage.textContent = "";
      render();
    },
  });
  app.call = call;
  match.connections = (match.connections || 0) + 1;
  call.start().catch((error) => console.warn("pairwire: could not make the offer", error));
}

// --------------------------------------------------------------------- server events

async function onMatchFound(data) {
  clearTimeout(resumeTimer);
  const resumed = app.match && app.match.id === data.matchId && app.state !== "ended";
  const mode = data.mode === "text" ? "text" : "video";
  if (!resumed) {
    closeCall();
    app.match = {
      id: data.matchId,
      mode,
      startedAt: null,
      partner: data.partner || {},
      matchedTopics: Array.isArray(data.matchedTopics) ? data.matchedTopics : [],
    };
    app.exhausted = null;
    app.ended = null;
    el.callMessage.textContent = "";
    resetReport();
    chat.reset(partnerName());
    setState("matched");
  }
  app.match.initiator = data.initiator === true;
  app.match.iceServers = Array.isArray(data.iceServers) ? data.iceServers : [];

  const joined = await request("match:join", { matchId: data.matchId });
  if (!joined.ok) {
    // Ended meanwhile: its match:ended follows (or has already been handled).
    console.warn("pairwire: match:join refused", joined.error);
    return;
  }
  if (mode !== "video" || !app.match || app.match.id !== data.matchId || app.state === "ended") return;
  if (!app.localStream) {
    // A match resumed after a page reload: the camera is not open yet.
    try {
      await ensureLocalMedia();
    } catch (error) {
      el.callMessage.textContent = mediaError(error);
    }
  }
  if (app.match && app.match.id === data.matchId && app.state !== "ended") openCall();
  render();
}

function onMatchStarted(data) {
  if (!app.match || app.match.id !== data.matchId || app.state === "ended") return;
  if (!app.match.startedAt) app.match.startedAt = Date.now();
  setState("in-call");
}

function onMatchEnded(data) {
  if (!app.match || app.match.id !== data.matchId || app.state === "ended") return;
  clearTimeout(resumeTimer);
  closeCall();
  const me = app.user && data.endedBy === app.user.id;
  const name = partnerName();
  if (me && data.status === "SKIPPED") {
    // Skip means: on to the next person.
    app.match = null;
    startSearch();
    return;
  }
  let title;
  if (me) title = "You ended the call";
  else if (data.endedBy && data.status === "SKIPPED") title = `${name} skipped to someone new`;
  else if (data.endedBy) title = `${name} left the call`;
  else if (data.status === "TIMEOUT") title = "The call did not start in time";
  else title = "The call ended";
  const detail = typeof data.duration === "number" ? `Duration ${mmss(data.duration)}` : "The call never started.";
  app.ended = { title, detail, status: data.status, endedBy: data.endedBy, duration: data.duration };
  if (chat.hasMessages) chat.notice(`${title}.`);
  stopLocalMedia();
  setState("ended");
}

function onSignal(data) {
  if (!app.match || data.matchId !== app.match.id || !app.call) return;
  if (app.call.isRenegotiation(data.kind)) openCall(); // the partner rebuilt its connection
  return app.call.handleSignal(data.kind, data.data);
}

function onChatMessage(data) {
  if (app.match && data.matchId === app.match.id) chat.received(data);
}

function onChatTyping(data) {
  if (app.match && data.matchId === app.match.id && app.state !== "ended") chat.partnerTyping(data.typing === true);
}

function onExhausted(data) {
  if (app.state !== "searching") return;
  app.exhausted = data.message || "No new matches available right now.";
  render();
}

// ---------------------------------------------------------------------------- socket

function connect() {
  if (socket) socket.disconnect();
  connectedOnce = false;
  socket = io({ auth: { token: app.token } });
  socket.on("connect", () => {
    showBanner("");
    if (connectedOnce) onReconnected();
    connectedOnce = true;
  });
  socket.on("connect_error", (error) => {
    const code = error && error.data && error.data.code;
    if (code === "unauthorized") {
      signOut("Your sign-in has expired. Please sign in again.");
      return;
    }
    showBanner("Cannot reach the server. Retrying…");
    if (!socket.active) setTimeout(() => socket && socket.connect(), 2000); // refused, not retried by itself
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return;
    showBanner(
      app.state === "matched" || app.state === "in-call"
        ? "Connection lost. Reconnecting… Your call continues if you are back within a few seconds."
        : "Connection lost. Reconnecting…",
    );
    if (reason === "io server disconnect") setTimeout(() => socket && socket.connect(), 1000);
  });
  socket.on("match:found", serial(onMatchFound));
  socket.on("match:started", serial(onMatchStarted));
  socket.on("match:ended", serial(onMatchEnded));
  socket.on("signal", serial(onSignal));
  socket.on("chat:message", serial(onChatMessage));
  socket.on("chat:typing", serial(onChatTyping));
  socket.on("queue:exhausted", serial(onExhausted));
}

function onReconnected() {
  if (app.state === "searching") {
    // The server took us out of the queue when the connection dropped.
    joinQueue();
  } else if (app.state === "matched" || app.state === "in-call") {
    // Within the grace period the server sends match:found again; otherwise the call is over.
    const matchId = app.match.id;
    clearTimeout(resumeTimer);
    resumeTimer = setTimeout(
      serial(() => {
        if (!app.match || app.match.id !== matchId || app.state === "ended") return;
        closeCall();
        stopLocalMedia();
        app.ended = { title: "The call ended while you were offline", detail: "Your connection was away too long." };
        setState("ended");
      }),
      RESUME_WAIT_MS,
    );
  }
}

// --------------------------------------------------------------------------- actions

async function startSearch() {
  el.lobbyMessage.textContent = "";
  el.callMessage.textContent = "";
  if (app.mode === "video") {
    try {
      await ensureLocalMedia();
    } catch (error) {
      app.match = null;
      el.lobbyMessage.textContent = mediaError(error);
      setState("idle");
      return;
    }
  } else {
    stopLocalMedia();
  }
  app.match = null;
  app.ended = null;
  app.exhausted = null;
  resetReport();
  app.searchingSince = Date.now();
  setState("searching");
  await joinQueue();
}

async function joinQueue() {
  const answer = await request("queue:join", { mode: app.mode });
  if (answer.ok) {
    app.sessionId = answer.sessionId || app.sessionId;
    return;
  }
  if (answer.error && answer.error.code === "conflict" && answer.matchId) return; // match:found has it
  if (app.state !== "searching") return;
  stopLocalMedia();
  el.lobbyMessage.textContent = `Could not start searching: ${answer.error ? answer.error.message : "unknown error"}`;
  setState("idle");
}

/** Everyone waiting was met in this session: a new session (REST) makes them new again. */
async function newSession() {
  let response, answer;
  try {
    response = await fetch("/api/session/start", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${app.token}` },
      body: JSON.stringify({ mode: app.mode }),
    });
    answer = await response.json();
  } catch {
    el.callMessage.textContent = "Could not start a new session: the server did not answer.";
    return;
  }
  if (!response.ok) {
    el.callMessage.textContent = `Could not start a new session: ${answer.error ? answer.error.message : response.status}`;
    return;
  }
  if (app.state !== "searching") return;
  app.sessionId = answer.sessionId;
  app.exhausted = null;
  el.callMessage.textContent = "";
  render();
  await joinQueue(); // waiting again replaces the earlier wait, now with the new session
}

async function cancelSearch() {
  const answer = await request("queue:leave", {});
  if (!answer.ok && answer.matchId) return; // matched just before: match:found has arrived
  if (app.state !== "searching") return;
  stopLocalMedia();
  setState("idle");
}

async function finish(action) {
  if (!app.match) return;
  const answer = await request(action, { matchId: app.match.id });
  if (!answer.ok && answer.error && answer.error.code !== "conflict") {
    el.callMessage.textContent = `Could not ${action === "match:skip" ? "skip" : "end"} the call: ${answer.error.message}`;
  }
}

function toggleMute() {
  if (!app.localStream) return;
  app.muted = !app.muted;
  for (const track of app.localStream.getAudioTracks()) track.enabled = !app.muted;
  render();
}

function toggleCamera() {
  if (!app.localStream) return;
  app.cameraOff = !app.cameraOff;
  for (const track of app.localStream.getVideoTracks()) track.enabled = !app.cameraOff;
  render();
}

async function signIn(event) {
  event.preventDefault();
  const data = new FormData(el.signInForm);
  const displayName = String(data.get("displayName") || "").trim();
  if (!displayName) {
    el.signInStatus.textContent = "Please enter a display name.";
    $("display-name").focus();
    return;
  }
  const body = {
    displayName,
    topics: String(data.get("topics") || "").split(",").map((t) => t.trim()).filter(Boolean),
  };
  if (data.get("seniority")) body.seniority = data.get("seniority");
  el.signInStatus.textContent = "Signing in…";
  let response, answer;
  try {
    response = await fetch("/api/auth/guest", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    answer = await response.json();
  } catch {
    el.signInStatus.textContent = "Could not reach the server. Please try again.";
    return;
  }
  if (!response.ok) {
    el.signInStatus.textContent = `Could not sign in: ${answer.error ? answer.error.message : response.status}`;
    return;
  }
  storeToken(answer.token);
  app.token = answer.token;
  app.user = answer.user;
  el.signInStatus.textContent = "";
  connect();
  setState("idle");
}

async function restore() {
  // A token from earlier in this tab: check it is still good.
  let response;
  try {
    response = await fetch("/api/auth/me", { headers: { Authorization: `Bearer ${app.token}` } });
  } catch {
    el.signInStatus.textContent = "Could not reach the server. Please reload the page.";
    return;
  }
  if (!response.ok) {
    signOut(response.status === 401 ? "Your sign-in has expired. Please sign in again." : "");
    return;
  }
  app.user = (await response.json()).user;
  connect();
  setState("idle");
}

async function signOut(message = "") {
  if (socket && socket.connected) {
    if (app.match && (app.state === "matched" || app.state === "in-call")) await request("match:end", { matchId: app.match.id });
    else if (app.state === "searching") await request("queue:leave", {});
  }
  if (socket) socket.disconnect();
  socket = null;
  clearTimeout(resumeTimer);
  closeCall();
  stopLocalMedia();
  forgetToken();
  resetReport();
  Object.assign(app, { token: null, user: null, match: null, ended: null, sessionId: null, exhausted: null });
  showBanner("");
  el.signInStatus.textContent = message;
  setState("signed-out");
}

// ----------------------------------------------------------------------------- report

function resetReport() {
  app.report = null;
  el.reportStatus.textContent = "";
  if (el.flagDialog.open) el.flagDialog.close();
  el.flagReason.value = "";
  el.flagCategory.value = "";
}

function setReportStatus(text, problem = false) {
  el.reportStatus.textContent = text;
  el.reportStatus.classList.toggle("problem", problem);
  render();
}

/**
 * The Report button: the flag is saved at once (POST /api/flags, empty reason) and only then
 * does the form open, so the report exists even if the form is never sent. Pressed again
 * before a reason was given, it reopens the form for the flag already saved.
 */
async function report() {
  if (!app.match || !app.match.partner || !app.match.partner.id) return;
  const matchId = app.match.id;
  const existing = app.report && app.report.matchId === matchId ? app.report : null;
  if (existing) {
    if (existing.flag && !existing.submitted && !existing.busy) openReportForm();
    return;
  }
  const pending = { matchId, flag: null, busy: true, submitted: false };
  app.report = pending;
  setReportStatus("Saving your report…");
  const answer = await api(app.token, "POST", "/api/flags", { flaggedUserId: app.match.partner.id, matchId });
  if (app.report !== pending) return; // a new match or a sign-out meanwhile
  pending.busy = false;
  if (!answer.ok || !answer.data || !answer.data.flag) {
    app.report = null;
    const message = answer.error ? answer.error.message : "unexpected answer";
    setReportStatus(`Your report could not be saved: ${message}`, true);
    return;
  }
  pending.flag = answer.data.flag;
  setReportStatus("");
  openReportForm();
}

function reasonLength() {
  return el.flagReason.value.trim().length;
}

function updateCounter() {
  const n = reasonLength();
  el.flagCount.textContent = n >= MIN_REASON ? `${n} characters` : `${n} of at least ${MIN_REASON} characters`;
  el.flagCount.classList.toggle("enough", n >= MIN_REASON);
  if (n >= MIN_REASON) el.flagError.textContent = "";
}

function openReportForm() {
  const saved = app.report && app.report.flag;
  if (!saved) return;
  const at = new Date(saved.flaggedAt);
  const time = Number.isNaN(at.getTime()) ? "" : ` at ${at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })}`;
  el.flagTitle.textContent = `Report ${partnerName()}`;
  el.flagSaved.textContent =
    `Your report is already saved${time}. Tell us what happened so a moderator can act on it. ` +
    "If you close this without a reason, the report stays saved, without one.";
  el.flagForm.hidden = false;
  el.flagThanks.hidden = true;
  el.flagError.textContent = "";
  el.flagEnd.checked = true; // recommended: leave the call you are reporting
  el.flagSubmit.disabled = false;
  updateCounter();
  render();
  if (!el.flagDialog.open) el.flagDialog.showModal(); // modal: the page behind is inert
  el.flagReason.focus();
}

async function submitReport(event) {
  event.preventDefault();
  const current = app.report;
  if (!current || !current.flag || current.busy || current.submitted) return;
  const reason = el.flagReason.value.trim();
  if (reason.length < MIN_REASON) {
    el.flagError.textContent = `Please describe what happened in at least ${MIN_REASON} characters (${reason.length} so far).`;
    el.flagReason.focus();
    return;
  }
  const body = { reason };
  if (el.flagCategory.value) body.category = el.flagCategory.value;
  const endCall = !el.flagEndLine.hidden && el.flagEnd.checked;
  current.busy = true;
  el.flagSubmit.disabled = true;
  el.flagError.textContent = "";
  const answer = await api(app.token, "PATCH", `/api/flags/${encodeURIComponent(current.flag.id)}`, body);
  current.busy = false;
  el.flagSubmit.disabled = false;
  if (app.report !== current) return;
  if (!answer.ok) {
    const message = answer.error ? answer.error.message : "unexpected answer";
    el.flagError.textContent = `The reason was not sent: ${message}. Your report itself is saved.`;
    render();
    return;
  }
  current.flag = answer.data.flag;
  current.submitted = true;
  el.flagForm.hidden = true;
  el.flagThanks.hidden = false;
  setReportStatus(THANKS);
  $("flag-done").focus();
  const live = app.state === "matched" || app.state === "in-call";
  if (endCall && live && app.match && app.match.id === current.matchId) await finish("match:end");
}

/** Tab and Shift+Tab go round the open form instead of leaving it for the browser's own UI. */
function trapFocus(event) {
  if (event.key !== "Tab") return;
  const focusable = [...el.flagDialog.querySelectorAll("button, select, textarea, input, [tabindex]")].filter(
    (node) => !node.disabled && node.tabIndex >= 0 && node.offsetParent !== null,
  );
  if (!focusable.length) return;
  const first = focusable[0];
  const last = focusable[focusable.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}

function reportFormClosed() {
  const current = app.report;
  if (current && current.flag && !current.submitted) {
    setReportStatus("Your report is saved, without a reason. Press Report to add what happened.");
  }
  // Back to the Report button, or, when it is gone with the call, to the page's heading.
  if (!el.flag.hidden && !el.flag.disabled) el.flag.focus();
  else if (!el.callView.hidden) el.callTitle.focus();
}

// ------------------------------------------------------------------------------ wiring

el.signInForm.addEventListener("submit", signIn);
el.signOut.addEventListener("click", () => signOut());
el.startForm.addEventListener("submit", (event) => {
  event.preventDefault();
  app.mode = new FormData(el.startForm).get("mode") === "text" ? "text" : "video";
  startSearch();
});
el.cancel.addEventListener("click", cancelSearch);
el.newSession.addEventListener("click", newSession);
el.skip.addEventListener("click", () => finish("match:skip"));
el.end.addEventListener("click", () => finish("match:end"));
el.mute.addEventListener("click", toggleMute);
el.camera.addEventListener("click", toggleCamera);
el.again.addEventListener("click", startSearch);
el.changeMode.addEventListener("click", () => setState("idle"));
el.flag.addEventListener("click", report);
el.flagForm.addEventListener("submit", submitReport);
el.flagReason.addEventListener("input", updateCounter);
el.flagClose.addEventListener("click", () => el.flagDialog.close());
el.flagDone.addEventListener("click", () => el.flagDialog.close());
el.flagDialog.addEventListener("close", reportFormClosed); // also after Escape
el.flagDialog.addEventListener("keydown", trapFocus);

// A small, read-only view for tests and debugging.
window.pairwire = {
  get state() { return app.state; },
  get mode() { return app.match ? app.match.mode : app.mode; },
  get matchId() { return app.match ? app.match.id : null; },
  get initiator() { return app.match ? app.match.initiator === true : null; },
  get sessionId() { return app.sessionId; },
  get connections() { return app.match ? app.match.connections || 0 : 0; },
  get userId() { return app.user ? app.user.id : null; },
  get partner() { return app.match ? { ...app.match.partner } : null; },
  get ended() { return app.ended ? { ...app.ended } : null; },
  get connected() { return Boolean(socket && socket.connected); },
  get report() { return app.report ? { ...app.report, flag: app.report.flag ? { ...app.report.flag } : null } : null; },
  stats: async () => (app.call ? app.call.stats() : null),
};

if (app.token) restore();
else render();
