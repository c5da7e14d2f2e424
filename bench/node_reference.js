#!/usr/bin/env node
// The benchmark's reference: a Node.js Socket.IO server with Pairwire's auth-and-relay
// behaviour on the paths the benchmark drives, written the way one would in Node, with
// socket.io's default settings. It is what Pairwire is compared with, not a product.
//
// Same as Pairwire (docs/protocol.md):
//   - POST /api/auth/guest {displayName, topics?} -> 201 {token, user}: an HS256 JWT
//     (sub, role, name, iat, exp) signed with the shared secret (BENCH_SECRET);
//   - GET /healthz -> {"status": "ok"};
//   - Socket.IO at /socket.io: the token in `auth.token` is verified at connect (HS256,
//     sub/role/exp required); a bad one is refused with data {code: "unauthorized"};
//     every socket joins the room `user:<id>`, and events go to that room;
//   - `queue:join {mode, topics?}`: users of the same mode sharing their first topic are
//     paired (in memory); both get `match:found`, then the second one's ack carries matchId;
//   - `match:join {matchId}`: when both have joined, both get `match:started`;
//   - `signal {matchId, kind, data}`: validated (kind, data at most 64 KB), relayed to the
//     partner as `signal {matchId, from, kind, data}`, acknowledged `{ok: true}`;
//   - anything else is acknowledged `invalid`.
// What it leaves out: the database, sessions, timeouts, chat, moderation.
//
// Usage: node bench/node_reference.js --port 0 [--host 127.0.0.1]
// Prints "listening <port>" on stdout once it accepts connections.
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { Server } = require('socket.io');
const jwt = require('jsonwebtoken');

const args = parseArgs(process.argv.slice(2));
const HOST = args.host || '127.0.0.1';
const PORT = Number(args.port || 0);
const SECRET = process.env.BENCH_SECRET;
if (!SECRET || SECRET.length < 32) {
  console.error('node_reference: BENCH_SECRET (at least 32 characters) is required');
  process.exit(2);
}
if (HOST !== '127.0.0.1' && HOST !== 'localhost' && HOST !== '::1') {
  console.error('node_reference: listens on loopback only');
  process.exit(2);
}
const TOKEN_TTL_S = 24 * 3600;
const MAX_SIGNAL_BYTES = 64 * 1024;
const SIGNAL_KINDS = new Set(['offer', 'answer', 'candidate']);
const MODES = new Set(['video', 'text']);

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) out[argv[i].slice(2)] = argv[i + 1], i++;
  }
  return out;
}

function error(code, message, extra) {
  return { ok: false, error: { code, message }, ...(extra || {}) };
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

// ---------------------------------------------------------------- HTTP: sign-in, health

const users = new Map(); // id -> {id, displayName, topics}

function normaliseTopics(topics) {
  if (topics === undefined) return [];
  if (!Array.isArray(topics)) return null;
  const seen = [];
  for (const t of topics) {
    if (typeof t !== 'string') return null;
    const v = t.trim().toLowerCase();
    if (v.length === 0 || v.length > 40) return null;
    if (!seen.includes(v)) seen.push(v);
  }
  return seen.length > 10 ? null : seen;
}

function handleHttp(req, res) {
  if (req.method === 'GET' && req.url === '/healthz') return sendJson(res, 200, { status: 'ok' });
  if (req.url === '/api/auth/guest') {
    if (req.method !== 'POST') return sendJson(res, 405, { error: { code: 'invalid', message: 'method not allowed' } });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 65536) req.destroy();
    });
    req.on('end', () => {
      let parsed;
      try {
        parsed = JSON.parse(body);
      } catch {
        return sendJson(res, 400, { error: { code: 'invalid', message: 'the body is not JSON' } });
      }
      const name = typeof parsed.displayName === 'string' ? parsed.displayName.trim() : '';
      const topics = normaliseTopics(parsed.topics);
      if (!name || name.length > 50 || topics === null) {
        return sendJson(res, 400, { error: { code: 'invalid', message: 'displayName and topics' } });
      }
      const user = { id: crypto.randomUUID(), displayName: name, topics };
      users.set(user.id, user);
      const now = Math.floor(Date.now() / 1000);
      const token = jwt.sign(
        { sub: user.id, role: 'user', name, iat: now, exp: now + TOKEN_TTL_S },
        SECRET,
        { algorithm: 'HS256', noTimestamp: true },
      );
      sendJson(res, 201, { token, user: { id: user.id, displayName: name, role: 'user', topics, isGuest: true } });
    });
    return undefined;
  }
  return sendJson(res, 404, { error: { code: 'not_found', message: 'no such route' } });
}

const httpServer = http.createServer(handleHttp);
const io = new Server(httpServer, { path: '/socket.io', maxHttpBufferSize: 1_000_000 + 64 * 1024 });

// ------------------------------------------------------------------ Socket.IO: auth

io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  let claims;
  try {
    if (typeof token !== 'string' || !token) throw new Error('a bearer token is required');
    claims = jwt.verify(token, SECRET, { algorithms: ['HS256'] });
    for (const claim of ['sub', 'exp', 'role']) {
      if (claims[claim] === undefined) throw new Error(`the token has no ${claim} claim`);
    }
    if (!['user', 'moderator', 'admin'].includes(claims.role)) throw new Error('unknown role');
    if (typeof claims.sub !== 'string' || !claims.sub || claims.sub.length > 200) throw new Error('bad subject');
  } catch (exc) {
    const err = new Error(exc.message);
    err.data = { code: 'unauthorized', message: exc.message };
    return next(err);
  }
  socket.data.userId = claims.sub;
  socket.data.name = typeof claims.name === 'string' ? claims.name : null;
  return next();
});

// ---------------------------------------------------------- queue, matches, relay

const waiting = new Map(); // `${mode}|${topic}` -> {userId, name, since}
const waitingKeyOf = new Map(); // userId -> key
const matches = new Map(); // matchId -> {users: [a, b], names, joined: Set, status, topics}
const openMatchOf = new Map(); // userId -> matchId

const room = (userId) => `user:${userId}`;

function leaveQueue(userId) {
  const key = waitingKeyOf.get(userId);
  if (key !== undefined) {
    waitingKeyOf.delete(userId);
    if (waiting.get(key) && waiting.get(key).userId === userId) waiting.delete(key);
  }
}

function queueJoin(socket, data) {
  const userId = socket.data.userId;
  if (!MODES.has(data.mode)) return error('invalid', 'mode must be video or text');
  const topics = data.topics === undefined ? (users.get(userId) || { topics: [] }).topics : normaliseTopics(data.topics);
  if (topics === null) return error('invalid', 'topics must be a list of strings');
  const open = openMatchOf.get(userId);
  if (open !== undefined) return error('conflict', `you are in match ${open}`, { matchId: open });
  leaveQueue(userId);
  const key = `${data.mode}|${topics[0] || ''}`;
  const other = waiting.get(key);
  if (other === undefined || other.userId === userId) {
    waiting.set(key, { userId, name: socket.data.name });
    waitingKeyOf.set(userId, key);
    return { ok: true, sessionId: userId, queuePosition: 1, previouslyMatchedCount: 0 };
  }
  waiting.delete(key);
  waitingKeyOf.delete(other.userId);
  const matchId = crypto.randomUUID();
  const match = {
    users: [other.userId, userId],
    names: [other.name, socket.data.name],
    joined: new Set(),
    status: 'PENDING',
    topics: topics.slice(0, 1),
    mode: data.mode,
    roomId: crypto.randomUUID(),
  };
  matches.set(matchId, match);
  openMatchOf.set(other.userId, matchId);
  openMatchOf.set(userId, matchId);
  for (let i = 0; i < 2; i++) {
    io.to(room(match.users[i])).emit('match:found', {
      matchId,
      roomId: match.roomId,
      mode: match.mode,
      initiator: i === 0,
      partner: { id: match.users[1 - i], displayName: match.names[1 - i] },
      matchedTopics: match.topics,
      iceServers: [],
      media: 'direct',
      startedAt: null,
    });
  }
  return { ok: true, sessionId: userId, queuePosition: 0, previouslyMatchedCount: 0, matchId };
}

function openMatch(userId, matchId) {
  if (typeof matchId !== 'string' || matchId.length < 1 || matchId.length > 64) {
    return [null, error('invalid', 'matchId must be a string of 1 to 64 characters')];
  }
  const match = matches.get(matchId);
  if (match === undefined || !match.users.includes(userId)) return [null, error('not_found', `no match ${matchId}`)];
  if (match.status !== 'PENDING' && match.status !== 'ACTIVE') {
    return [null, error('conflict', `match ${matchId} has ended`, { matchId })];
  }
  return [match, null];
}

function matchJoin(socket, data) {
  const userId = socket.data.userId;
  const [match, refusal] = openMatch(userId, data.matchId);
  if (refusal) return refusal;
  match.joined.add(userId);
  if (match.status === 'PENDING' && match.joined.size === 2) {
    match.status = 'ACTIVE';
    const startedAt = new Date().toISOString();
    for (const u of match.users) io.to(room(u)).emit('match:started', { matchId: data.matchId, startedAt });
  }
  return { ok: true };
}

function signal(socket, data) {
  const userId = socket.data.userId;
  if (!SIGNAL_KINDS.has(data.kind)) return error('invalid', 'kind must be offer, answer or candidate');
  const [match, refusal] = openMatch(userId, data.matchId);
  if (refusal) return refusal;
  if (Buffer.byteLength(JSON.stringify(data.data === undefined ? null : data.data)) > MAX_SIGNAL_BYTES) {
    return error('too_large', `signal data is at most ${MAX_SIGNAL_BYTES} bytes`);
  }
  const partner = match.users[0] === userId ? match.users[1] : match.users[0];
  io.to(room(partner)).emit('signal', { matchId: data.matchId, from: userId, kind: data.kind, data: data.data });
  return { ok: true };
}

const HANDLERS = { 'queue:join': queueJoin, 'match:join': matchJoin, signal };

io.on('connection', (socket) => {
  const userId = socket.data.userId;
  socket.join(room(userId));
  socket.onAny((event, ...rest) => {
    const ack = typeof rest[rest.length - 1] === 'function' ? rest.pop() : null;
    let data = rest[0];
    let answer;
    const handler = Object.prototype.hasOwnProperty.call(HANDLERS, event) ? HANDLERS[event] : null;
    if (handler === null) {
      answer = error('invalid', `unknown event '${event}'`);
    } else if (data !== undefined && data !== null && (typeof data !== 'object' || Array.isArray(data))) {
      answer = error('invalid', `the payload of ${event} must be an object`);
    } else {
      if (data === undefined || data === null) data = {};
      try {
        answer = handler(socket, data);
      } catch (exc) {
        console.error('node_reference: event failed', event, exc);
        answer = error('unavailable', 'the server could not do that now');
      }
    }
    if (ack) ack(answer);
  });
  socket.on('disconnect', () => {
    // The last socket of a user gone: leave the queue (no grace period here).
    if (io.sockets.adapter.rooms.get(room(userId)) === undefined) leaveQueue(userId);
  });
});

httpServer.listen(PORT, HOST, () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});

function shutdown() {
  io.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
