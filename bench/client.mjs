// One measurement's client side, in its own process: `node bench/client.mjs '<json>'` with
// { role, client, base, ...params }. Talks to the orchestrator (bench/run.mjs) over IPC; every wait has a deadline.
import { byId } from './clients.mjs'
import { childSetup, deadline, percentile, sleep, wallNow } from './lib.mjs'

const { report, next } = childSetup()
const o = JSON.parse(process.argv[2])
const client = byId(o.client)
const DONE_TIMEOUT = o.doneTimeout ?? 60_000

/** n distinct 64-character payloads: a base-36 sequence number, then filler. */
function payloads(n) {
  const fill = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_'
  const out = new Array(n)
  for (let i = 0; i < n; i++) {
    const head = i.toString(36).padStart(8, '0')
    out[i] = head + fill.slice(0, 64 - head.length)
  }
  return out
}

/** Sends texts[from, to) in batches, yielding to the event loop between batches so receivers in this process run. */
async function sendAll(peer, texts, from, to, batch) {
  for (let i = from; i < to; ) {
    const end = Math.min(to, i + batch)
    for (; i < end; i++) peer.send(texts[i])
    if (i < to) await new Promise((r) => setImmediate(r))
  }
}

/** A receiver that checks every payload arrives once and in order. */
function receiver(texts, onProgress) {
  const r = {
    count: 0,
    wrong: 0,
    target: 0,
    done: undefined,
    onText(text) {
      if (text !== texts[r.count]) r.wrong++
      if (++r.count === r.target) r.done?.()
      onProgress?.()
    },
    until(target, what) {
      r.target = target
      if (r.count >= target) return Promise.resolve()
      return deadline(new Promise((resolve) => (r.done = resolve)), DONE_TIMEOUT, what)
    },
  }
  return r
}

/**
 * Flow control for a sender whose receivers live in this process: at most `window` messages in flight (sent,
 * not yet received by the slowest receiver); refilled by `window / 2` as they arrive. Steady state, no flood.
 */
function windowed(texts, window, inFlight) {
  const w = {
    peer: undefined,
    sent: 0,
    end: 0,
    pump() {
      if (!w.peer || w.sent >= w.end || inFlight(w.sent) > window / 2) return
      const stop = Math.min(w.end, w.sent + window - inFlight(w.sent))
      while (w.sent < stop) w.peer.send(texts[w.sent++])
    },
    run(end) {
      w.end = end
      w.pump()
    },
  }
  return w
}

const cpuMicros = (u) => u.user + u.system

async function throughput() {
  const { n, warmup, window } = o
  const texts = payloads(warmup + n)
  const tx = windowed(texts, window, (sent) => sent - rx.count)
  const rx = receiver(texts, () => tx.pump())
  await client.connect(o.base, rx.onText)
  tx.peer = await client.connect(o.base, () => {})
  tx.run(warmup)
  await rx.until(warmup, 'the warm-up messages')
  const t0 = performance.now()
  tx.run(warmup + n)
  await rx.until(warmup + n, `${n} messages`)
  const ms = performance.now() - t0
  await sleep(50) // anything extra (a duplicate) would show up in count
  return { msgsPerSec: (n / ms) * 1000, ms, received: rx.count - warmup, lost: warmup + n - rx.count, wrong: rx.wrong }
}

async function fanout() {
  const { n, warmup, receivers, window } = o
  const texts = payloads(warmup + n)
  const rxs = []
  let total = 0
  const tx = windowed(texts, window, (sent) => sent - Math.floor(total / receivers))
  for (let i = 0; i < receivers; i += 10) {
    const group = Array.from({ length: Math.min(10, receivers - i) }, () =>
      receiver(texts, () => {
        total++
        tx.pump()
      }),
    )
    await Promise.all(group.map((rx) => client.connect(o.base, rx.onText)))
    rxs.push(...group)
  }
  tx.peer = await client.connect(o.base, () => {})
  tx.run(warmup)
  await Promise.all(rxs.map((rx) => rx.until(warmup, 'the warm-up messages')))
  const t0 = performance.now()
  tx.run(warmup + n)
  await Promise.all(rxs.map((rx) => rx.until(warmup + n, `${n} messages at every receiver`)))
  const ms = performance.now() - t0
  await sleep(50)
  const got = rxs.reduce((s, rx) => s + rx.count - warmup, 0)
  return { deliveriesPerSec: (got / ms) * 1000, msgsPerSec: (n / ms) * 1000, ms, received: got, lost: n * receivers - got, wrong: rxs.reduce((s, rx) => s + rx.wrong, 0) }
}

async function latency() {
  const { n, warmup } = o
  const texts = payloads(warmup + n)
  let pending
  const a = await client.connect(o.base, (text) => pending?.(text))
  let b
  b = await client.connect(o.base, (text) => b.send(text))
  const rtt = new Float64Array(n)
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now()
    const got = await deadline(
      new Promise((resolve) => {
        pending = resolve
        a.send(texts[i])
      }),
      5000,
      `pong ${i}`,
    )
    if (got !== texts[i]) throw new Error(`pong ${i} carried the wrong payload`)
    if (i >= warmup) rtt[i - warmup] = (performance.now() - t0) * 1000
  }
  const sorted = Array.from(rtt).sort((x, y) => x - y)
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: sorted.reduce((s, x) => s + x, 0) / n }
}

/** CPU, receiving side: a process that only receives. */
async function cpuRecv() {
  const { n, warmup } = o
  const texts = payloads(warmup + n)
  const rx = receiver(texts)
  await client.connect(o.base, rx.onText)
  report({ type: 'ready' })
  await rx.until(warmup, 'the warm-up messages')
  const c0 = process.cpuUsage()
  report({ type: 'warm' })
  await rx.until(warmup + n, `${n} messages`)
  const used = cpuMicros(process.cpuUsage(c0))
  return { usPerMsg: used / n, lost: warmup + n - rx.count, wrong: rx.wrong }
}

/** CPU, sending side: a process that only sends; measured until the receiver has everything. */
async function cpuSend() {
  const { n, warmup, batch } = o
  const texts = payloads(warmup + n)
  const tx = await client.connect(o.base, () => {})
  report({ type: 'ready' })
  await next('warmup')
  await sendAll(tx, texts, 0, warmup, batch)
  await next('go')
  const c0 = process.cpuUsage()
  await sendAll(tx, texts, warmup, warmup + n, batch)
  await next('done', DONE_TIMEOUT)
  const used = cpuMicros(process.cpuUsage(c0))
  return { usPerMsg: used / n }
}

async function collect() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc()
    await sleep(20)
  }
  return process.memoryUsage()
}

/** Memory per idle connected client: heap + external after GC, with `count` clients open, minus the baseline. */
async function memory() {
  if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc')
  const { count } = o
  // Run the client's code paths `warm` times before the baseline: what V8 compiles and the feedback it keeps for
  // them is paid once per process, not per client (with one warm-up client it was 0.6-1.0 KiB of each figure).
  const warm = await Promise.all(Array.from({ length: o.warm ?? 1 }, () => client.connect(o.base, () => {})))
  for (const w of warm) w.close()
  await sleep(200)
  const m0 = await collect()
  const peers = []
  for (let i = 0; i < count; i += 25) {
    peers.push(...(await Promise.all(Array.from({ length: Math.min(25, count - i) }, () => client.connect(o.base, () => {})))))
  }
  await sleep(500)
  const m1 = await collect()
  const per = (k) => (m1[k] - m0[k]) / count
  const result = { bytesPerClient: per('heapUsed') + per('external'), heapPerClient: per('heapUsed'), externalPerClient: per('external'), rssPerClient: per('rss') }
  for (const p of peers) p.close()
  return result
}

/** Reconnect: reports every open with its wall-clock time and the last retry before it. */
async function reconnect() {
  let lastRetry
  let opens = 0
  client.reconnecting(o.base, o.policy, {
    open() {
      report({ type: 'open', at: wallNow(), n: ++opens, lastRetry })
      lastRetry = undefined
    },
    retry(info) {
      lastRetry = { ...info, at: wallNow() }
    },
  })
  await next('stop', 120_000)
  return {}
}

/**
 * An unpaced burst: n sends in one synchronous loop, sender and receiver in this process, through a relay in
 * another one. What a client writes while the loop runs reaches the relay, which works meanwhile; what it holds
 * back until the loop ends makes sender, relay and receiver work one after another. The send queue of a client
 * that bounds it is sized for the burst (`o.queue`), so the figure measures batching, not the queue's policy.
 */
async function unpaced() {
  const { n, warmup } = o
  const texts = payloads(warmup + n)
  const rx = receiver(texts)
  await client.connect(o.base, rx.onText, { queue: o.queue })
  const tx = await client.connect(o.base, () => {}, { queue: o.queue })
  let failed = 0
  const send = (i) => {
    const r = tx.send(texts[i])
    if (r?.catch) r.catch(() => failed++)
  }
  await sendAll(tx, texts, 0, warmup, 100)
  await rx.until(warmup, 'the warm-up messages')
  const t0 = performance.now()
  for (let i = warmup; i < warmup + n; i++) send(i) // one synchronous loop, nothing awaited
  const loopMs = performance.now() - t0
  await rx.until(warmup + n, `${n} unpaced messages`)
  const ms = performance.now() - t0
  await sleep(50)
  return { msgsPerSec: (n / ms) * 1000, ms, loopMs, received: rx.count - warmup, lost: n - (rx.count - warmup), wrong: rx.wrong, failed }
}

const roles = { throughput, fanout, latency, 'cpu-recv': cpuRecv, 'cpu-send': cpuSend, memory, reconnect, unpaced }
const role = roles[o.role]
if (!role) throw new Error(`unknown role ${o.role}`)
report({ type: 'result', ...(await role()) })
setTimeout(() => process.exit(0), 20)
