#!/usr/bin/env node
// Request/reply and stream benchmarks, run by `npm run bench` after its table (or `node bench/replies.mjs [--reps N]
// [--quick] [--only requests,streams]` after a build). Every measurement: a fresh server process, responder process
// and requester process on 127.0.0.1 (four one-way legs per request for every kind), repetitions interleaved, medians.
//   ws        raw ws clients exchanging sock-client's request and reply frames by hand: the relayed floor
//   sock      client.request() / handle() with a reply of data (echo of a 64-byte payload)
//   sock-fast client.request() / handle() returning nothing: a fast reply (type 9, a code without data)
//   socket.io emitWithAck relayed by a socket.io server to the responder's emitWithAck (socket.io 4.8)
// Streams: 16 MiB from a writer to a reader through a 1 KiB-limit and a 64 KiB-limit server (MB/s), and the peak memory
// of writer, server and reader while the reader sleeps 1 ms per piece.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadavg } from 'node:os'
import { Child, sleep, summarize } from './lib.mjs'

const here = (f) => fileURLToPath(new URL(f, import.meta.url))
const argv = process.argv.slice(2)
const value = (name) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined)
const quick = argv.includes('--quick')
const reps = Number(value('--reps') ?? (quick ? 2 : 5))
const only = value('--only')?.split(',') ?? ['requests', 'streams']
const scale = quick ? 0.1 : 1
const P = {
  latency: { n: Math.round(3000 * scale), warmup: Math.round(300 * scale) },
  throughput: { n: Math.round(10_000 * scale), warmup: Math.round(1000 * scale), inFlight: [1, 16, 256] },
  streams: { bytes: quick ? 2 << 20 : 16 << 20, slowBytes: quick ? 256 << 10 : 2 << 20, window: 64 },
}
const KINDS = [
  { id: 'ws', label: 'ws (raw, by hand)', server: 'sock' },
  { id: 'sock', label: 'sock-client request', server: 'sock' },
  { id: 'sock-fast', label: 'sock-client fast reply', server: 'sock', fast: true },
  { id: 'socket.io', label: 'socket.io emitWithAck (relayed)', server: 'socketio-rpc' },
]
const log = (s) => process.stderr.write(s)
const children = new Set()
function child(script, args, name, execArgv = []) {
  const c = new Child(script, args, { name, execArgv })
  children.add(c)
  return c
}
async function killAll() {
  await Promise.all([...children].map((c) => c.kill()))
  children.clear()
}
async function server(kind, execArgv) {
  const s = child(here('server.mjs'), [kind, 0], `${kind} server`, execArgv)
  const m = await s.next('listening', 15_000)
  return { child: s, base: `ws://127.0.0.1:${m.port}` }
}
const peer = (params, name, execArgv) => child(here('replies-peer.mjs'), [JSON.stringify(params)], name, execArgv)
const ask = async (c, type) => (c.send({ type }), c.next(type, 5000))
const kindOf = (k) => (k.id === 'socket.io' ? 'socketio' : k.id === 'sock-fast' ? 'sock' : k.id)

async function pairFor(k) {
  const s = await server(k.server)
  const b = peer({ role: 'responder', kind: kindOf(k), base: s.base }, `${k.id} responder`)
  await b.next('ready', 20_000)
  return { s, b }
}

const measure = {
  async latency(k) {
    const { s, b } = await pairFor(k)
    const a = peer({ role: 'latency', kind: kindOf(k), fast: k.fast, base: s.base, ...P.latency }, `${k.id} requester`)
    const r = await a.next('result', 300_000)
    b.send({ type: 'stop' })
    const done = await b.next('result', 10_000)
    // Correctness gates: every reply matched its request; the responder ran each once (the probes that found it add one or two).
    return { value: { p50: r.p50, p99: r.p99 }, ok: r.wrong === 0 && done.runs >= r.requests && done.runs <= r.requests + 2, detail: { ...r, runs: done.runs } }
  },
  async throughput(k, inFlight) {
    const { s, b } = await pairFor(k)
    const a = peer({ role: 'throughput', kind: kindOf(k), fast: k.fast, base: s.base, n: P.throughput.n, warmup: P.throughput.warmup, inFlight }, `${k.id} requester`)
    await a.next('warm', 120_000)
    const [s0, b0] = [await ask(s.child, 'cpu'), await ask(b, 'cpu')]
    a.send({ type: 'go' })
    const r = await a.next('result', 300_000)
    const [s1, b1] = [await ask(s.child, 'cpu'), await ask(b, 'cpu')]
    b.send({ type: 'stop' })
    const done = await b.next('result', 10_000)
    const n = P.throughput.n
    // Correctness gates: every reply matched its request, and the responder ran each request once (no duplicates).
    const extra = done.runs - r.requests
    return {
      value: { reqPerSec: r.reqPerSec, cpuA: r.cpuUs / n, cpuB: (b1.us - b0.us) / n, cpuS: (s1.us - s0.us) / n },
      ok: r.wrong === 0 && extra >= 0 && extra <= 2,
      detail: { ...r, runs: done.runs },
    }
  },
  async stream(limit, sleepMs) {
    // The slow reader's run measures retained memory: every process samples after a full GC.
    const gc = sleepMs ? ['--expose-gc'] : []
    const s = await server(limit === 1024 ? 'sock' : 'sock64k', gc)
    const bytes = sleepMs ? P.streams.slowBytes : P.streams.bytes
    const rd = peer({ role: 'reader', base: s.base, limit, sleepMs, window: P.streams.window }, 'reader', gc)
    await rd.next('ready', 20_000)
    const serverPeak = { heap: 0, rss: 0 }
    let sampling = true
    const poll = (async () => {
      while (sampling) {
        const m = await ask(s.child, 'mem').catch(() => undefined)
        if (m) (serverPeak.heap = Math.max(serverPeak.heap, m.heap)), (serverPeak.rss = Math.max(serverPeak.rss, m.rss))
        await sleep(50)
      }
    })()
    const base = await ask(s.child, 'mem')
    const wr = peer({ role: 'writer', base: s.base, limit, bytes }, 'writer', gc)
    const w = await wr.next('result', 600_000)
    const r = await rd.next('result', 60_000)
    sampling = false
    await poll
    return {
      value: { mbPerSec: w.mbPerSec, writer: w.peakHeap - w.baseHeap, reader: r.peakHeap - r.baseHeap, server: serverPeak.heap - base.heap, serverRss: serverPeak.rss - base.rss },
      ok: r.bytes === w.received && w.received >= bytes,
      detail: { w, r, serverPeak, base },
    }
  },
}

const results = {}
async function rep(key, fn) {
  const slot = (results[key] ??= { runs: [], errors: [] })
  try {
    slot.runs.push(await fn())
    log(slot.runs.at(-1).ok ? '.' : '!')
  } catch (e) {
    slot.errors.push(e.message)
    log('x')
  } finally {
    await killAll()
  }
}
const loadBefore = loadavg()[0]
const started = Date.now()
if (only.includes('requests')) {
  log('requests latency:')
  for (let i = 0; i < reps; i++) for (const k of KINDS.map((_, j) => KINDS[(j + i) % KINDS.length])) await rep(`latency ${k.id}`, () => measure.latency(k))
  log('\nrequests throughput:')
  for (const c of P.throughput.inFlight)
    for (let i = 0; i < reps; i++) for (const k of KINDS.map((_, j) => KINDS[(j + i) % KINDS.length])) await rep(`throughput ${c} ${k.id}`, () => measure.throughput(k, c))
  log('\n')
}
if (only.includes('streams')) {
  log('streams:')
  for (let i = 0; i < reps; i++) {
    await rep('stream 1024', () => measure.stream(1024, 0))
    await rep('stream 65536', () => measure.stream(65536, 0))
    await rep('stream slow', () => measure.stream(1024, 1))
  }
  log('\n')
}

const med = (key, metric) => summarize((results[key]?.runs ?? []).filter((r) => r.ok).map((r) => r.value[metric]))
const cell = (key, metric, f) => {
  const s = med(key, metric)
  const r = results[key]
  if (!r) return '—'
  const bad = r.runs.some((x) => !x.ok) ? ' ⚠' : ''
  const err = r.errors.length ? ` (${r.errors.length} failed)` : ''
  if (!s.n) return `failed${err}`
  return `${f(s.median)}${s.n > 1 ? ` (${f(s.min)}–${f(s.max)})` : ''}${bad}${err}`
}
const us = (v) => v.toFixed(0)
const us2 = (v) => v.toFixed(1)
const rate = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0))
const kib = (v) => `${(v / 1024).toFixed(0)} KiB`
const lines = []
const targets = []
if (only.includes('requests')) {
  lines.push(`| request / reply | ${KINDS.map((k) => k.label).join(' | ')} |`, `|---|${KINDS.map(() => '---').join('|')}|`)
  lines.push(`| round trip p50 (µs) | ${KINDS.map((k) => cell(`latency ${k.id}`, 'p50', us)).join(' | ')} |`)
  lines.push(`| round trip p99 (µs) | ${KINDS.map((k) => cell(`latency ${k.id}`, 'p99', us)).join(' | ')} |`)
  for (const c of P.throughput.inFlight) lines.push(`| throughput, ${c} in flight (req/s) | ${KINDS.map((k) => cell(`throughput ${c} ${k.id}`, 'reqPerSec', rate)).join(' | ')} |`)
  for (const [m, who] of [
    ['cpuA', 'requester'],
    ['cpuB', 'responder'],
    ['cpuS', 'server'],
  ])
    lines.push(`| CPU per request, ${who}, 16 in flight (µs) | ${KINDS.map((k) => cell(`throughput 16 ${k.id}`, m, us2)).join(' | ')} |`)
  const p = (id) => med(`latency ${id}`, 'p50').median
  const t = (c, id) => med(`throughput ${c} ${id}`, 'reqPerSec').median
  targets.push([`sock-client request p50 ≤ 1.1× the relayed raw-ws round trip`, p('sock') <= 1.1 * p('ws'), `${(p('sock') / p('ws')).toFixed(2)}×`])
  for (const c of P.throughput.inFlight)
    targets.push([`request throughput ≥ 1.5× relayed socket.io, ${c} in flight`, t(c, 'sock') >= 1.5 * t(c, 'socket.io'), `${(t(c, 'sock') / t(c, 'socket.io')).toFixed(2)}×`])
  for (const c of P.throughput.inFlight)
    targets.push([`fast replies ≥ 1.2× full replies, ${c} in flight`, t(c, 'sock-fast') >= 1.2 * t(c, 'sock'), `${(t(c, 'sock-fast') / t(c, 'sock')).toFixed(2)}×`])
}
if (only.includes('streams')) {
  lines.push('', '| stream | value |', '|---|---|')
  lines.push(`| ${P.streams.bytes >> 20} MiB writer → reader, 1 KiB-limit server (MB/s) | ${cell('stream 1024', 'mbPerSec', (v) => v.toFixed(1))} |`)
  lines.push(`| ${P.streams.bytes >> 20} MiB writer → reader, 64 KiB-limit server (MB/s) | ${cell('stream 65536', 'mbPerSec', (v) => v.toFixed(1))} |`)
  for (const [m, who] of [
    ['writer', 'writer'],
    ['server', 'server'],
    ['reader', 'reader'],
  ])
    lines.push(
      `| peak retained heap + external above start, ${who}, ${P.streams.slowBytes >> 10} KiB to a reader sleeping 1 ms per piece (window ${P.streams.window} pieces of ≤ 1 KiB) | ${cell('stream slow', m, kib)} |`,
    )
}
const seconds = ((Date.now() - started) / 1000).toFixed(0)
const note = `Medians of ${reps} repetitions (min–max) of fresh server, responder and requester processes on 127.0.0.1; ⚠ marks a run that failed a gate (a wrong reply, a duplicate execution, bytes lost). ${P.latency.n} sequential requests for latency (after ${P.latency.warmup}); ${P.throughput.n} per throughput run (after ${P.throughput.warmup}), 64-byte payloads. Load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after; ${seconds} s.`
const targetText = targets.length ? `\nTargets:\n${targets.map(([n, pass, v]) => `- ${pass ? '✅' : '❌'} ${n}: ${v}`).join('\n')}` : ''
console.log(`\n${lines.join('\n')}\n`)
console.log(note)
if (targetText) console.log(targetText)
if (argv.includes('--readme') && only.includes('requests') && only.includes('streams')) {
  // Both tables, as `npm run bench -- --readme` does for the main one: between the markers in README.md.
  const file = fileURLToPath(new URL('../README.md', import.meta.url))
  const readme = readFileSync(file, 'utf8')
  const [start, end] = ['<!-- replies:start -->', '<!-- replies:end -->']
  const i = readme.indexOf(start)
  const j = readme.indexOf(end)
  if (i < 0 || j < i) throw new Error(`README.md has no ${start} ... ${end} block`)
  const day = new Date().toISOString().slice(0, 10)
  writeFileSync(
    file,
    `${readme.slice(0, i + start.length)}\nMeasured on ${day}; reproduce with \`npm run bench -- --only requests,streams\`.\n\n${lines.join('\n')}\n\n${note}\n${targetText}\n${readme.slice(j)}`,
  )
  console.log('README.md: request and stream tables updated')
}
process.exit(Object.values(results).some((r) => r.errors.length) ? 1 : 0)
