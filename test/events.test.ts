import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { chunkData, splitChunks } from '../src/chunks'
import type { LifecycleInfo, SockFile, SockMessage } from '../src'
import { crc32, encodeFrame, fromBase64, toBase64, TYPE_CHUNK, utf8Length } from '../src/protocol-entry'
import { msgpack } from '../src/msgpack'
import { client, closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

afterEach(async () => {
  await closeAll()
})

async function pair(serverOptions = {}, a = {}, b = {}) {
  const s = await startServer(serverOptions)
  const alice = client({ id: 'alice', ...a })
  const bob = client({ id: 'bob', ...b })
  alice.setup(s.address)
  bob.setup(s.address)
  await Promise.all([alice.join('chat'), bob.join('chat')])
  return { s, alice, bob }
}

describe('signal / on with any event and payload', () => {
  it('carries strings, objects, nested arrays, unicode and empty payloads', async () => {
    const { alice, bob } = await pair()
    const got: [string, unknown, SockMessage][] = []
    bob.on('chat', (event, m) => got.push([event, m.data, m]))
    const payloads: [string, unknown][] = [
      ['message', 'plain text'],
      ['message', ''],
      ['message', { not: 'a string' }],
      ['obj', { a: 1, b: [1, [2, [3, { c: null }]]], t: true }],
      ['unicode', 'héllo wörld 😀 \u2028 <&> "quotes" \\ \n\t'],
      ['empty', ''],
      ['nothing', null],
      ['list', []],
      ['zero', 0],
      ['undef', undefined],
    ]
    for (const [e, d] of payloads) await alice.signal('chat', e, d)
    await waitFor(() => got.length === payloads.length)
    expect(got.map(([e, d]) => [e, d])).toEqual(payloads)
    expect(got[0]![2].type).toBe(1) // a string message stays plain Sock
    expect(got[2]![2].type).toBe(7) // a non-string message travels in the envelope
    expect(got[3]![2]).toMatchObject({ channel: 'chat', event: 'obj', from: 'alice', type: 7 })
  })

  it('once, off and the unsubscribe function', async () => {
    const { alice, bob } = await pair()
    const once: unknown[] = []
    const all: unknown[] = []
    const onAll = (d: unknown) => all.push(d)
    bob.once('chat', 'tick', (d) => once.push(d))
    bob.on('chat', 'tick', onAll)
    await alice.signal('chat', 'tick', 1)
    await waitFor(() => all.length === 1)
    bob.off('chat', 'tick', onAll)
    await alice.signal('chat', 'tick', 2)
    const off = bob.on('chat', 'tock', onAll)
    await alice.signal('chat', 'tock', 3)
    await waitFor(() => all.length === 2)
    off()
    await alice.signal('chat', 'tock', 4)
    await sleep(100)
    expect(once).toEqual([1])
    expect(all).toEqual([1, 3])
  })

  it('messages() is an async iterator that an AbortSignal ends', async () => {
    const { alice, bob } = await pair()
    const ctrl = new AbortController()
    const seen: unknown[] = []
    const done = (async () => {
      for await (const m of bob.messages('chat', 'n', { signal: ctrl.signal })) {
        seen.push(m.data)
        if (seen.length === 3) ctrl.abort()
      }
    })()
    for (let i = 1; i <= 5; i++) await alice.signal('chat', 'n', i)
    await done
    expect(seen).toEqual([1, 2, 3])
    const all = bob.messages('chat')
    await alice.signal('chat', 'x', 'y')
    expect((await all.next()).value).toMatchObject({ event: 'x', data: 'y' })
    expect(await all.return!()).toEqual({ value: undefined, done: true })
    const aborted = bob.messages('chat', { signal: AbortSignal.abort() })
    expect(await aborted.next()).toEqual({ value: undefined, done: true })
  })

  it('messages() fails loudly instead of buffering without bound', async () => {
    const { alice, bob } = await pair()
    const it = bob.messages('chat', 'n', { maxBuffered: 3 })
    for (let i = 0; i < 5; i++) await alice.signal('chat', 'n', i)
    await sleep(100)
    await expect(it.next()).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' })
  })
})

describe('plain Sock peer interop', () => {
  it('types 1 and 2 both ways with a raw ws peer', async () => {
    const s = await startServer()
    const c = client({ id: 'c' })
    c.setup(s.address)
    const files: SockFile[] = []
    const texts: string[] = []
    c.on('chat', 'file', (f) => files.push(f))
    c.on('chat', 'message', (t) => texts.push(t))
    await c.join('chat')
    const peer = await rawPeer(`${s.url}/channel/chat?id=sockc`)
    // sockc sends a file as type 2 "<name>:<base64>"
    peer.send({ type: 2, data: `hello.txt:${Buffer.from('hi there').toString('base64')}` })
    peer.send({ type: 1, data: 'plain' })
    await waitFor(() => files.length && texts.length)
    expect(files[0]!.name).toBe('hello.txt')
    expect(Buffer.from(files[0]!.bytes).toString()).toBe('hi there')
    expect(files[0]!.size).toBe(8)
    expect(texts).toEqual(['plain'])
    // and sock-client sends small files as type 2 a sockc peer understands
    await c.sendFile('chat', 'notes.txt', new TextEncoder().encode('from sock-client'))
    const f = await peer.next()
    expect(f.type).toBe(2)
    expect(f.from).toBe('c')
    const [name, b64] = [f.data.slice(0, f.data.indexOf(':')), f.data.slice(f.data.indexOf(':') + 1)]
    expect(name).toBe('notes.txt')
    expect(Buffer.from(b64, 'base64').toString()).toBe('from sock-client')
    await c.signal('chat', 'message', 'text for sockc')
    expect(await peer.next()).toEqual({ type: 1, data: 'text for sockc', from: 'c' })
  })

  it('a garbled type-2 frame is an error event, not a crash', async () => {
    const s = await startServer()
    const c = client()
    c.setup(s.address)
    const errors: LifecycleInfo[] = []
    c.on('socket', 'error', (e) => errors.push(e))
    await c.join('chat')
    const peer = await rawPeer(`${s.url}/channel/chat?id=p`)
    peer.send({ type: 2, data: 'no-colon' })
    peer.send({ type: 2, data: 'x:not*base64' })
    await waitFor(() => errors.length === 2)
    expect(errors[0]!.error?.message).toMatch(/not <name>:<base64>/)
  })
})

describe('payloads larger than the frame limit', () => {
  it('a 1 MiB file and a 200 KiB object cross a 1024-byte server byte-identical, with progress on both sides', async () => {
    const { alice, bob } = await pair({ limit: 1024 })
    const file = new Uint8Array(1 << 20)
    for (let i = 0; i < file.length; i++) file[i] = (i * 31 + (i >> 8)) & 255
    const obj = { rows: Array.from({ length: 2000 }, (_, i) => ({ i, name: `row ${i} ✓ "q"`, tags: ['a', 'b\n'] })) }
    expect(JSON.stringify(obj).length).toBeGreaterThan(100 * 1024)
    const files: SockFile[] = []
    const objs: unknown[] = []
    const recvProgress: LifecycleInfo[] = []
    const sendProgress: [number, number][] = []
    bob.on('chat', 'file', (f) => files.push(f))
    bob.on('chat', 'table', (d) => objs.push(d))
    bob.on('socket', 'progress', (p) => recvProgress.push(p))
    await alice.sendFile('chat', 'big.bin', file, { onProgress: (d, t) => sendProgress.push([d, t]) })
    await alice.signal('chat', 'table', obj)
    await waitFor(() => files.length && objs.length, 15_000, 'large payloads')
    expect(files[0]!.name).toBe('big.bin')
    expect(files[0]!.size).toBe(file.length)
    expect(Buffer.compare(Buffer.from(files[0]!.bytes), Buffer.from(file))).toBe(0)
    expect(objs[0]).toEqual(obj)
    expect(sendProgress.length).toBeGreaterThan(1000)
    expect(sendProgress.at(-1)![0]).toBe(sendProgress.at(-1)![1])
    const fileRecv = recvProgress.filter((p) => p.direction === 'receive' && p.from === 'alice')
    expect(fileRecv.length).toBeGreaterThan(1000)
    expect(fileRecv.every((p, i, a) => i === 0 || p.id !== a[i - 1]!.id || p.done! > a[i - 1]!.done!)).toBe(true)
  })

  it('three senders interleaving large messages do not mix', async () => {
    const s = await startServer()
    const rx = client({ id: 'rx' })
    rx.setup(s.address)
    const got = new Map<string, unknown[]>()
    rx.on('chat', 'blob', (d, m) => got.set(m.from, [...(got.get(m.from) ?? []), d]))
    await rx.join('chat')
    const senders = ['s1', 's2', 's3'].map((id) => {
      const c = client({ id })
      c.setup(s.address)
      return c
    })
    await Promise.all(senders.map((c) => c.join('chat')))
    const payload = (id: string, n: number) => ({ id, n, body: `${id}-${n}-`.repeat(3000) })
    await Promise.all(
      senders.map(async (c, k) => {
        for (let n = 0; n < 3; n++) await c.signal('chat', 'blob', payload(`s${k + 1}`, n))
      }),
    )
    await waitFor(() => [...got.values()].reduce((a, v) => a + v.length, 0) === 9, 10_000, 'nine messages')
    for (const id of ['s1', 's2', 's3']) expect(got.get(id)).toEqual([0, 1, 2].map((n) => payload(id, n)))
  })

  it('drops the partial message of a sender that dies mid-message, with an error and nothing delivered', async () => {
    const s = await startServer()
    const rx = client({ id: 'rx', assemblyTimeout: 200 })
    rx.setup(s.address)
    const errors: LifecycleInfo[] = []
    const got: unknown[] = []
    rx.on('socket', 'error', (e) => errors.push(e))
    rx.on('chat', (_e, m) => got.push(m))
    await rx.join('chat')
    const peer = await rawPeer(`${s.url}/channel/chat?id=dying`)
    const text = `{"i":"m1","e":"x","d":"${'y'.repeat(3000)}"}`
    const pieces = splitChunks('m1', text, 1024)
    for (let i = 0; i < pieces.length - 1; i++) peer.ws.send(encodeFrame(TYPE_CHUNK, chunkData('m1', i, pieces.length, text.length, pieces[i]!)))
    peer.ws.terminate() // dies before the last chunk
    await waitFor(() => errors.length, 3000, 'timeout error')
    expect(errors[0]!.error?.message).toMatch(/dropped message m1 from 'dying': no chunk for 200 ms/)
    expect(got).toEqual([])
  })

  it('bounds reassembly memory: a message above maxPendingBytes is dropped with a reason', async () => {
    const { alice, bob } = await pair({}, {}, { maxPendingBytes: 10_000 })
    const errors: LifecycleInfo[] = []
    const got: unknown[] = []
    bob.on('socket', 'error', (e) => errors.push(e))
    bob.on('chat', 'big', (d) => got.push(d))
    await alice.signal('chat', 'big', 'z'.repeat(50_000))
    await alice.signal('chat', 'big', 'small enough')
    await waitFor(() => got.length && errors.length)
    expect(errors[0]!.error?.message).toMatch(/maxPendingBytes \(10000\)/)
    expect(got).toEqual(['small enough'])
  })

  it('every chunk frame fits the limit after JSON escaping, for any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), fc.integer({ min: 96, max: 2048 }), (text, max) => {
        const pieces = splitChunks('abcDEF123', text, max)
        expect(pieces.join('')).toBe(text)
        for (let i = 0; i < pieces.length; i++) {
          const frame = encodeFrame(TYPE_CHUNK, chunkData('abcDEF123', i, pieces.length, text.length, pieces[i]!), 1 << 30)
          expect(utf8Length(frame)).toBeLessThanOrEqual(max)
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('files', () => {
  it('accepts Uint8Array, ArrayBuffer, Buffer and Blob, and rejects bad names', async () => {
    const { alice, bob } = await pair()
    const files: SockFile[] = []
    bob.on('chat', 'file', (f) => files.push(f))
    const bytes = new Uint8Array([0, 1, 2, 250, 255])
    await alice.sendFile('chat', 'a.bin', bytes)
    await alice.sendFile('chat', 'b.bin', bytes.buffer.slice(0))
    await alice.sendFile('chat', 'c.bin', Buffer.from(bytes))
    await alice.sendFile('chat', 'd.bin', new Blob([bytes]))
    await alice.sendFile('chat', 'empty', new Uint8Array(0))
    await waitFor(() => files.length === 5)
    expect(files.map((f) => [f.name, [...f.bytes]])).toEqual([
      ['a.bin', [...bytes]],
      ['b.bin', [...bytes]],
      ['c.bin', [...bytes]],
      ['d.bin', [...bytes]],
      ['empty', []],
    ])
    for (const bad of ['a:b', 'dir/file', 'c:\\x', 'x\\y', '', '..']) {
      expect(() => alice.sendFile('chat', bad, bytes), bad).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'name' }))
    }
    expect(() => alice.sendFile('chat', 'x', 'text' as never)).toThrow(/Uint8Array/)
  })

  it('base64 and CRC-32 agree with Node', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (u) => {
        expect(toBase64(u)).toBe(Buffer.from(u).toString('base64'))
        expect([...fromBase64(toBase64(u))!]).toEqual([...u])
      }),
    )
    expect(crc32(new TextEncoder().encode('123456789'))).toBe('cbf43926') // the standard check value
    expect(fromBase64('not*base64')).toBeUndefined()
    expect(fromBase64('a')).toBeUndefined()
  })
})

describe('msgpack codec', () => {
  it('keeps Date, Map, Set, BigInt and Uint8Array intact, and a JSON-configured receiver decodes it', async () => {
    const { alice, bob } = await pair({}, { codec: msgpack() }, {})
    const got: unknown[] = []
    bob.on('chat', 'rich', (d) => got.push(d))
    const rich = {
      when: new Date('2026-11-22T10:00:00.123Z'),
      map: new Map<unknown, unknown>([
        ['k', 1],
        [2, { nested: new Set(['a', 3]) }],
      ]),
      set: new Set([1, 'two', 3n]),
      big: 2n ** 100n,
      small: -42n,
      bytes: new Uint8Array([0, 127, 128, 255]),
      plain: { a: [1, 2.5, 'x', null, true] },
      num: 5e9,
    }
    await alice.signal('chat', 'rich', rich)
    const big = { list: Array.from({ length: 500 }, (_, i) => new Map([[i, new Date(i)]])) }
    await alice.signal('chat', 'rich', big) // chunked msgpack
    await waitFor(() => got.length === 2)
    expect(got[0]).toEqual(rich)
    const r = got[0] as typeof rich
    expect(r.map).toBeInstanceOf(Map)
    expect(r.set).toBeInstanceOf(Set)
    expect(r.bytes).toBeInstanceOf(Uint8Array)
    expect(typeof r.big).toBe('bigint')
    expect(typeof r.num).toBe('number')
    expect(r.plain).not.toBeInstanceOf(Map)
    expect(got[1]).toEqual(big)
  })
})
