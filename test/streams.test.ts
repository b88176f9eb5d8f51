// Streams through the embedded server on loopback: bytes and text intact and in order, pieces that fit the frame
// limit with no JSON inside the JSON, credit that holds a writer to a reader that does not read, abort and cancel
// both ways with their codes, the idle and accept timeouts, web and Node streams, three servers at once, and pieces
// from anyone but the writer ignored.
import { randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { ReplyCode, ReplyError, type SockReader } from '../src'
import { toNodeReadable, toNodeWritable } from '../src/node'
import { client, closeAll, heapAfterGc, rawPeer, sleep, startServer, waitFor } from './helpers'

afterEach(closeAll)

async function pair(options: Parameters<typeof client>[0] = {}, serverOptions: Parameters<typeof startServer>[0] = {}) {
  const s = await startServer(serverOptions)
  const a = client({ id: 'alice', ...options })
  const b = client({ id: 'bob', ...options })
  a.setup(s.address)
  b.setup(s.address)
  await Promise.all([a.join('files'), b.join('files')])
  return { s, a, b }
}

async function collect(reader: SockReader): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const p of reader) parts.push(typeof p === 'string' ? new TextEncoder().encode(p) : p)
  return Buffer.concat(parts)
}

describe('streams', () => {
  it('bytes arrive whole and in order; ready, delivered and result resolve; every frame fits the limit', async () => {
    const { s, a, b } = await pair()
    const spy = await rawPeer(`${s.url}/channel/files?id=spy`)
    const sizes: number[] = []
    spy.ws.on('message', (d) => sizes.push(Buffer.byteLength(String(d))))
    let got: Uint8Array | undefined
    b.handleStream('files', 'upload', async (reader, meta: { name: string }) => {
      got = await collect(reader)
      return { stored: meta.name, size: got.length }
    })
    const bytes = randomBytes(200_000)
    const w = a.stream('files', 'upload', { name: 'a.bin' }, { to: 'bob' })
    expect(await w.ready).toEqual({ from: 'bob' })
    for (let i = 0; i < bytes.length; i += 7000) await w.write(bytes.subarray(i, i + 7000))
    await w.close()
    await w.delivered
    expect(await w.result).toEqual({ stored: 'a.bin', size: 200_000 })
    expect(Buffer.compare(Buffer.from(got!), bytes)).toBe(0)
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1024 + 20) // the server adds "from"
    expect(sizes.length).toBeGreaterThan(200_000 / 750)
  })

  it('text pieces never split a surrogate pair and carry no JSON inside the JSON: escaped once', async () => {
    const { s, a, b } = await pair()
    const spy = await rawPeer(`${s.url}/channel/files?id=spy`)
    let text = ''
    b.handleStream('files', 'text', async (reader) => {
      for await (const p of reader) {
        expect(typeof p).toBe('string')
        text += p as string
      }
      return text.length
    })
    const sample = 'héllo "wörld" \\ \n\t 😀🎉 ' + '\u0001'.repeat(3) + 'x'.repeat(50)
    const big = sample.repeat(200)
    const w = a.stream('files', 'text', null, { to: 'bob' })
    await w.write(big)
    await w.close()
    expect(await w.result).toBe(big.length)
    expect(text).toBe(big)
    const pieces = spy.frames.filter((f) => f.type === 9 && f.data.startsWith('d:'))
    expect(pieces.length).toBeGreaterThan(10)
    for (const f of spy.texts.filter((t) => t.includes('"type":9') && t.includes('"data":"d:'))) {
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(1024 + 20)
      expect(f).not.toContain('\\\\\\"') // a quote escaped twice would be \\\" inside the frame
    }
  })

  it('credit: a reader that does not read holds the writer to its window; reading releases it (no 1013, bounded on both sides)', async () => {
    const { s, a, b } = await pair()
    const spy = await rawPeer(`${s.url}/channel/files?id=spy`)
    let reader!: SockReader
    let release!: () => void
    const go = new Promise<void>((r) => (release = r))
    b.handleStream(
      'files',
      'slow',
      async (r) => {
        reader = r
        await go
        return (await collect(r)).length
      },
      { window: 16 },
    )
    const w = a.stream('files', 'slow', null, { to: 'bob' })
    const closes: number[] = []
    for (const c of [a, b]) c.on('socket', 'close', (i) => closes.push(i.code ?? 0))
    let written = 0
    const writing = (async () => {
      for (let i = 0; i < 100; i++) {
        await w.write(randomBytes(2000))
        written++
      }
      await w.close()
    })()
    await sleep(500)
    const pieces = () => spy.frames.filter((f) => f.type === 9 && f.data.startsWith('b:')).length
    expect(pieces()).toBe(16) // exactly the window, and the writer waits
    expect(written).toBeLessThan(10)
    expect((reader as any).buf.size).toBe(16)
    release()
    await writing
    expect(await w.result).toBe(200_000)
    expect(closes).toEqual([])
  })

  it('memory: a writer pushing 16 MiB to a reader that does not read holds writer, server and reader to the window (heap measured)', async () => {
    const { a, b } = await pair()
    let release!: () => void
    const go = new Promise<void>((r) => (release = r))
    b.handleStream('files', 'hold', async (reader) => (await go, (await collect(reader)).length), { window: 64 })
    const warm = a.stream('files', 'hold', null, { to: 'bob' })
    await warm.write(randomBytes(1000))
    release()
    await warm.close()
    await warm.result
    let hold!: () => void
    const held = new Promise<void>((r) => (hold = r))
    b.handleStream('files', 'stuck', async (reader) => (await held, (await collect(reader)).length), { window: 64 })
    const before = heapAfterGc()
    const w = a.stream('files', 'stuck', null, { to: 'bob' })
    let sent = 0
    const writing = (async () => {
      for (; sent < 16 << 20; sent += 64 << 10) await w.write(randomBytes(64 << 10)) // one chunk at a time, as a pipe would
      await w.close()
    })()
    await sleep(600)
    const during = heapAfterGc()
    const growth = during - before
    console.log(`16 MiB stream to a reader that does not read: ${(growth / 1024).toFixed(0)} KiB more heap + external (window 64 pieces of <= 1 KiB), ${sent} bytes accepted by write()`)
    expect(sent).toBeLessThan(1 << 20) // the writer is held, not buffering
    expect(growth).toBeLessThan(1 << 20) // window (64 KiB of frames) + one 64 KiB chunk + bookkeeping, with a margin
    hold()
    await writing
    expect(await w.result).toBe(16 << 20)
  })

  it('maxStreams bounds the streams a client reads at once: one more is refused with code 1 (filled)', async () => {
    const { a, b } = await pair()
    let hold!: () => void
    const held = new Promise<void>((r) => (hold = r))
    b.handleStream('files', 'slot', async (reader) => (await held, (await collect(reader)).length), { maxStreams: 2 })
    const ws = [a.stream('files', 'slot', null, { to: 'bob' }), a.stream('files', 'slot', null, { to: 'bob' })]
    await Promise.all(ws.map((w) => w.ready))
    const third = a.stream('files', 'slot', null, { to: 'bob' })
    const e = await third.ready.catch((x) => x)
    expect(e).toMatchObject({ name: 'ReplyError', replyCode: ReplyCode.Rejected })
    hold()
    for (const w of ws) await w.close()
    expect(await Promise.all(ws.map((w) => w.result))).toEqual([0, 0])
    const fourth = a.stream('files', 'slot', null, { to: 'bob' }) // room again
    await fourth.ready
    await fourth.close()
    expect(await fourth.result).toBe(0)
  })

  it('abort from the writer, cancel from the reader, and a handler that throws: each side gets the other code', async () => {
    const { a, b } = await pair()
    // writer aborts
    let readerError: unknown
    b.handleStream('files', 'w', async (reader) => {
      try {
        await collect(reader)
      } catch (e) {
        readerError = e
      }
      return 'n/a'
    })
    const w1 = a.stream('files', 'w', null, { to: 'bob' })
    await w1.write('first')
    await sleep(50)
    w1.abort('changed my mind')
    await waitFor(() => readerError, 3000, 'the reader to see the abort')
    expect(readerError).toMatchObject({ name: 'StreamError', code: 'ERR_ABORTED', remoteCode: ReplyCode.Canceled, reason: 'changed my mind' })
    await expect(w1.write('more')).rejects.toMatchObject({ name: 'StreamError' })
    // reader cancels
    b.handleStream('files', 'r', async (reader) => {
      await reader.read()
      reader.cancel('enough')
      return 'stopped'
    })
    const w2 = a.stream('files', 'r', null, { to: 'bob' })
    const e2 = await (async () => {
      for (;;) await w2.write(randomBytes(1000))
    })().catch((e) => e)
    expect(e2).toMatchObject({ name: 'StreamError', remoteCode: ReplyCode.Canceled, reason: 'enough' })
    // handler throws: code 5 to the writer, its result a ReplyError
    b.handleStream('files', 'boom', async (reader) => {
      await reader.read()
      throw new Error('internal')
    })
    const w3 = a.stream('files', 'boom', null, { to: 'bob' })
    await w3.write('x')
    const e3 = await w3.result.catch((e) => e)
    expect(e3).toMatchObject({ remoteCode: ReplyCode.HandlerError })
  })

  it('no handler: ready rejects with code 2 at once; nobody there: ERR_TIMEOUT after the accept timeout; idle: both sides abort with code 7', async () => {
    const { a, b } = await pair()
    const none = a.stream('files', 'nothing', null, { to: 'bob' })
    const e1 = await none.ready.catch((e) => e)
    expect(e1).toBeInstanceOf(ReplyError)
    expect(e1.replyCode).toBe(ReplyCode.NoHandler)
    const ghost = a.stream('files', 'upload', null, { to: 'ghost', timeout: 300 })
    expect(await ghost.ready.catch((e) => e.code)).toBe('ERR_TIMEOUT')
    let readerError: unknown
    b.handleStream(
      'files',
      'quiet',
      async (reader) => {
        await reader.read().catch((e) => (readerError = e))
        return 1
      },
      { idleTimeout: 300 },
    )
    const w = a.stream('files', 'quiet', null, { to: 'bob', idleTimeout: 5000 })
    await w.ready
    const e = await w.result.catch((x) => x)
    expect(e).toMatchObject({ name: 'StreamError', remoteCode: ReplyCode.Timeout })
    expect(readerError).toMatchObject({ code: 'ERR_TIMEOUT' })
  })

  it('web streams: a Blob piped into the writable, the reader read through its ReadableStream', async () => {
    const { a, b } = await pair()
    const bytes = randomBytes(50_000)
    b.handleStream('files', 'web', async (reader) => {
      const parts: Uint8Array[] = []
      const rd = reader.readable.getReader()
      for (;;) {
        const { value, done } = await rd.read()
        if (done) break
        parts.push(value as Uint8Array)
      }
      return Buffer.concat(parts).equals(bytes)
    })
    const w = a.stream('files', 'web', null, { to: 'bob' })
    await new Blob([bytes]).stream().pipeTo(w.writable)
    expect(await w.result).toBe(true)
  })

  it('Node streams: pipeline into toNodeWritable and out of toNodeReadable', async () => {
    const { a, b } = await pair()
    const chunks = Array.from({ length: 40 }, () => randomBytes(3000))
    b.handleStream('files', 'node', async (reader) => {
      const got: Buffer[] = []
      await pipeline(
        toNodeReadable(reader),
        new Writable({
          write(c: Buffer, _e, cb) {
            got.push(c)
            cb()
          },
        }),
      )
      return Buffer.concat(got).equals(Buffer.concat(chunks))
    })
    const w = a.stream('files', 'node', null, { to: 'bob' })
    await pipeline(Readable.from(chunks), toNodeWritable(w))
    expect(await w.result).toBe(true)
  })

  it('over three servers in broadcast mode: the reader drops the copies, the bytes arrive once and whole', async () => {
    const servers = [await startServer(), await startServer(), await startServer()]
    const a = client({ id: 'alice' })
    const b = client({ id: 'bob' })
    for (const c of [a, b]) c.setup(servers.map((s) => s.address))
    let runs = 0
    b.handleStream('files', 'up', async (reader) => (runs++, (await collect(reader)).length))
    await Promise.all([a.join('files'), b.join('files')])
    await waitFor(() => [a, b].every((c) => c.connectionsOf('files').every((x) => x.state === 'open')), 5000, 'all open')
    const bytes = randomBytes(100_000)
    const w = a.stream('files', 'up', null, { to: 'bob' })
    await w.write(bytes)
    await w.close()
    expect(await w.result).toBe(100_000)
    expect(runs).toBe(1)
  })

  it('pieces from another instance are ignored; a piece beyond the credit aborts the stream with code 9', async () => {
    const { s, a, b } = await pair()
    const mallory = await rawPeer(`${s.url}/channel/files?id=mallory`)
    let text = ''
    let failure: unknown
    b.handleStream(
      'files',
      'chat',
      async (reader) => {
        try {
          for await (const p of reader) text += p
        } catch (e) {
          failure = e
        }
        return text
      },
      { window: 4 },
    )
    const w = a.stream('files', 'chat', null, { to: 'bob' })
    await w.ready
    mallory.send({ type: 9, data: `d:${w.id}:0:forged` })
    await sleep(50)
    await w.write('genuine')
    await w.close()
    expect(await w.result).toBe('genuine')
    // a writer that ignores credit (raw): the reader stops it with FlowControl
    const raw = await rawPeer(`${s.url}/channel/files?id=rogue`)
    raw.send({ type: 7, data: JSON.stringify({ i: 'rogue1', e: 'chat', q: 0, t: 'bob', s: 1, d: null }) })
    await raw.next((f) => f.type === 9 && f.data.startsWith('c:rogue1:4:'))
    for (let i = 0; i < 6; i++) raw.send({ type: 9, data: `d:rogue1:${i}:x` })
    const x = await raw.next((f) => f.type === 9 && f.data.startsWith('x:rogue1:'))
    expect(x.data).toMatch(/^x:rogue1:9:/)
    void failure
  })
})

describe('streams and requests: bad arguments and endings', () => {
  it('data the codec cannot encode is a ValidationError naming data: request rejects, requestAll and stream throw at once', async () => {
    const { a } = await pair()
    const circular: Record<string, unknown> = {}
    circular.self = circular
    for (const data of [circular, 1n]) {
      await expect(a.request('files', 'x', data)).rejects.toMatchObject({ name: 'ValidationError', argument: 'data' })
      expect(() => a.requestAll('files', 'x', data)).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'data' }))
      expect(() => a.stream('files', 'x', data, { to: 'bob' })).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'data' }))
    }
  })

  it('stream() with an options.signal that is not an AbortSignal is a ValidationError naming it, before anything is sent', async () => {
    const { a } = await pair()
    for (const signal of ['abort', {}, 1])
      expect(() => a.stream('files', 'x', null, { to: 'bob', signal: signal as never })).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'options.signal' }))
  })

  it('an abort reason longer than a frame is cut to 200 characters, and to what fits the frame; the stream ends on both sides', async () => {
    const { s, a, b } = await pair()
    let readerError: { reason?: string } | undefined
    b.handleStream('files', 'long', async (reader) => {
      await collect(reader).catch((e) => (readerError = e))
      return 1
    })
    const w = a.stream('files', 'long', null, { to: 'bob' })
    await w.ready
    w.abort('é'.repeat(100_000))
    await expect(w.result).rejects.toMatchObject({ name: 'StreamError' })
    await waitFor(() => readerError, 3000, 'the reader to see the abort')
    expect(readerError!.reason).toBe('é'.repeat(200))
    // With the smallest frame limit, 200 characters escaped six times over cannot fit: the reason is cut, never thrown.
    const small = client({ id: 'carol', maxFrameBytes: 128 })
    small.setup(s.address)
    await small.join('files')
    let smallError: { reason?: string } | undefined
    b.handleStream('files', 'small', async (reader) => {
      await collect(reader).catch((e) => (smallError = e))
      return 1
    })
    const w2 = small.stream('files', 'small', null, { to: 'bob' })
    await w2.ready
    const reason = '\u0001'.repeat(200)
    expect(() => w2.abort(reason)).not.toThrow()
    await expect(w2.result).rejects.toMatchObject({ name: 'StreamError', code: 'ERR_ABORTED' })
    await waitFor(() => smallError, 3000, 'the reader to see the cut abort')
    expect(smallError!.reason!.length).toBeGreaterThan(0)
    expect(reason.startsWith(smallError!.reason!)).toBe(true)
  })

  it('a handler that lets the stream’s own ending through (abort, close) is not an application error: no ERR_LISTENER', async () => {
    const { a, b } = await pair()
    const errors: string[] = []
    b.on('socket', 'error', (i) => errors.push(i.error!.code))
    let ended = 0
    b.handleStream('files', 'plain', async (reader) => {
      try {
        return await collect(reader) // no catch: the StreamError goes out of the handler
      } finally {
        ended++
      }
    })
    const w1 = a.stream('files', 'plain', null, { to: 'bob' })
    await w1.write('first')
    await sleep(50)
    w1.abort('changed my mind')
    await waitFor(() => ended === 1, 3000, 'the handler to end')
    await sleep(50)
    expect(errors).toEqual([])
    const w2 = a.stream('files', 'plain', null, { to: 'bob' })
    await w2.write('first')
    await sleep(50)
    b.close()
    await waitFor(() => ended === 2, 3000, 'the handler to end on close')
    await sleep(50)
    expect(errors).toEqual([])
    await expect(w2.result).rejects.toMatchObject({ name: 'StreamError', remoteCode: ReplyCode.Canceled, reason: 'closed' })
  })
})
