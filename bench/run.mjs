#!/usr/bin/env node
// sock-client benchmarks: `npm run bench` (builds dist/ first), or `node bench/run.mjs [options]` after a build.
//
//   --quick            2 repetitions and a tenth of the messages (a smoke run; the figures are not for reading)
//   --reps N           repetitions of each measurement (default 5)
//   --only a,b         scenarios: throughput, unpaced, fanout, latency, cpu, memory, memory1, reconnect, bundle, redis,
//                      requests, streams (bench/replies.mjs: request/reply against socket.io's emitWithAck, and streams)
//   --clients a,b      clients: ws, ws-event, sock-message, sock-event, rws, partysocket, socket.io
//   --out FILE         the JSON results file (default bench/results/<date>.json, and bench/results/latest.json)
//   --no-write         write no JSON file
//   --readme           replace the table in README.md's Performance section with this run's
//   --profile          run client and server processes under `node --cpu-prof`; profiles go to bench/results/profiles/
//   --time-limit S     abort the whole run after S seconds (default 720), killing every child process
//
// Every measurement runs against a fresh server process on 127.0.0.1 (the embedded Sock server from dist/, or a
// socket.io server relaying the same payloads) and a fresh client process; repetitions interleave the clients.
// Every wait has a deadline and every child process is killed, so the run cannot hang.
import { spawnSync } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createServer } from 'node:net'
import { bundleSize, ENTRIES } from './bundle.mjs'
import { Child, deadline, sleep, summarize } from './lib.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const log = (s) => process.stderr.write(s)
const here = (f) => fileURLToPath(new URL(f, import.meta.url))

// ---------- options ----------
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const value = (name) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const quick = flag('--quick') || process.env.BENCH_QUICK === '1'
const reps = Number(value('--reps') ?? process.env.BENCH_REPS ?? (quick ? 2 : 5))
if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps must be a positive integer')
const scale = quick ? 0.1 : 1
const P = {
  throughput: { n: Math.round(50_000 * scale), warmup: Math.round(5_000 * scale), window: 1000 },
  // queue: sock-client's send queue sized for the burst (its default bounds it at 1,000 frames / 1 MiB).
  unpaced: { n: Math.round(50_000 * scale), warmup: Math.round(2_000 * scale), queue: { maxCount: 100_000, maxBytes: 64 << 20 } },
  fanout: { receivers: 50, n: Math.round(2_000 * scale), warmup: Math.round(200 * scale), window: 200 },
  latency: { n: Math.round(5_000 * scale), warmup: Math.round(500 * scale) },
  cpu: { n: Math.round(20_000 * scale), warmup: Math.round(2_000 * scale), batch: 100 },
  // warm: clients connected and closed before the baseline, so the JIT's one-off code and feedback for a client's
  // code paths is not charged to each of the `count` clients measured.
  memory: { count: quick ? 100 : 500, warm: quick ? 10 : 50 },
  // The strict baseline: after a single client opened and closed, so what V8 compiles for a client's paths is charged too.
  memory1: { count: quick ? 100 : 500, warm: 1 },
  reconnect: { policy: { minDelay: 250, maxDelay: 1000, factor: 2, minUptime: 0 }, restarts: quick ? 1 : 3, upFor: 200, downFor: 300, slack: 50 },
}

const CLIENTS = [
  { id: 'ws', label: 'ws (raw)', server: 'sock' },
  // The baseline of the event rows: raw ws writing and reading sock-client's event envelopes by hand.
  { id: 'ws-event', label: 'ws (raw), events by hand', server: 'sock' },
  { id: 'sock-message', label: 'sock-client message', server: 'sock' },
  { id: 'sock-event', label: 'sock-client event', server: 'sock' },
  { id: 'rws', label: 'reconnecting-websocket 4.4.0', server: 'sock' },
  { id: 'partysocket', label: 'partysocket', server: 'sock' },
  { id: 'socket.io', label: 'socket.io-client', server: 'socketio' },
]
const SOCK = ['sock-message', 'sock-event']
const EVENTS = ['ws-event', 'sock-event'] // idle memory, reconnect and bundle: not per kind of event
const OTHERS = ['rws', 'partysocket', 'socket.io']

// Scenarios and what they report. `same`: the sock-event row is the sock-message measurement (idle memory,
// reconnect and bundle do not depend on the kind of event sent).
const SCENARIOS = [
  { id: 'throughput', metrics: [{ key: 'msgsPerSec', label: 'throughput 1→1 (msg/s)', unit: 'rate', better: 'higher' }] },
  // Three times the repetitions: a repetition takes about a second, and one spreads ±15 % with how the relay process
  // and the client share two cores (medians of 5 moved 0.85-1.07x between runs of the same build; of 15, less).
  { id: 'unpaced', repsFactor: 3, metrics: [{ key: 'msgsPerSec', label: 'unpaced burst 1→1 via a plain relay (msg/s)', unit: 'rate', better: 'higher' }] },
  { id: 'fanout', metrics: [{ key: 'deliveriesPerSec', label: 'fan-out 1→50 (deliveries/s)', unit: 'rate', better: 'higher' }] },
  {
    id: 'latency',
    metrics: [
      { key: 'p50', label: 'round trip p50 (µs)', unit: 'us', better: 'lower' },
      { key: 'p99', label: 'round trip p99 (µs)', unit: 'us', better: 'lower' },
    ],
  },
  {
    id: 'cpu',
    metrics: [
      { key: 'sendUs', label: 'CPU per message sent (µs)', unit: 'us2', better: 'lower' },
      { key: 'recvUs', label: 'CPU per message received (µs)', unit: 'us2', better: 'lower' },
    ],
  },
  { id: 'memory', same: true, metrics: [{ key: 'bytesPerClient', label: 'memory per idle client (KiB)', unit: 'kib', better: 'lower' }] },
  { id: 'memory1', same: true, metrics: [{ key: 'bytesPerClient', label: 'memory per idle client, baseline after one client (KiB)', unit: 'kib', better: 'lower' }] },
  { id: 'reconnect', same: true, metrics: [{ key: 'ms', label: 'restarted server listen → reopen (ms)', unit: 'ms', better: 'lower' }] },
  { id: 'bundle', same: true, once: true, metrics: [{ key: 'gzip', label: 'browser bundle, min+gzip (KiB)', unit: 'size', better: 'lower' }] },
]

// `redis` is bench/redis-fanout.mjs (two nodes sharing a Redis against one node), run after the table.
const onlyList = value('--only')?.split(',')
const withRedis = !onlyList || onlyList.includes('redis')
const replyRows = ['requests', 'streams'].filter((s) => !onlyList || onlyList.includes(s))
const onlyScenarios = onlyList?.filter((s) => s !== 'redis' && !replyRows.includes(s)) ?? SCENARIOS.map((s) => s.id)
const onlyClients = value('--clients')?.split(',') ?? CLIENTS.map((c) => c.id)
for (const s of onlyScenarios) if (!SCENARIOS.some((x) => x.id === s)) throw new Error(`unknown scenario ${s}`)
for (const c of onlyClients) if (!CLIENTS.some((x) => x.id === c)) throw new Error(`unknown client ${c}`)
if (!existsSync(here('../dist/index.js')) || !existsSync(here('../dist/server.js'))) {
  throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)')
}

// ---------- processes ----------
const children = new Set()
function child(script, args, opts) {
  const c = new Child(script, args, opts)
  children.add(c)
  c.exit.then(() => children.delete(c))
  return c
}
async function killAll() {
  // Clients exit by themselves once they reported (and write their CPU profile then); servers are killed.
  await Promise.all([...children].filter((c) => c.isClient).map((c) => deadline(c.exit, 3000, 'exit').catch(() => {})))
  // Under --profile a server gets SIGTERM, on which it exits normally so V8 writes its profile.
  await Promise.all([...children].map((c) => c.kill(flag('--profile') && !c.isClient ? 'SIGTERM' : 'SIGKILL')))
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const c of children) c.proc.kill('SIGKILL')
    process.exit(130)
  })
}

const profileDir = here('results/profiles')
async function startServer(kind, port = 0) {
  const execArgv = flag('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${kind}-server-${Date.now()}.cpuprofile`] : []
  const s = child(here('server.mjs'), [kind, port], { name: `${kind} server`, execArgv })
  const m = await s.next('listening', 15_000)
  return { child: s, port: m.port, at: m.at, base: `ws://127.0.0.1:${m.port}` }
}

function startClient(role, client, base, params, execArgv = []) {
  if (flag('--profile')) execArgv = [...execArgv, '--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${client}-${role}-${Date.now()}.cpuprofile`]
  const c = child(here('client.mjs'), [JSON.stringify({ role, client, base, ...params })], { execArgv, name: `${client} ${role} client` })
  c.isClient = true
  return c
}

/** A free TCP port on loopback (for the reconnect scenario, whose server comes back on the same port). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

// ---------- one measurement of each scenario ----------
const measure = {
  async throughput(c) {
    const server = await startServer(c.server)
    const r = await startClient('throughput', c.id, server.base, P.throughput).next('result', 120_000)
    return { value: { msgsPerSec: r.msgsPerSec }, ok: r.lost === 0 && r.wrong === 0, detail: r }
  },
  async unpaced(c) {
    // Sock clients go through a plain relay that writes each frame separately; socket.io through its own server.
    const server = await startServer(c.server === 'sock' ? 'relay' : c.server)
    const r = await startClient('unpaced', c.id, server.base, P.unpaced).next('result', 120_000)
    return { value: { msgsPerSec: r.msgsPerSec }, ok: r.lost === 0 && r.wrong === 0 && r.failed === 0, detail: r }
  },
  async fanout(c) {
    const server = await startServer(c.server)
    const r = await startClient('fanout', c.id, server.base, P.fanout).next('result', 120_000)
    return { value: { deliveriesPerSec: r.deliveriesPerSec }, ok: r.lost === 0 && r.wrong === 0, detail: r }
  },
  async latency(c) {
    const server = await startServer(c.server)
    const r = await startClient('latency', c.id, server.base, P.latency).next('result', 120_000)
    return { value: { p50: r.p50, p99: r.p99 }, ok: true, detail: r }
  },
  async cpu(c) {
    const server = await startServer(c.server)
    const rx = startClient('cpu-recv', c.id, server.base, P.cpu)
    await rx.next('ready', 20_000)
    const tx = startClient('cpu-send', c.id, server.base, P.cpu)
    await tx.next('ready', 20_000)
    tx.send({ type: 'warmup' })
    await rx.next('warm', 60_000)
    tx.send({ type: 'go' })
    const r = await rx.next('result', 120_000)
    tx.send({ type: 'done' })
    const s = await tx.next('result', 20_000)
    return { value: { sendUs: s.usPerMsg, recvUs: r.usPerMsg }, ok: r.lost === 0 && r.wrong === 0, detail: { send: s, recv: r } }
  },
  async memory(c) {
    const server = await startServer(c.server)
    const r = await startClient('memory', c.id, server.base, P.memory, ['--expose-gc']).next('result', 120_000)
    return { value: { bytesPerClient: r.bytesPerClient }, ok: true, detail: r }
  },
  async memory1(c) {
    const server = await startServer(c.server)
    const r = await startClient('memory', c.id, server.base, P.memory1, ['--expose-gc']).next('result', 120_000)
    return { value: { bytesPerClient: r.bytesPerClient }, ok: true, detail: r }
  },
  async reconnect(c) {
    const { policy, upFor, downFor, slack, restarts } = P.reconnect
    const port = await freePort()
    let server = await startServer(c.server, port)
    const cl = startClient('reconnect', c.id, server.base, { policy })
    await cl.next('open', 20_000)
    const samples = []
    for (let i = 0; i < restarts; i++) {
      await sleep(upFor)
      await server.child.kill()
      await sleep(downFor)
      server = await startServer(c.server, port)
      const open = await cl.next('open', 20_000)
      const retry = open.lastRetry
      // The bound: the delay drawn for the retry that got through (else its whole jitter window), plus the handshake.
      const bound = retry ? (retry.delay ?? retry.cap) + slack : undefined
      const ms = open.at - server.at
      samples.push({ ms, attempt: retry?.attempt, delay: retry?.delay, cap: retry?.cap, bound, ok: bound !== undefined && ms <= bound })
    }
    cl.send({ type: 'stop' })
    return { value: { ms: summarize(samples.map((x) => x.ms)).median }, ok: samples.every((x) => x.ok), detail: { samples } }
  },
  async bundle(c) {
    const r = await bundleSize(c.id)
    return { value: { gzip: r.gzip }, ok: true, detail: r }
  },
}

// ---------- the run ----------
const started = Date.now()
const timeLimit = Number(value('--time-limit') ?? 720)
setTimeout(() => {
  log(`\nbench: aborted after the --time-limit of ${timeLimit} s\n`)
  for (const c of children) c.proc.kill('SIGKILL')
  process.exit(2)
}, timeLimit * 1000).unref()
const loadBefore = loadavg()[0]
if (loadBefore > cpus().length / 2) log(`note: load average ${loadBefore.toFixed(1)} on ${cpus().length} cores: other work shares the machine, wall-clock figures will be noisy\n`)
const results = {} // scenario -> client -> { runs: [{value, ok, detail}], error? }

for (const sc of SCENARIOS.filter((s) => onlyScenarios.includes(s.id))) {
  const clients = CLIENTS.filter((c) => onlyClients.includes(c.id) && !(sc.same && EVENTS.includes(c.id)) && (sc.id !== 'bundle' || c.id in ENTRIES))
  const n = sc.once ? 1 : reps * (sc.repsFactor ?? 1)
  results[sc.id] = {}
  for (const c of clients) results[sc.id][c.id] = { runs: [] }
  log(`${sc.id}:`)
  for (let rep = 0; rep < n; rep++) {
    // Each repetition starts with the next client, so no client always runs first (or right after another).
    for (const c of clients.map((_, i) => clients[(i + rep) % clients.length])) {
      const slot = results[sc.id][c.id]
      try {
        slot.runs.push(await measure[sc.id](c))
        log(slot.runs.at(-1).ok ? '.' : '!')
      } catch (e) {
        slot.errors = [...(slot.errors ?? []), e.message]
        log('x')
      } finally {
        await killAll()
      }
    }
  }
  log('\n')
}
const seconds = (Date.now() - started) / 1000

// ---------- statistics, targets, tables ----------
const row = (sc, id) => results[sc]?.[id] ?? (SCENARIOS.find((s) => s.id === sc)?.same && id === 'sock-event' ? results[sc]?.['sock-message'] : undefined)
const stat = (sc, key, id) => {
  const r = row(sc, id)
  return r ? summarize(r.runs.map((x) => x.value[key])) : undefined
}
const ratio = (sc, key, id) => stat(sc, key, id)?.median / stat(sc, key, 'ws')?.median
/** sock-event against raw ws sending the same envelopes by hand (`ws-event`): what the library costs over the bytes. */
const byHand = (sc, key) => stat(sc, key, 'sock-event')?.median / stat(sc, key, 'ws-event')?.median

const fmt = {
  rate: (v) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0)),
  us: (v) => v.toFixed(0),
  us2: (v) => v.toFixed(2),
  kib: (v) => (v / 1024).toFixed(1),
  ms: (v) => v.toFixed(0),
  size: (v) => (v / 1024).toFixed(1),
}

function cell(sc, m, id) {
  const r = row(sc.id, id)
  if (!r) return '—'
  const s = stat(sc.id, m.key, id)
  const bad = r.runs.some((x) => !x.ok) ? ' ⚠' : ''
  const err = r.errors?.length ? ` (${r.errors.length} failed)` : ''
  if (!s.n) return `failed${err}`
  if (sc.id === 'bundle' && id === 'ws') return '0 (native)'
  const f = fmt[m.unit]
  const spread = s.n > 1 ? ` (${f(s.min)}–${f(s.max)})` : ''
  const q = id === 'ws' || !Number.isFinite(ratio(sc.id, m.key, id)) || sc.id === 'bundle' ? '' : ` · ${ratio(sc.id, m.key, id).toFixed(2)}×`
  const h = id === 'sock-event' && !sc.same && Number.isFinite(byHand(sc.id, m.key)) ? ` · ${byHand(sc.id, m.key).toFixed(2)}× by hand` : ''
  return `${f(s.median)}${spread}${q}${h}${bad}${err}`
}

const shown = CLIENTS.filter((c) => onlyClients.includes(c.id))
function table() {
  const lines = [`| metric | ${shown.map((c) => c.label).join(' | ')} |`, `|---|${shown.map(() => '---').join('|')}|`]
  for (const sc of SCENARIOS) {
    if (!results[sc.id]) continue
    for (const m of sc.metrics) lines.push(`| ${m.label} | ${shown.map((c) => cell(sc, m, c.id)).join(' | ')} |`)
  }
  return lines.join('\n')
}

/** The issue's targets, for each sock-client row measured. */
function targets() {
  const out = []
  const check = (name, pass, text) => out.push({ name, pass, text })
  for (const id of SOCK.filter((x) => onlyClients.includes(x))) {
    const up = ratio('unpaced', 'msgsPerSec', id)
    const uh = byHand('unpaced', 'msgsPerSec')
    // Events against the same envelopes written by hand on raw ws when that ran; else against plain raw ws.
    if (id === 'sock-event' && Number.isFinite(uh))
      check(
        `sock-event unpaced burst through a plain relay ≥ 0.9× raw ws sending the same envelopes`,
        uh >= 0.9,
        `${uh.toFixed(2)}× ws-event${Number.isFinite(up) ? ` (${up.toFixed(2)}× plain ws)` : ''}`,
      )
    else if (Number.isFinite(up)) check(`${id} unpaced burst through a plain relay ≥ 0.9× ws`, up >= 0.9, `${up.toFixed(2)}× ws`)
    for (const [sc, key, what] of [
      ['throughput', 'msgsPerSec', 'throughput'],
      ['fanout', 'deliveriesPerSec', 'fan-out'],
    ]) {
      const r = ratio(sc, key, id)
      if (!Number.isFinite(r)) continue
      const me = stat(sc, key, id).median
      const behind = OTHERS.filter((o) => stat(sc, key, o)?.median >= me)
      check(
        `${id} ${what} ≥ 0.9× ws and ahead of the others`,
        r >= 0.9 && !behind.length,
        `${r.toFixed(2)}× ws${behind.length ? `; not ahead of ${behind.join(', ')}` : '; ahead of every other client'}`,
      )
    }
    const lp = ratio('latency', 'p50', id)
    if (Number.isFinite(lp)) check(`${id} latency p50 ≤ 1.1× ws`, lp <= 1.1, `${lp.toFixed(2)}× ws`)
    if (id === 'sock-message') {
      const mr = ratio('memory', 'bytesPerClient', id)
      if (Number.isFinite(mr)) check(`sock-client memory per idle client ≤ 1.25× ws`, mr <= 1.25, `${mr.toFixed(2)}× ws`)
      const m1 = ratio('memory1', 'bytesPerClient', id)
      if (Number.isFinite(m1)) check(`sock-client memory per idle client, baseline after one client, ≤ 1.25× ws`, m1 <= 1.25, `${m1.toFixed(2)}× ws`)
      const rc = results.reconnect?.[id]
      if (rc?.runs.length) {
        const all = rc.runs.flatMap((x) => x.detail.samples)
        const within = all.filter((x) => x.ok)
        const over = Math.max(...all.map((x) => x.ms - (x.delay ?? x.cap)))
        check(
          `sock-client reconnect within its drawn jitter delay (minDelay ${P.reconnect.policy.minDelay}, maxDelay ${P.reconnect.policy.maxDelay}, factor ${P.reconnect.policy.factor}) + ${P.reconnect.slack} ms`,
          within.length === all.length,
          `${within.length}/${all.length} restarts reopened within the delay of the retry that got through + ${P.reconnect.slack} ms (largest listen→reopen minus that delay: ${over.toFixed(1)} ms); every delay inside its window [0, min(max, min·factor^(n-1))]: ${all.every((x) => x.delay <= x.cap) ? 'yes' : 'no'}`,
        )
      }
    }
  }
  return out
}

const machine = {
  cpus: cpus().length,
  cpu: cpus()[0]?.model?.trim(),
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  loadAverage: { before: +loadBefore.toFixed(2), after: +loadavg()[0].toFixed(2) },
}
const date = new Date().toISOString()
const shownArgs = argv.filter((a) => a !== '--readme') // what reproduces the figures
const command = `npm run bench${shownArgs.length ? ` -- ${shownArgs.join(' ')}` : ''}`
const tgt = targets()
const targetLines = tgt.map((t) => `- ${t.pass ? '✅' : '❌'} ${t.name}: ${t.text}`).join('\n')
const notes = [
  `Medians of ${reps} repetitions (${results.unpaced ? `${reps * SCENARIOS.find((x) => x.id === 'unpaced').repsFactor} for the unpaced burst; ` : ''}min–max), each against a fresh server process on 127.0.0.1; \`· 0.97×\` is the ratio to raw \`ws\`; ⚠ marks a run that lost or reordered a message or missed its bound.`,
  `${P.throughput.n} messages of 64 B for throughput (after ${P.throughput.warmup} warm-up); ${P.unpaced.n} for the unpaced burst (sent in one synchronous loop, sender and receiver in one process, through a plain ws relay in another that writes each frame separately; sock-client's queue sized for the burst: ${P.unpaced.queue.maxCount} frames); ${P.fanout.n} messages to ${P.fanout.receivers} receivers for fan-out; ${P.latency.n} sequential ping-pongs through the server for latency; CPU over ${P.cpu.n} messages in separate sender and receiver processes; memory with ${P.memory.count} idle clients after GC (heap + external), after ${P.memory.warm} clients connected and closed (and, strict, after one); reconnect: server killed, back on the same port after ${P.reconnect.downFor} ms, every client retrying with min ${P.reconnect.policy.minDelay} ms, max ${P.reconnect.policy.maxDelay} ms, factor ${P.reconnect.policy.factor}.`,
]
const markdown = `${table()}\n\n${notes.join('\n')}\n\nTargets:\n${targetLines}\n`

console.log(`\n${markdown}`)
const machineLine = `${machine.cpus} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}; load average ${machine.loadAverage.before} before the run, ${machine.loadAverage.after} after`
console.log(`Machine: ${machineLine}. The run took ${seconds.toFixed(0)} s (${date}).`)

const json = { date, seconds, command, quick, reps, machine, params: P, results, stats: {}, targets: tgt }
for (const sc of SCENARIOS) {
  if (!results[sc.id]) continue
  json.stats[sc.id] = {}
  for (const c of shown) {
    const r = row(sc.id, c.id)
    if (!r) continue
    json.stats[sc.id][c.id] = Object.fromEntries(sc.metrics.map((m) => [m.key, { ...stat(sc.id, m.key, c.id), ratioToWs: ratio(sc.id, m.key, c.id) }]))
  }
}
if (!flag('--no-write')) {
  const dir = here('results')
  mkdirSync(dir, { recursive: true })
  const out = value('--out') ?? `${dir}/${date.replace(/[:.]/g, '-')}.json`
  writeFileSync(out, JSON.stringify(json, null, 2))
  writeFileSync(`${dir}/latest.json`, JSON.stringify(json, null, 2))
  console.log(`Results: ${out.replace(root, '')}`)
}

if (flag('--readme')) {
  const file = `${root}README.md`
  const readme = readFileSync(file, 'utf8')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  const i = readme.indexOf(start)
  const j = readme.indexOf(end)
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} ... ${end} block in its Performance section`)
  const head = `Measured on ${date.slice(0, 10)} on ${machineLine}; the run took ${seconds.toFixed(0)} s. Reproduce with \`${command}\`.`
  writeFileSync(file, `${readme.slice(0, i + start.length)}\n${head}\n\n${markdown}${readme.slice(j)}`)
  console.log('README.md: Performance table updated')
}

await killAll()
if (withRedis) {
  // Its own process and its own table; it needs redis-server on PATH.
  const r = spawnSync(process.execPath, [here('redis-fanout.mjs'), String(Math.round(2000 * scale)), String(reps)], { stdio: 'inherit', timeout: 300_000 })
  if (r.status !== 0) log(`bench/redis-fanout.mjs failed (${r.error?.message ?? `exit ${r.status}`})\n`)
}
if (replyRows.length) {
  // Its own processes and its own table (request/reply and streams).
  const pass = [...(quick ? ['--quick'] : []), ...(flag('--readme') ? ['--readme'] : [])]
  const r = spawnSync(process.execPath, [here('replies.mjs'), '--reps', String(reps), '--only', replyRows.join(','), ...pass], { stdio: 'inherit', timeout: 900_000 })
  if (r.status !== 0) log(`bench/replies.mjs failed (${r.error?.message ?? `exit ${r.status}`})\n`)
}
process.exit(Object.values(results).some((s) => Object.values(s).some((r) => r.errors?.length || !r.runs.length)) ? 1 : 0)
