import { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ConnectionError, SockClient, ValidationError, type LifecycleInfo, type SockMessage } from '../src'
import { createSockServer } from '../src/server'
import { client, closeAll, DIST, rawPeer, runScript, sleep, startServer, waitFor } from './helpers'

afterEach(async () => {
  await closeAll()
})

describe('SockClient on one address', () => {
  it('joins, learns its own id and exchanges type 1 both ways with a plain Sock peer', async () => {
    const s = await startServer()
    const c = client({ id: 'alice' })
    c.setup(s.address)
    const got: [string, SockMessage][] = []
    c.on('chat', 'message', (data, m) => got.push([data, m]))
    await c.join('chat')
    expect(c.idOf('chat')).toBe('alice')
    expect(c.stateOf('chat')).toBe('open')
    const peer = await rawPeer(`${s.url}/channel/chat?id=bob`)
    await c.signal('chat', 'message', 'hi bob')
    expect(await peer.next()).toEqual({ type: 1, data: 'hi bob', from: 'alice' })
    peer.send({ type: 1, data: 'hi alice \u00e9\u{1F600}' })
    await waitFor(() => got.length)
    expect(got[0]![0]).toBe('hi alice \u00e9\u{1F600}')
    expect(got[0]![1]).toEqual({ channel: 'chat', event: 'message', type: 1, data: 'hi alice \u00e9\u{1F600}', from: 'bob', address: s.address })
  })

  it('a send written at once resolves with the report of its address, frozen and shared, not one per message', async () => {
    const s = await startServer()
    const c = client()
    c.setup(s.address)
    await c.join('chat')
    const a = c.signal('chat', 'message', 'one')
    const b = c.signal('chat', 'n', 2)
    const [ra, rb] = await Promise.all([a, b])
    expect(ra).toEqual({ sent: [s.address], queued: [], failed: [] })
    expect(rb).toBe(ra)
    expect(Object.isFrozen(ra) && Object.isFrozen(ra.sent) && Object.isFrozen(ra.queued) && Object.isFrozen(ra.failed)).toBe(true)
    expect(() => ra.sent.push('x')).toThrow(TypeError) // one send cannot change what the next one reports
    expect((await c.signal('chat', 'message', 'three')).sent).toEqual([s.address])
  })

  it('adopts the id the server picks when none is given', async () => {
    const s = await startServer()
    const c = client()
    c.setup(`ws://127.0.0.1:${s.port}`)
    await c.join('room1')
    const id = c.idOf('room1')!
    expect(id).toMatch(/^[A-Za-z0-9]{12}$/)
    expect(s.instances('room1').map((i) => i.id)).toEqual([id])
  })

  it('delivers other Sock types to the catch-all listener and sends raw frames', async () => {
    const s = await startServer()
    const c = client({ id: 'me' })
    c.setup(s.address)
    const all: [string, SockMessage][] = []
    c.on('chat', (event, m) => all.push([event, m]))
    await c.join('chat')
    const peer = await rawPeer(`${s.url}/channel/chat?id=p`)
    peer.send({ type: 42, data: 'raw stuff' })
    await waitFor(() => all.length)
    expect(all[0]![0]).toBe('type:42')
    expect(all[0]![1]).toMatchObject({ type: 42, data: 'raw stuff', from: 'p' })
    await c.send('chat', 9, 'nine')
    expect(await peer.next()).toEqual({ type: 9, data: 'nine', from: 'me' })
  })

  it('on() and signal() join the channel by themselves, before or after setup()', async () => {
    const s = await startServer()
    const c = client({ id: 'early' })
    const got: string[] = []
    c.on('lobby', 'message', (d) => got.push(d))
    c.setup(s.address)
    await waitFor(() => c.stateOf('lobby') === 'open')
    const peer = await rawPeer(`${s.url}/channel/lobby?id=p`)
    peer.send({ type: 1, data: 'welcome' })
    await waitFor(() => got.length)
    expect(got).toEqual(['welcome'])
    const d = client({ id: 'sender' })
    d.setup(s.address)
    const sent = d.signal('other', 'message', 'queued until open') // not joined yet
    const p2 = await rawPeer(`${s.url}/channel/other?id=p2`)
    await sent
    expect(await p2.next()).toEqual({ type: 1, data: 'queued until open', from: 'sender' })
  })

  it('emits lifecycle events on the local socket channel with channel and address', async () => {
    const s = await startServer()
    const c = client()
    const events: [string, LifecycleInfo][] = []
    c.setup(s.address).on('socket', (event, info) => events.push([event, info]))
    await c.join('chat')
    c.leave('chat')
    await waitFor(() => events.some(([e]) => e === 'close'))
    expect(events.map(([e]) => e)).toEqual(['connecting', 'open', 'close'])
    for (const [, info] of events) {
      expect(info.channel).toBe('chat')
      expect(info.address).toBe(s.address)
    }
  })

  it('keeps a client alive past several short ping windows', async () => {
    const s = await startServer({ pingWindow: 200 })
    const a = client({ id: 'a', pingInterval: 60 })
    const b = client({ id: 'b', pingInterval: 60 })
    a.setup(s.address)
    b.setup(s.address)
    const got: string[] = []
    b.on('chat', 'message', (d) => got.push(d))
    await Promise.all([a.join('chat'), b.join('chat')])
    await sleep(800) // four windows
    await a.signal('chat', 'message', 'still alive')
    await waitFor(() => got.length)
    expect(got).toEqual(['still alive'])
    // a raw peer that never pings is stale by now and receives nothing
    const quiet = await rawPeer(`${s.url}/channel/chat?id=quiet`)
    await sleep(500)
    await a.signal('chat', 'message', 'again')
    await waitFor(() => got.length === 2)
    expect(quiet.frames).toEqual([])
  })

  it('reconnects after the server restarts on the same port and keeps listeners and id', async () => {
    const s = await startServer()
    const port = s.port
    const a = client({ id: 'a' })
    const b = client({ id: 'b' })
    a.setup(s.address)
    b.setup(s.address)
    const got: string[] = []
    const reconnects: LifecycleInfo[] = []
    b.on('chat', 'message', (d) => got.push(d))
    b.on('socket', 'reconnect', (info) => reconnects.push(info))
    await Promise.all([a.join('chat'), b.join('chat')])
    await a.signal('chat', 'message', 'before')
    await waitFor(() => got.length === 1)
    await s.close({ abrupt: true })
    await waitFor(() => b.stateOf('chat') !== 'open')
    const s2 = await createSockServer({ port })
    try {
      await waitFor(() => a.stateOf('chat') === 'open' && b.stateOf('chat') === 'open', 5000, 'reopen')
      await a.signal('chat', 'message', 'after')
      await waitFor(() => got.length === 2)
      expect(got).toEqual(['before', 'after'])
      expect(b.idOf('chat')).toBe('b')
      expect(reconnects.length).toBeGreaterThan(0)
      expect(reconnects[0]).toMatchObject({ channel: 'chat', attempt: 1 })
      expect(reconnects[0]!.delay).toBeLessThanOrEqual(50)
    } finally {
      a.close()
      b.close()
      await s2.close()
    }
  })

  it('queues sends while the server is down and delivers them once after it returns', async () => {
    const s = await startServer()
    const port = s.port
    const a = client({ id: 'a' })
    a.setup(s.address)
    await a.join('chat')
    await s.close({ abrupt: true })
    await waitFor(() => a.stateOf('chat') !== 'open')
    const sends = [1, 2, 3].map((i) => a.signal('chat', 'message', `queued ${i}`))
    const s2 = await createSockServer({ port })
    try {
      const peer = await rawPeer(`${s2.url}/channel/chat?id=p`)
      await Promise.all(sends)
      const sent = () => peer.frames.filter((f) => !(f.type === 7 && f.data.includes('"sock:presence"'))) // not the presence announcement
      await waitFor(() => sent().length === 3)
      expect(sent().map((f) => f.data)).toEqual(['queued 1', 'queued 2', 'queued 3'])
    } finally {
      a.close()
      await s2.close()
    }
  })

  it('lists instances over REST while connected and after close', async () => {
    const s = await startServer()
    const a = client({ id: 'a' })
    const b = client({ id: 'b' })
    a.setup(s.address)
    b.setup(s.address)
    expect(await a.instances('chat')).toEqual([])
    await Promise.all([a.join('chat'), b.join('chat')])
    const list = await a.instances('chat')
    expect(list.map((i) => i.id).sort()).toEqual(['a', 'b'])
    expect(list[0]!.createdAt).toBeInstanceOf(Date)
    expect(Math.abs(list[0]!.createdAt.getTime() - Date.now())).toBeLessThan(60_000)
    expect(list[0]!.addresses).toEqual([s.address])
    expect((await a.instance('chat', 'b'))?.id).toBe('b')
    expect(await a.instance('chat', 'nobody')).toBeNull()
    b.close()
    await waitFor(async () => (await a.instances('chat')).length === 1)
    expect((await a.instances('chat')).map((i) => i.id)).toEqual(['a'])
    a.close()
    await waitFor(async () => (await b.instances('chat')).length === 0)
  })

  it('REST errors are typed: timeout and unreachable server', async () => {
    const silent = await import('node:net').then(
      (net) =>
        new Promise<import('node:net').Server>((r) => {
          const srv = net.createServer(() => {}) // accepts, never answers
          srv.listen(0, '127.0.0.1', () => r(srv))
        }),
    )
    const port = (silent.address() as { port: number }).port
    try {
      const c = client({ restTimeout: 200 })
      c.setup('127.0.0.1', port)
      await expect(c.instances('chat')).rejects.toMatchObject({ name: 'RestError', code: 'ERR_TIMEOUT' })
      const d = client({ restTimeout: 500 })
      d.setup('127.0.0.1', 1)
      await expect(d.instances('chat')).rejects.toMatchObject({ name: 'RestError', code: 'ERR_NETWORK' })
    } finally {
      silent.close()
    }
  })

  it('throws typed errors that name the argument', async () => {
    expect(() => new SockClient({ id: 'bad id' })).toThrow(ValidationError)
    expect(() => new SockClient({ token: '' })).toThrow(/token/)
    expect(() => new SockClient({ pingInterval: -1 })).toThrow(/options.pingInterval/)
    expect(() => new SockClient({ maxFrameBytes: 10 })).toThrow(/maxFrameBytes/)
    const c = client()
    // bad arguments throw at once (as ws does); outcomes of a send reject
    expect(() => c.join('chat')).toThrow(/call client.setup/)
    expect(() => c.signal('chat', 'message', 'x')).toThrow(/call client.setup/)
    c.setup('127.0.0.1:1')
    expect(() => c.join('bad channel')).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'channel' }))
    expect(() => c.send('chat', 1.5, 'x')).toThrow(expect.objectContaining({ argument: 'type' }))
    expect(() => c.send('chat', 1, null as never)).toThrow(expect.objectContaining({ argument: 'data' }))
    expect(() => c.signal('chat', '' as any, 'x')).toThrow(expect.objectContaining({ argument: 'event' }))
    expect(() => c.join('socket')).toThrow(/lifecycle/)
    expect(() => c.instances('bad-name')).toThrow(ValidationError)
    expect(() => c.instance('chat', 'bad id')).toThrow(/invalid id/)
    expect(() => c.on('chat', 'message', undefined as never)).toThrow(/listener/)
    // a raw frame cannot be split: too large is a rejected outcome
    await expect(c.send('chat', 1, 'x'.repeat(2000))).rejects.toMatchObject({ name: 'FrameTooLargeError', bytes: 2020, limit: 1024 })
    const small = client({ maxMessageBytes: 4096 })
    small.setup('127.0.0.1:1')
    await expect(small.signal('chat', 'big', 'x'.repeat(5000))).rejects.toThrow(/exceeds maxMessageBytes \(4096\)/)
  })

  it('is rejected with close 1008 for a wrong token: one error, no retry loop, queued sends rejected', async () => {
    const s = await startServer({ token: 'right' })
    const c = client({ token: 'wrong' })
    c.setup(s.address)
    const errors: LifecycleInfo[] = []
    const reconnects: LifecycleInfo[] = []
    c.on('socket', 'error', (i) => errors.push(i))
    c.on('socket', 'reconnect', (i) => reconnects.push(i))
    const sent = c.signal('chat', 'message', 'x')
    const joined = c.join('chat')
    await expect(joined).rejects.toBeInstanceOf(ConnectionError)
    await expect(sent).rejects.toMatchObject({ code: 'ERR_REJECTED', closeCode: 1008 })
    await sleep(300)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.error?.message).toMatch(/invalid token/)
    expect(errors[0]!.error?.message).not.toContain('wrong')
    expect(reconnects).toEqual([])
    expect(c.stateOf('chat')).toBe('closed')
  })

  it('registering the same listener twice is harmless; on() returns an unsubscribe', async () => {
    const s = await startServer()
    const c = client({ id: 'c' })
    c.setup(s.address)
    const got: string[] = []
    const fn = (d: string) => got.push(d)
    c.on('chat', 'message', fn)
    const off = c.on('chat', 'message', fn)
    await c.join('chat')
    const peer = await rawPeer(`${s.url}/channel/chat?id=p`)
    peer.send({ type: 1, data: 'one' })
    await waitFor(() => got.length)
    await sleep(50)
    expect(got).toEqual(['one'])
    off()
    peer.send({ type: 1, data: 'two' })
    await sleep(100)
    expect(got).toEqual(['one'])
  })

  it('close() leaves no timer or socket behind: a Node script ends by itself', async () => {
    const s = await startServer()
    const { code, out, ms } = await runScript(`
      import { SockClient } from ${DIST}
      const c = new SockClient({ id: 'x', pingInterval: 50 })
      c.setup(${JSON.stringify(s.address)})
      c.on('chat', 'message', () => {})
      await c.join('chat')
      await c.signal('chat', 'message', 'bye')
      c.close()
      console.log('closed')
    `)
    expect(out).toContain('closed')
    expect(code, `child did not exit by itself within 8 s (ran ${ms} ms)`).toBe(0)
  })
})

describe('write batching in Node', () => {
  /** Counts the writes (each one system call) Node makes on TCP sockets that `which` picks, until `stop()`. */
  function countWrites(which: (s: Socket) => boolean) {
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>
    const original = { _write: proto._write, _writev: proto._writev }
    const counter = { calls: 0, chunks: 0, stop: () => Object.assign(proto, original) }
    proto._write = function (this: Socket, ...a: unknown[]) {
      if (which(this)) counter.calls++, counter.chunks++
      return original._write.apply(this, a)
    }
    proto._writev = function (this: Socket, ...a: unknown[]) {
      if (which(this)) counter.calls++, (counter.chunks += (a[0] as unknown[]).length)
      return original._writev.apply(this, a)
    }
    return counter
  }

  it('sends the first frame of a tick at once and the rest of the burst in one write, in order', async () => {
    const s = await startServer()
    const c = client()
    c.setup(s.address)
    await c.join('burst')
    const peer = await rawPeer(`${s.url}/channel/burst`)
    await waitFor(async () => (await s.instances('burst')).length === 2, 3000, 'the peer')
    const writes = countWrites((sock) => sock.remotePort === s.port && sock !== (peer.ws as unknown as { _socket: Socket })._socket)
    const texts = Array.from({ length: 300 }, (_, i) => `m${i}`)
    let sent: Promise<unknown>[]
    try {
      sent = texts.map((t) => c.signal('burst', 'message', t))
      expect(writes.calls, 'the first frame is written before signal() returns').toBe(1)
      await sleep(0)
    } finally {
      writes.stop()
    }
    expect(writes.calls, `${writes.calls} writes for 300 frames`).toBe(2)
    await Promise.all(sent)
    await waitFor(() => peer.frames.length >= 300, 5000, 'all 300 frames')
    expect(peer.frames.map((f) => f.data)).toEqual(texts)
  })

  it('the server relays a burst to each peer in a few writes, not one per frame', async () => {
    const s = await startServer()
    const [a, b] = [await rawPeer(`${s.url}/channel/relay`), await rawPeer(`${s.url}/channel/relay`)]
    await waitFor(async () => (await s.instances('relay')).length === 2, 3000, 'both peers')
    const bPort = (b.ws as unknown as { _socket: Socket })._socket.localPort
    const writes = countWrites((sock) => sock.localPort === s.port && sock.remotePort === bPort)
    const texts = Array.from({ length: 300 }, (_, i) => `r${i}`)
    try {
      for (const t of texts) a.send({ type: 1, data: t })
      await waitFor(() => b.frames.length >= 300, 5000, 'all 300 frames')
    } finally {
      writes.stop()
    }
    expect(b.frames.map((f) => f.data)).toEqual(texts)
    expect(writes.chunks, 'every frame went through the counted socket').toBeGreaterThanOrEqual(300)
    expect(writes.calls, `${writes.calls} writes for 300 relayed frames`).toBeLessThanOrEqual(10)
  })
})

describe('memory of an idle socket in Node', () => {
  it("replaces ws's emptied receive queue, which keeps room for 17 chunks once its parser is optimized", async () => {
    const s = await startServer()
    const c = client()
    c.setup(s.address)
    const got: string[] = []
    c.on('idle', 'message', (d) => got.push(d))
    await c.join('idle')
    const raw = (c.channelOf('idle')!.connections[0] as unknown as { raw: { _receiver: { _buffers: unknown[] } } }).raw
    const before = raw._receiver._buffers
    const peer = await rawPeer(`${s.url}/channel/idle`)
    for (let i = 0; i < 50; i++) peer.send({ type: 1, data: `m${i}` })
    await waitFor(() => got.length === 50, 5000, 'all 50 frames')
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`))
    expect(raw._receiver._buffers).toEqual([])
    expect(raw._receiver._buffers, 'a fresh array, not the one that grew').not.toBe(before)
  })

  it('a closed socket is not held for a second by the timer that would end it unanswered', async () => {
    const s = await startServer()
    const c = client()
    c.setup(s.address)
    await c.join('bye')
    const raw = (c.channelOf('bye')!.connections[0] as unknown as { raw: WebSocket & Record<symbol, unknown> }).raw
    c.close()
    await waitFor(() => raw.readyState === 3, 3000, 'the close handshake')
    // The timer (terminate() in a second, for a peer that never answers the close) is cleared once it closed.
    const timers = Object.getOwnPropertySymbols(raw)
      .map((k) => raw[k])
      .filter((v): v is { _destroyed: boolean } => typeof (v as { _destroyed?: unknown } | null)?._destroyed === 'boolean')
    expect(timers).toHaveLength(1)
    expect(timers[0]!._destroyed).toBe(true)
  })
})
