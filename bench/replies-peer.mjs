// One side of a request/reply or stream measurement, in its own process: `node bench/replies-peer.mjs '<json>'` with
// { role, kind, base, ...params }. roles: responder, requester (latency / throughput), reader, writer. kinds: sock
// (sock-client request/handle; `fast` for a reply without data), socketio (emitWithAck relayed by the server), ws (raw ws
// exchanging sock-client's frames by hand: the floor). Talks to bench/replies.mjs over IPC; every wait has a deadline.
import WebSocket from 'ws'
import { io } from 'socket.io-client'
import { SockClient } from '../dist/index.js'
import { childSetup, deadline, percentile, sleep } from './lib.mjs'

const { report, next } = childSetup()
const o = JSON.parse(process.argv[2])
const CH = 'bench'
const payload = (i) => ({ t: i.toString(36).padStart(8, '0') + 'x'.repeat(48) }) // 64 bytes of JSON-ish payload

/** Peak heap + external and RSS, sampled every 50 ms (streams' memory rows); after a GC under --expose-gc, so retained. */
function sampler() {
  const peak = { heap: 0, rss: 0 }
  const take = () => {
    globalThis.gc?.()
    const m = process.memoryUsage()
    peak.heap = Math.max(peak.heap, m.heapUsed + m.external)
    peak.rss = Math.max(peak.rss, m.rss)
  }
  take()
  const base = { ...peak }
  const t = setInterval(take, 50)
  return { stop: () => (clearInterval(t), take(), { peakHeap: peak.heap, peakRss: peak.rss, baseHeap: base.heap, baseRss: base.rss }) }
}

async function sockClient(id, extra = {}) {
  const c = new SockClient({ id, WebSocket, maxPendingRequests: 100_000, queue: { maxCount: 100_000, maxBytes: 256 << 20 }, maxFrameBytes: o.limit ?? 1024, ...extra })
  c.setup(o.base)
  return c
}

// ---------- the three kinds, behind { request(data) -> Promise<reply> } and a responder ----------

const kinds = {
  sock: {
    async responder() {
      const c = await sockClient('responder')
      let runs = 0
      c.handle(CH, 'echo', (d) => (runs++, d))
      c.handle(CH, 'ack', () => void runs++)
      await c.join(CH)
      return { runs: () => runs }
    },
    async requester() {
      const c = await sockClient('requester')
      await c.join(CH)
      await deadline(
        (async () => {
          for (;;) {
            try {
              return await c.request(CH, 'ack', undefined, { timeout: 500 })
            } catch {
              await sleep(50)
            }
          }
        })(),
        10_000,
        'the responder',
      )
      const event = o.fast ? 'ack' : 'echo'
      return { request: (d) => c.request(CH, event, o.fast ? undefined : d, { timeout: 10_000 }), check: (d, r) => (o.fast ? r === undefined : r?.t === d.t) }
    },
  },
  socketio: {
    async responder() {
      const s = io(o.base, { transports: ['websocket'], auth: { role: 'responder' } })
      let runs = 0
      s.on('echo', (d, cb) => (runs++, cb(d)))
      await deadline(new Promise((r) => s.once('connect', r)), 10_000, 'socket.io connect')
      return { runs: () => runs }
    },
    async requester() {
      const s = io(o.base, { transports: ['websocket'], auth: { role: 'requester' } })
      await deadline(new Promise((r) => s.once('connect', r)), 10_000, 'socket.io connect')
      await deadline(
        (async () => {
          for (;;) {
            try {
              return await s.timeout(500).emitWithAck('echo', { t: 'probe' })
            } catch {
              await sleep(50)
            }
          }
        })(),
        10_000,
        'the responder',
      )
      return { request: (d) => s.timeout(10_000).emitWithAck('echo', d), check: (d, r) => r?.t === d.t }
    },
  },
  ws: {
    // sock-client's frames by hand: a type-7 request with q, a $r reply; one JSON.parse of each frame and envelope.
    async responder() {
      const ws = await open(`${o.base}/channel/${CH}?id=responder`)
      let runs = 0
      let n = 0
      ws.on('message', (raw) => {
        const f = JSON.parse(raw.toString())
        if (f.type !== 7) return
        const env = JSON.parse(f.data)
        if (env.q === undefined) return
        runs++
        ws.send(JSON.stringify({ type: 7, data: JSON.stringify({ i: `r${++n}`, e: '$r', t: f.from, r: env.i, d: env.d }) }))
      })
      return { runs: () => runs }
    },
    async requester() {
      const ws = await open(`${o.base}/channel/${CH}?id=requester`)
      const waiting = new Map()
      let n = 0
      ws.on('message', (raw) => {
        const f = JSON.parse(raw.toString())
        if (f.type !== 7) return
        const env = JSON.parse(f.data)
        const w = waiting.get(env.r)
        if (w) waiting.delete(env.r), w(env.d)
      })
      const request = (d) =>
        new Promise((resolve) => {
          const id = `q${++n}`
          waiting.set(id, resolve)
          ws.send(JSON.stringify({ type: 7, data: JSON.stringify({ i: id, e: 'echo', q: 10_000, d }) }))
        })
      await deadline(
        (async () => {
          for (;;) {
            const r = await Promise.race([request({ t: 'probe' }), sleep(300).then(() => 'none')])
            if (r !== 'none') return
          }
        })(),
        10_000,
        'the responder',
      )
      return { request, check: (d, r) => r?.t === d.t }
    },
  },
}

function open(url) {
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  return deadline(
    new Promise((resolve, reject) => {
      ws.once('open', () => {
        ws.send('{"type":-1,"data":""}')
        resolve(ws)
      })
      ws.once('close', () => reject(new Error('ws closed before open')))
    }),
    10_000,
    'ws open',
  )
}

// ---------- roles ----------

async function responder() {
  process.on('message', (m) => {
    if (m?.type !== 'cpu') return
    const u = process.cpuUsage()
    report({ type: 'cpu', us: u.user + u.system })
  })
  const r = await kinds[o.kind].responder()
  report({ type: 'ready' })
  await next('stop', 600_000)
  const cpu = process.cpuUsage()
  return { runs: r.runs(), cpuUs: cpu.user + cpu.system }
}

async function latency() {
  const r = await kinds[o.kind].requester()
  const { n, warmup } = o
  const rtt = new Float64Array(n)
  let wrong = 0
  for (let i = 0; i < warmup + n; i++) {
    const d = payload(i)
    const t0 = performance.now()
    const got = await r.request(d)
    if (!r.check(d, got)) wrong++
    if (i >= warmup) rtt[i - warmup] = (performance.now() - t0) * 1000
  }
  const sorted = Array.from(rtt).sort((x, y) => x - y)
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), wrong, requests: warmup + n }
}

/** A closed loop with `inFlight` requests outstanding: a new one as each settles. */
async function throughput() {
  const r = await kinds[o.kind].requester()
  const { n, warmup, inFlight } = o
  let wrong = 0
  const run = async (count) => {
    let next = 0
    const lane = async () => {
      while (next < count) {
        const d = payload(next++)
        const got = await r.request(d)
        if (!r.check(d, got)) wrong++
      }
    }
    await Promise.all(Array.from({ length: inFlight }, lane))
  }
  await run(warmup)
  report({ type: 'warm' })
  await next('go')
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await run(n)
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  return { reqPerSec: (n / ms) * 1000, ms, wrong, cpuUs: cpu.user + cpu.system, requests: warmup + n }
}

/** Streams: the reader (sleeping `sleepMs` per piece when asked) and the writer of `bytes`. */
async function reader() {
  const c = await sockClient('reader')
  const mem = sampler()
  let total = 0
  let done
  const finished = new Promise((r) => (done = r))
  c.handleStream(
    CH,
    'up',
    async (rd) => {
      for await (const p of rd) {
        total += p.length
        if (o.sleepMs) await sleep(o.sleepMs)
      }
      done()
      return total
    },
    { window: o.window },
  )
  await c.join(CH)
  report({ type: 'ready' })
  await deadline(finished, 600_000, 'the stream to end')
  return { bytes: total, ...mem.stop() }
}

async function writer() {
  const c = await sockClient('writer')
  await c.join(CH)
  const chunk = new Uint8Array(64 << 10).map((_, i) => i * 7)
  const mem = sampler()
  const t0 = performance.now()
  const w = c.stream(CH, 'up', null, { to: 'reader' })
  await w.ready
  for (let sent = 0; sent < o.bytes; sent += chunk.length) await w.write(chunk)
  await w.close()
  const result = await w.result
  const ms = performance.now() - t0
  return { mbPerSec: o.bytes / 2 ** 20 / (ms / 1000), ms, received: result, ...mem.stop() }
}

const roles = { responder, latency, throughput, reader, writer }
report({ type: 'result', ...(await roles[o.role]()) })
setTimeout(() => process.exit(0), 50)
