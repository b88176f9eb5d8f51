import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer, type WebSocket as WsSocket } from 'ws'
import { chunkData, pendingBytes, splitChunks } from '../src/chunks'
import { isSockError, SockClient } from '../src'

// A hostile server on loopback feeds one SockClient arbitrary inbound frames. The client must never throw,
// never crash the process, keep reassembly memory under its cap, and report every problem as a typed error.

const MAX_PENDING = 64 * 1024
let wss: WebSocketServer
let peer: WsSocket
let client: SockClient
let delivered = 0
let errors = 0
const untyped: unknown[] = []
let sentinel = -1
let onSentinel: (() => void) | undefined

beforeAll(async () => {
  wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((r) => wss.once('listening', r))
  const connected = new Promise<void>((resolve) =>
    wss.on('connection', (ws) => {
      ws.on('error', () => {})
      ws.on('message', (d) => {
        if ((JSON.parse(d.toString()).type ?? 0) === 0) ws.send('{"type":0,"data":"fz","from":"fz"}')
      })
      peer = ws
      resolve()
    }),
  )
  client = new SockClient({ maxPendingBytes: MAX_PENDING, assemblyTimeout: 60_000, pingInterval: 60_000 })
  client.setup(`127.0.0.1:${(wss.address() as { port: number }).port}`)
  client.on('socket', 'error', (i) => {
    errors++
    if (!isSockError(i.error)) untyped.push(i.error)
  })
  client.on('fuzz', (event, m) => {
    if (event === 'message' && typeof m.data === 'string' && m.data.startsWith('__end__')) {
      sentinel = Number(m.data.slice(7))
      onSentinel?.()
    } else delivered++
  })
  await client.join('fuzz')
  await connected
})

afterAll(async () => {
  client.close()
  await new Promise((r) => wss.close(r))
})

const anyJson = fc.jsonValue({ maxDepth: 3 })
const text = fc.string({ unit: 'binary', maxLength: 200 })
const chunkHeader = fc
  .tuple(
    fc.oneof(fc.stringMatching(/^[A-Za-z0-9]{1,12}$/), text),
    fc.oneof(fc.nat(20), fc.integer(), fc.constant(999999999)),
    fc.oneof(fc.nat(20), fc.integer(), fc.constant(999999999)),
    fc.oneof(fc.nat(5000), fc.integer(), fc.constant(9999999999)),
    text,
  )
  .map(([id, i, n, len, piece]) => `${id}:${i}:${n}:${len}:${piece}`)

/** A valid message split into chunks, then shuffled, repeated or truncated. */
const mangledChunks = fc
  .tuple(fc.stringMatching(/^[A-Za-z0-9]{4,10}$/), fc.string({ unit: 'grapheme', minLength: 100, maxLength: 3000 }), fc.integer({ min: 96, max: 400 }))
  .chain(([id, body, max]) => {
    const env = JSON.stringify({ i: id, e: 'big', d: body })
    const pieces = splitChunks(id, env, max).map((p, i, a) => chunkData(id, i, a.length, env.length, p))
    return fc.shuffledSubarray(pieces.concat(pieces.slice(0, 2)), { minLength: 0, maxLength: pieces.length + 2 })
  })
  .map((chunks) => chunks.map((d) => JSON.stringify({ type: 8, data: d, from: 'x' })))

const frame = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }) }, // random bytes, sent binary
  { weight: 2, arbitrary: text }, // random text
  { weight: 2, arbitrary: anyJson.map((v) => JSON.stringify(v)) }, // JSON of every wrong shape
  {
    weight: 3,
    arbitrary: fc
      .record(
        { type: fc.oneof(fc.integer({ min: -3, max: 12 }), fc.integer(), fc.double(), fc.string(), fc.constant(null)), data: fc.oneof(text, anyJson), from: fc.oneof(text, anyJson) },
        { requiredKeys: [] },
      )
      .map((o) => JSON.stringify(o)),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        anyJson.map((v) => JSON.stringify(v)),
        text,
        fc.record({ i: text, e: text, c: fc.oneof(fc.constant('msgpack'), fc.constant('nope'), text), d: fc.oneof(text, anyJson) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
      )
      .map((d) => JSON.stringify({ type: 7, data: d })),
  }, // malformed envelopes
  { weight: 2, arbitrary: fc.oneof(chunkHeader, text).map((d) => JSON.stringify({ type: 8, data: d })) }, // malformed chunks
  { weight: 1, arbitrary: fc.integer({ min: 10_000, max: 200_000 }).map((n) => JSON.stringify({ type: 1 + (n % 9), data: 'h'.repeat(n) })) }, // huge strings
  { weight: 1, arbitrary: fc.constant('{"error":"Invalid json format"}') },
)

const batch = fc.oneof({ weight: 4, arbitrary: fc.array(frame, { minLength: 1, maxLength: 4 }) }, { weight: 1, arbitrary: mangledChunks })

describe('fuzz: arbitrary inbound frames', () => {
  it('never throws, never crashes, keeps reassembly memory bounded and reports typed errors (10,000 cases)', async () => {
    let n = 0
    await fc.assert(
      fc.asyncProperty(batch, async (frames) => {
        const k = ++n
        const arrived = new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`sentinel ${k} did not arrive: the client stopped receiving`)), 5000)
          onSentinel = () => sentinel === k && (clearTimeout(t), resolve())
        })
        for (const f of frames) peer.send(f, { binary: f instanceof Uint8Array })
        peer.send(JSON.stringify({ type: 1, data: `__end__${k}`, from: 'fz' }))
        await arrived
        const pending = pendingBytes(client.channelOf('fuzz'))
        expect(pending).toBeLessThanOrEqual(MAX_PENDING)
        expect(untyped).toEqual([])
        expect(client.stateOf('fuzz')).toBe('open')
      }),
      { numRuns: 10_000 },
    )
    console.log(`fuzz: ${n} cases, ${delivered} frames delivered as events, ${errors} typed error events`)
    expect(n).toBe(10_000)
    expect(errors).toBeGreaterThan(1000)
  }, 120_000)
})
