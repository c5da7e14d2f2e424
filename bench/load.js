#!/usr/bin/env node
// The benchmark's load generator: the official Socket.IO client (websocket transport only)
// driving a server through the wire contract (docs/protocol.md). The same code drives
// Pairwire and the Node reference (bench/node_reference.js).
//
//   node bench/load.js relay --url http://127.0.0.1:PORT [--pid SERVER_PID] [--pairs 200] [--round-trips 40]
//        [--warmup 5] [--payload 1024] [--solo 50] [--timeout 120]
//     Signs in 2*pairs guests (POST /api/auth/guest), connects them, pairs them through
//     `queue:join` (a topic of their own per pair, so pairs are deterministic) and
//     `match:join`, then each pair ping-pongs `signal {matchId, kind: "candidate", data}`
//     (~payload bytes of data), every event with an acknowledgement: A sends, B echoes what it
//     receives, A sends the next once the echo is back. After `warmup` unmeasured round trips
//     a pair, every pair starts together and makes `round-trips` measured ones.
//     Reports relayed messages/s over the measured phase (it ends when every echo and every
//     acknowledgement is in) and the round-trip time (A's send to A's receipt of the echo).
//     With --pid SERVER_PID it also reports the server's CPU time per relayed message.
//     The pairing phase is reported too. The first `solo` pairs (at most a quarter) are formed
//     one at a time, for the time to match (the second user's queue:join sent, to match:found
//     at both) with nothing else going on; the rest 16 at a time, for queue and match
//     operations per second (each a round trip through the server and its store), the
//     server's CPU per operation, and the time to match under that load.
//
//   node bench/load.js idle --url http://127.0.0.1:PORT --pid SERVER_PID [--clients 1000]
//        [--warm 20] [--timeout 120]
//     Signs in and connects `warm` clients, reads the server's resident memory (VmRSS of
//     /proc/PID/status) once it is steady, connects `clients` more that then stay idle,
//     reads it again once steady, and reports (after - before) / clients in KB.
//
// Both modes take --no-deflate: the clients then do not offer websocket compression
// (permessage-deflate), which browsers always offer; a diagnostic, not the benchmark's setting.
//
// Prints progress on stderr and one JSON object on stdout. Every step is bounded: the whole
// run by --timeout (then it exits 3 with {"ok": false, ...}), each sign-in, connect and ack by 30 s.
// Talks to loopback addresses only.
'use strict';

const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const { io } = require('socket.io-client');

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const STEP_TIMEOUT_MS = 30_000; // one sign-in, connect, or acknowledgement

function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      // A flag followed by another option (or nothing) stands alone: `--no-deflate`.
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) {
        out[a.slice(2)] = true;
      } else {
        out[a.slice(2)] = argv[i + 1];
        i++;
      }
    } else {
      out._.push(a);
    }
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const mode = args._[0];
if (mode !== 'relay' && mode !== 'idle') {
  console.error('usage: load.js relay|idle --url http://127.0.0.1:PORT [options] (see the top of the file)');
  process.exit(2);
}
const url = new URL(args.url || '');
if (!LOOPBACK.has(url.hostname)) {
  console.error(`load.js: only loopback targets, not ${url.hostname}`);
  process.exit(2);
}
const base = url.origin;
const intArg = (name, dflt) => {
  const v = args[name] === undefined ? dflt : Number(args[name]);
  if (!Number.isInteger(v) || v < 0) {
    console.error(`load.js: --${name} must be a whole number`);
    process.exit(2);
  }
  return v;
};
const TIMEOUT_S = Number(args.timeout || 120);
const NO_DEFLATE = args['no-deflate'] !== undefined;
const tag = (args.tag || Math.random().toString(36).slice(2, 8)).toLowerCase();

const log = (msg) => process.stderr.write(`load.js ${mode}: ${msg}\n`);
const sockets = [];

function finish(result, code) {
  for (const s of sockets) s.disconnect();
  process.stdout.write(JSON.stringify(result) + '\n');
  // Let the close frames go out; never wait long.
  setTimeout(() => process.exit(code), 200);
}

const deadline = setTimeout(() => {
  finish({ ok: false, mode, error: `timed out after ${TIMEOUT_S} s` }, 3);
}, TIMEOUT_S * 1000);

function withTimeout(promise, what, ms = STEP_TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Run `work(i)` for i in [0, n) with at most `limit` at a time.
async function pool(n, limit, work) {
  let next = 0;
  const runners = [];
  for (let r = 0; r < Math.min(limit, n); r++) {
    runners.push((async () => {
      while (next < n) await work(next++);
    })());
  }
  await Promise.all(runners);
}

async function signIn(name, topics) {
  const res = await withTimeout(fetch(`${base}/api/auth/guest`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ displayName: name, topics }),
  }), 'sign-in');
  if (res.status !== 201) throw new Error(`sign-in answered ${res.status}: ${await res.text()}`);
  return res.json();
}

function connect(token) {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = io(base, {
      path: '/socket.io',
      transports: ['websocket'],
      auth: { token },
      reconnection: false,
      timeout: STEP_TIMEOUT_MS,
      // The client offers permessage-deflate, as browsers do, unless --no-deflate (diagnostic).
      ...(NO_DEFLATE ? { perMessageDeflate: false } : {}),
    });
    sockets.push(socket);
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(new Error(`connect refused: ${err.message}`)));
  }), 'connect');
}

function call(socket, event, payload) {
  return withTimeout(new Promise((resolve) => socket.emit(event, payload, resolve)), event);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// utime + stime of a process, in ms (from /proc/PID/stat; clock ticks are 100 a second on Linux).
function readCpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function readRssKb(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The RSS once two readings 500 ms apart differ by less than 0.5% (at most `maxMs` of waiting).
async function steadyRss(pid, maxMs = 10_000) {
  let last = readRssKb(pid);
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    await sleep(500);
    const now = readRssKb(pid);
    if (Math.abs(now - last) <= last * 0.005) return now;
    last = now;
  }
  return last;
}

// ------------------------------------------------------------------------------- relay

async function relay() {
  const pairs = intArg('pairs', 200);
  const roundTrips = intArg('round-trips', 40);
  const warmup = intArg('warmup', 5);
  const payloadBytes = intArg('payload', 1024);
  const pid = intArg('pid', 0);
  if (pid) readCpuMs(pid);
  if (pairs < 1 || roundTrips < 1) throw new Error('--pairs and --round-trips must be at least 1');

  // An ICE candidate-like object of about payloadBytes once serialised.
  const filler = 'x'.repeat(Math.max(0, payloadBytes - 120));
  const makeData = (seq) => ({
    candidate: `candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0 ufrag bnch ${filler}`,
    sdpMid: '0',
    sdpMLineIndex: 0,
    seq,
  });

  log(`signing in ${2 * pairs} guests at ${base}`);
  const people = new Array(2 * pairs);
  await pool(2 * pairs, 16, async (i) => {
    const topic = `b${tag}p${i >> 1}`;
    people[i] = await signIn(`bench ${i}`, [topic]);
    people[i].topic = topic;
  });
  log('connecting');
  const socks = new Array(2 * pairs);
  await pool(2 * pairs, 32, async (i) => {
    socks[i] = await connect(people[i].token);
  });

  // The pairing phase is measured too: queue and match operations through the whole server.
  // The first `solo` pairs are formed one at a time (time to match with nothing else going on),
  // the rest 16 at a time (operations/s, and time to match under that load).
  const solo = Math.min(intArg('solo', 50), Math.floor(pairs / 4));
  const matchIds = new Array(pairs);
  const soloMatchMs = [];
  const matchMs = [];
  const pairOne = (times) => async (p) => {
    const [a, b] = [socks[2 * p], socks[2 * p + 1]];
    const found = [a, b].map((s) => withTimeout(new Promise((resolve) => s.once('match:found', resolve)), 'match:found'));
    const first = await call(a, 'queue:join', { mode: 'video', topics: [people[2 * p].topic] });
    if (!first.ok) throw new Error(`queue:join refused: ${JSON.stringify(first)}`);
    const sent = performance.now();
    const second = await call(b, 'queue:join', { mode: 'video', topics: [people[2 * p + 1].topic] });
    if (!second.ok || !second.matchId) throw new Error(`queue:join did not match: ${JSON.stringify(second)}`);
    const [fa, fb] = await Promise.all(found);
    // Time to match: the second user's queue:join sent, to match:found at both users.
    times.push(performance.now() - sent);
    if (fa.matchId !== second.matchId || fb.matchId !== second.matchId) throw new Error('match:found for another match');
    for (const s of [a, b]) {
      const ack = await call(s, 'match:join', { matchId: second.matchId });
      if (!ack.ok) throw new Error(`match:join refused: ${JSON.stringify(ack)}`);
    }
    matchIds[p] = second.matchId;
  };
  log(`pairing ${solo} pairs one at a time through queue:join and match:join`);
  for (let p = 0; p < solo; p++) await pairOne(soloMatchMs)(p);
  log(`pairing ${pairs - solo} pairs 16 at a time`);
  const pairCpu0 = pid ? readCpuMs(pid) : 0;
  const pairT0 = performance.now();
  await pool(pairs - solo, 16, (i) => pairOne(matchMs)(solo + i));
  const pairSeconds = (performance.now() - pairT0) / 1000;
  const pairCpuMs = pid ? readCpuMs(pid) - pairCpu0 : null;
  matchMs.sort((x, y) => x - y);
  soloMatchMs.sort((x, y) => x - y);

  let ackFailures = 0;
  let firstFailure = null;
  const onAck = (ack) => {
    if (!ack || ack.ok !== true) {
      ackFailures++;
      if (firstFailure === null) firstFailure = ack;
    }
    acksPending--;
    maybeDone();
  };
  let acksPending = 0;
  let pairsRunning = 0;
  let phaseDone = null;
  const maybeDone = () => {
    if (pairsRunning === 0 && acksPending === 0 && phaseDone) phaseDone();
  };

  // One phase: every pair makes `count` round trips; resolves when every echo and ack is in.
  const rtts = [];
  function phase(count, measure) {
    return new Promise((resolve) => {
      phaseDone = resolve;
      pairsRunning = pairs;
      for (let p = 0; p < pairs; p++) {
        const [a, b] = [socks[2 * p], socks[2 * p + 1]];
        const matchId = matchIds[p];
        let done = 0;
        let sentAt = 0;
        a.removeAllListeners('signal');
        b.removeAllListeners('signal');
        const send = () => {
          acksPending++;
          sentAt = performance.now();
          a.emit('signal', { matchId, kind: 'candidate', data: makeData(done) }, onAck);
        };
        b.on('signal', (msg) => {
          acksPending++;
          b.emit('signal', { matchId, kind: 'candidate', data: msg.data }, onAck);
        });
        a.on('signal', () => {
          if (measure) rtts.push(performance.now() - sentAt);
          done++;
          if (done < count) {
            send();
          } else {
            pairsRunning--;
            maybeDone();
          }
        });
        send();
      }
    });
  }

  if (warmup > 0) {
    log(`warm-up: ${warmup} round trips a pair`);
    await phase(warmup, false);
  }
  log(`measuring: ${pairs} pairs x ${roundTrips} round trips`);
  const cpu0 = pid ? readCpuMs(pid) : 0;
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  await phase(roundTrips, true);
  const seconds = (performance.now() - t0) / 1000;
  const serverCpuMs = pid ? readCpuMs(pid) - cpu0 : null;
  const own = process.cpuUsage(own0);
  const messages = 2 * pairs * roundTrips;
  rtts.sort((x, y) => x - y);
  const round = (v, d = 2) => Number(v.toFixed(d));
  return {
    ok: ackFailures === 0,
    mode,
    url: base,
    pairs,
    roundTrips,
    payloadBytes: Buffer.byteLength(JSON.stringify(makeData(0))),
    messages,
    seconds: round(seconds, 3),
    msgsPerSec: round(messages / seconds, 1),
    rttP50Ms: round(percentile(rtts, 50)),
    rttP99Ms: round(percentile(rtts, 99)),
    rttMaxMs: round(rtts[rtts.length - 1]),
    // CPU time per relayed message (its ack included): far steadier than msgs/s on a busy machine.
    serverCpuUsPerMsg: serverCpuMs === null ? null : round((serverCpuMs * 1000) / messages, 1),
    serverCpuPercent: serverCpuMs === null ? null : round(serverCpuMs / 10 / seconds, 0),
    loadCpuPercent: round((own.user + own.system) / 10000 / seconds, 0),
    // The pairing phase: 2 queue:join and 2 match:join a pair; one pair at a time, then 16 at a time.
    soloPairs: solo,
    soloMatchP50Ms: round(percentile(soloMatchMs, 50)),
    soloMatchP99Ms: round(percentile(soloMatchMs, 99)),
    queueOpsPerSec: round((4 * (pairs - solo)) / pairSeconds, 1),
    serverCpuUsPerQueueOp: pairCpuMs === null ? null : round((pairCpuMs * 1000) / (4 * (pairs - solo)), 1),
    matchP50Ms: round(percentile(matchMs, 50)),
    matchP99Ms: round(percentile(matchMs, 99)),
    ackFailures,
    firstFailure,
  };
}

// -------------------------------------------------------------------------------- idle

async function idle() {
  const clients = intArg('clients', 1000);
  const warm = intArg('warm', 20);
  const pid = intArg('pid', 0);
  if (!pid || clients < 1) throw new Error('--pid and --clients (at least 1) are required');
  readRssKb(pid);

  log(`signing in ${warm + clients} guests at ${base}`);
  const people = new Array(warm + clients);
  await pool(warm + clients, 16, async (i) => {
    people[i] = await signIn(`idle ${i}`, [`i${tag}`]);
  });
  log(`connecting ${warm} warm-up clients`);
  await pool(warm, 8, async (i) => connect(people[i].token));
  await sleep(1000);
  const before = await steadyRss(pid);
  log(`RSS before: ${before} kB; connecting ${clients} idle clients`);
  const connectMs = [];
  await pool(clients, 32, async (i) => {
    const t = performance.now();
    await connect(people[warm + i].token);
    connectMs.push(performance.now() - t);
  });
  connectMs.sort((x, y) => x - y);
  await sleep(1000);
  const after = await steadyRss(pid);
  const connected = sockets.filter((s) => s.connected).length;
  log(`RSS after: ${after} kB with ${connected} connected`);
  return {
    ok: connected === warm + clients,
    mode,
    url: base,
    clients,
    connected,
    rssBeforeKb: before,
    rssAfterKb: after,
    rssPerClientKb: Number(((after - before) / clients).toFixed(1)),
    connectP50Ms: Number(percentile(connectMs, 50).toFixed(1)),
    connectMaxMs: Number(connectMs[connectMs.length - 1].toFixed(1)),
  };
}

(mode === 'relay' ? relay() : idle()).then(
  (result) => {
    clearTimeout(deadline);
    finish(result, result.ok ? 0 : 1);
  },
  (err) => {
    clearTimeout(deadline);
    finish({ ok: false, mode, error: String(err && err.message ? err.message : err) }, 1);
  },
);
