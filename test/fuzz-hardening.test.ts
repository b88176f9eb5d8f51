// Issue 13's property tests for the client: adversarial numbers in every header field, listeners that throw at
// random points, and wall-clock jumps at random points. Each runs against a real server on loopback.
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { isSockError } from '../src'
import { chunkData, pendingBytes, splitChunks } from '../src/chunks'
import { client, closeAll, heapAfterGc, rawPeer, startServer, waitFor } from './helpers'

afterEach(closeAll)

const MiB = 1 << 20

/** A client joined to `channel` on a fresh server, a raw Sock peer in the same channel, and a sentinel to sync on. */
async function pair(channel: string, options: Parameters<typeof client>[0] = {}) {
  const s = await startServer({ limit: 64 * 1024, maxBuffered: 64 * MiB })
  const c = client({ maxFrameBytes: 64 * 1024, ...options })
  c.setup(s.address)
  let seen = -1
  let onSeen: (() => void) | undefined
  c.on(channel, 'message', (t: string) => {
    if (t.startsWith('__end__')) {
      seen = Number(t.slice(7))
      onSeen?.()
    }
  })
  await c.join(channel)
  const peer = await rawPeer(`${s.url}/channel/${channel}`)
  await waitFor(async () => (await s.instances(channel)).length === 2, 3000, 'the peer')
  let k = 0
  /** Sends a sentinel after everything sent so far and waits until the client delivered it (it keeps reading). */
  const sync = async () => {
    const n = ++k
    const arrived = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`sentinel ${n} did not arrive: the client stopped receiving`)), 5000)
      onSeen = () => seen === n && (clearTimeout(t), resolve())
    })
    peer.send({ type: 1, data: `__end__${n}` })
    await arrived
  }
  return { s, c, peer, sync }
}

// Numbers at and around every boundary a header field has: the regex limits (9 and 10 digits), the defaults of
// maxMessageBytes (16 MiB), 2^31, 2^53, and the small ones.
const edge = fc.constantFrom(
  0,
  1,
  2,
  63,
  64,
  65,
  255,
  256,
  257,
  1023,
  1024,
  65_535,
  99_999,
  100_000,
  (16 << 20) - 1,
  16 << 20,
  (16 << 20) + 1,
  2 ** 31 - 1,
  2 ** 31,
  999_999_999,
  9_999_999_999,
  2 ** 53,
)
const number = fc.oneof(edge, fc.nat(), fc.integer({ min: -5, max: 5 }))
const id = fc.oneof(fc.stringMatching(/^[A-Za-z0-9]{1,8}$/), fc.constantFrom('a'.repeat(64), 'a'.repeat(65), 'b'.repeat(1000)))

const adversarial = fc.oneof(
  // chunk headers: every field at a boundary
  fc.tuple(id, number, number, number, fc.string({ maxLength: 50 })).map(([i, idx, n, len, piece]) => ({ type: 8, data: `${i}:${idx}:${n}:${len}:${piece}` })),
  // envelopes: ids and event names at and past their bounds
  fc
    .tuple(fc.constantFrom(1, 63, 64, 65, 5000), fc.constantFrom(1, 255, 256, 257, 20_000), number)
    .map(([il, el, d]) => ({ type: 7, data: JSON.stringify({ i: 'i'.repeat(il), e: 'e'.repeat(el), d }) })),
  // frame types and fields at the edges of what JSON numbers can say
  fc
    .tuple(fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 1e308, -1, 0, 3, 9), fc.string({ maxLength: 30 }), fc.constantFrom('', 'x'.repeat(5000)))
    .map(([type, data, from]) => ({ type, data, from })),
)

describe('fuzz: adversarial numbers in every header field', () => {
  it('never allocates for what a header announces: pending and heap stay bounded, errors typed, the client reads on (1,500 cases)', async () => {
    const MAX_PENDING = 2 * MiB
    const { c, peer, sync } = await pair('edge', { maxPendingBytes: MAX_PENDING })
    const untyped: unknown[] = []
    let errors = 0
    c.on('socket', 'error', (i) => (errors++, isSockError(i.error) || untyped.push(i.error)))
    const before = heapAfterGc()
    let n = 0
    await fc.assert(
      fc.asyncProperty(fc.array(adversarial, { minLength: 1, maxLength: 8 }), async (frames) => {
        n++
        for (const f of frames) peer.send(f)
        await sync()
        const pending = pendingBytes(c.channelOf('edge'))
        expect(pending).toBeLessThanOrEqual(MAX_PENDING)
        expect(untyped).toEqual([])
        expect(c.stateOf('edge')).toBe('open')
      }),
      { numRuns: 1500 },
    )
    const grown = heapAfterGc() - before
    expect(n).toBe(1500)
    expect(errors).toBeGreaterThan(500)
    expect(grown, `heap grew ${(grown / MiB).toFixed(1)} MiB`).toBeLessThan(MAX_PENDING + 8 * MiB)
  }, 60_000)
})

describe('fuzz: listeners that throw at random points', () => {
  const LIFECYCLE = ['open', 'close', 'reconnect', 'connecting', 'progress'] as const
  const EVENTS = ['message', 'evt', 'big'] as const
  const action = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('message' as const), text: fc.string({ maxLength: 20 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('event' as const), data: fc.jsonValue({ maxDepth: 2 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('chunked' as const), size: fc.integer({ min: 100, max: 5000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const) }) },
  )
  const listener = fc.record({ on: fc.oneof(fc.constantFrom(...EVENTS), fc.constantFrom(...LIFECYCLE.map((e) => `socket:${e}`)), fc.constant('*')), throwEvery: fc.integer({ min: 1, max: 4 }) })

  it('the client keeps reading, rejoins and reports each throw once as ERR_LISTENER (150 cases)', async () => {
    const { s, c, peer, sync } = await pair('thr', { reconnect: { minDelay: 5, maxDelay: 20 } })
    let thrown = 0
    let reported = 0
    c.on('socket', 'error', (i) => i.error?.code === 'ERR_LISTENER' && reported++)
    let opens = 0
    c.on('socket', 'open', () => opens++)
    let seq = 0
    await fc.assert(
      fc.asyncProperty(fc.array(listener, { minLength: 1, maxLength: 5 }), fc.array(action, { minLength: 1, maxLength: 10 }), async (listeners, actions) => {
        const offs = listeners.map(({ on, throwEvery }) => {
          let calls = 0
          const fn = () => {
            if (++calls % throwEvery === 0) {
              thrown++
              throw new Error(`listener bug ${calls}`)
            }
          }
          if (on === '*') return c.on('thr', fn)
          if (on.startsWith('socket:')) return c.on('socket', on.slice(7) as (typeof LIFECYCLE)[number], fn)
          return c.on('thr', on, fn)
        })
        try {
          for (const a of actions) {
            if (a.kind === 'message') peer.send({ type: 1, data: a.text || '-' })
            else if (a.kind === 'event') peer.send({ type: 7, data: JSON.stringify({ i: `x${++seq}`, e: 'evt', d: a.data }) })
            else if (a.kind === 'chunked') {
              const i = `k${++seq}`
              const env = JSON.stringify({ i, e: 'big', d: 'z'.repeat(a.size) })
              const pieces = splitChunks(i, env, 1024)
              pieces.forEach((p, j) => peer.send({ type: 8, data: chunkData(i, j, pieces.length, env.length, p) }))
            } else {
              // The server drops the client's socket: lifecycle listeners run (and throw) on the way back.
              const before = opens
              ;(s as any).channels.get('thr').get(c.idOf('thr')).ws.terminate()
              await waitFor(() => opens > before, 3000, 'the rejoin')
            }
          }
          await waitFor(() => c.stateOf('thr') === 'open', 3000, 'the channel open')
          await sync()
          await waitFor(() => reported === thrown, 2000, `${thrown} throws reported, ${reported} so far`)
        } finally {
          for (const off of offs) off()
        }
      }),
      { numRuns: 150 },
    )
    expect(thrown).toBeGreaterThan(100)
  }, 90_000)
})

describe('fuzz: wall-clock jumps at random points', () => {
  it('no reconnect, no lost or dropped message, no error, whatever the wall clock does (80 cases)', async () => {
    const realNow = Date.now
    let offset = 0
    Date.now = () => realNow() + offset
    try {
      // Short keep-alive and probe, and a short reassembly timeout: the deadlines a jump could trip, if any ran on it.
      const { c, peer, sync } = await pair('clk', { pingInterval: 40, probeTimeout: 300, assemblyTimeout: 400, registrationCheck: 0 })
      let opens = 0
      const errors: string[] = []
      let got = 0
      c.on('socket', 'open', () => opens++)
      c.on('socket', 'error', (i) => errors.push(i.error!.message))
      c.on('clk', 'big', () => got++)
      let sent = 0
      let seq = 0
      const jump = fc.oneof(fc.constantFrom(-7_200_000, -3_600_000, -60_000, 60_000, 3_600_000, 7_200_000), fc.integer({ min: -7_200_000, max: 7_200_000 }))
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(jump, fc.integer({ min: 0, max: 60 })), { minLength: 1, maxLength: 4 }), async (steps) => {
          const i = `c${++seq}`
          const env = JSON.stringify({ i, e: 'big', d: 'y'.repeat(3000) })
          const pieces = splitChunks(i, env, 1024)
          let j = 0
          for (const [by, wait] of steps) {
            if (j < pieces.length) peer.send({ type: 8, data: chunkData(i, j, pieces.length, env.length, pieces[j++]!) })
            offset += by // the wall clock steps, between chunks of a message still arriving
            await new Promise((r) => setTimeout(r, wait))
          }
          while (j < pieces.length) peer.send({ type: 8, data: chunkData(i, j, pieces.length, env.length, pieces[j++]!) })
          sent++
          await sync()
          expect(errors).toEqual([])
        }),
        { numRuns: 80 },
      )
      await waitFor(() => got === sent, 2000, 'every message')
      expect(opens, 'the channel never reconnected').toBe(0)
      expect(c.stateOf('clk')).toBe('open')
    } finally {
      Date.now = realNow
    }
  }, 60_000)
})
