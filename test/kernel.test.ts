// The kernel's layers on their own: Connection and Channel driven by a fake WebSocket and fake time (no real
// sleeps, no server). The modules are loaded after the fake clock is installed, so their monotonic clock and the
// shared timer heap run on it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Address } from '../src/address'
import type { Channel as ChannelT, ChannelHost, Kernel } from '../src/channel'
import type { Connection as ConnectionT, ConnectionOptions, ConnectionOwner, ConnectionState } from '../src/connection'
import type { SockError } from '../src/errors'

type Listener = (this: FakeSocket, e: Record<string, unknown>) => void

/** A WebSocket with the DOM API that a test opens, feeds and drops; what the connection sends is kept. */
class FakeSocket {
  static all: FakeSocket[] = []
  readyState = 0
  bufferedAmount = 0
  binaryType = 'blob'
  sent: string[] = []
  closedWith: number | undefined
  private readonly listeners = new Map<string, Listener[]>()
  constructor(readonly url: string) {
    FakeSocket.all.push(this)
  }
  addEventListener(type: string, fn: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn])
  }
  send(text: string): void {
    this.sent.push(text)
  }
  close(code?: number): void {
    this.closedWith = code ?? 1005
    this.readyState = 3
  }
  // what a test does to it
  emit(type: string, e: Record<string, unknown> = {}): void {
    for (const f of this.listeners.get(type) ?? []) f.call(this, { type, ...e })
  }
  open(): void {
    this.readyState = 1
    this.emit('open')
  }
  whoami(id = 'me'): void {
    this.emit('message', { data: JSON.stringify({ type: 0, data: id, from: id }) })
  }
  lose(code = 1006, reason = ''): void {
    this.readyState = 3
    this.emit('close', { code, reason })
  }
  /** The frames sent, decoded. */
  frames(): { type: number; data: string }[] {
    return this.sent.map((t) => JSON.parse(t))
  }
}
const last = () => FakeSocket.all.at(-1)!

let mod: {
  Connection: typeof ConnectionT
  Channel: typeof ChannelT
  DEFAULT_QUEUE: ConnectionOptions['queue']
  makeAddress: (host: string, port: number) => Address
  compose: typeof import('../src/feature').compose
  json: import('../src/envelope').Codec
}

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] })
  vi.resetModules()
  const [connection, channel, address, feature, envelope] = await Promise.all([
    import('../src/connection'),
    import('../src/channel'),
    import('../src/address'),
    import('../src/feature'),
    import('../src/envelope'),
  ])
  mod = { Connection: connection.Connection, Channel: channel.Channel, DEFAULT_QUEUE: connection.DEFAULT_QUEUE, makeAddress: address.makeAddress, compose: feature.compose, json: envelope.json }
  FakeSocket.all = []
})
afterEach(() => {
  vi.useRealTimers()
})

function options(over: Partial<ConnectionOptions> = {}): ConnectionOptions {
  return {
    WebSocket: FakeSocket as never,
    pingInterval: 1000,
    probeTimeout: 500,
    connectTimeout: 2000,
    highWaterMark: 100,
    serverPingWindow: 60_000,
    duplicateIdTimeout: 5000,
    reconnect: { minDelay: 100, maxDelay: 1000, factor: 2, maxRetries: 3, minUptime: 5000 },
    queue: mod.DEFAULT_QUEUE,
    random: () => 0.5, // every drawn delay is half its window
    ...over,
  }
}

/** An owner that records what its connection asks and reports, with addresses a, b, c to rotate through. */
function owner() {
  const addresses = ['a', 'b', 'c'].map((h, i) => mod.makeAddress(h, 1000 + i))
  let index = 0
  const log: string[] = []
  const states: [ConnectionState, { code?: number; reason?: string; error?: SockError }][] = []
  const errors: SockError[] = []
  const o: ConnectionOwner = {
    next: () => addresses[(index = (index + 1) % addresses.length)]!,
    url: (c) => `${c.address.url}/channel/ch`,
    onState: (_c, s, d) => (states.push([s, d]), log.push(s)),
    onFrame: (_c, f) => log.push(`frame ${f.type} ${f.data}`),
    onError: (_c, e) => (errors.push(e), log.push(`error ${e.code}`)),
    onReconnect: (_c, d) => log.push(`reconnect ${d.attempt} in ${d.delay}`),
    onDue: () => log.push('due'),
  }
  return { o, log, states, errors, addresses }
}

function connection(over: Partial<ConnectionOptions> = {}) {
  const w = owner()
  const c = new mod.Connection('ch', options(over), w.o)
  c.address = w.addresses[0]!
  return { c, ...w }
}

/** Lets the first attempt (a microtask after construction) and promise callbacks run. */
const settle = () => vi.advanceTimersByTimeAsync(0)

describe('Connection (fake socket, fake time)', () => {
  it('starts after its owner registered it, asks the owner for the URL, and reports every state change through one funnel', async () => {
    const { c, log } = connection()
    expect(FakeSocket.all).toHaveLength(0) // nothing before the caller has heard of it
    await settle()
    expect(last().url).toBe('ws://a:1000/channel/ch')
    last().open()
    expect(
      last()
        .frames()
        .map((f) => f.type),
    ).toEqual([-1, 0]) // the first ping, then who-am-I
    expect(c.state).toBe('connecting') // open only once the server answered end to end
    last().whoami('alice')
    expect(c.state).toBe('open')
    expect(c.id).toBe('alice')
    expect(log).toEqual(['connecting', 'open'])
  })

  it('pings every interval and probes: a missed reply is an ERR_TIMEOUT, then a retry after the drawn delay on the next address', async () => {
    const { c, log } = connection()
    await settle()
    last().open()
    last().whoami()
    const first = last()
    await vi.advanceTimersByTimeAsync(1000)
    expect(first.frames().map((f) => f.type)).toEqual([-1, 0, -1, 0]) // keep-alive and a probe, on the clock
    await vi.advanceTimersByTimeAsync(499)
    expect(c.state).toBe('open')
    await vi.advanceTimersByTimeAsync(1)
    expect(log.slice(2)).toEqual(['error ERR_TIMEOUT', 'reconnecting', 'reconnect 1 in 50'])
    expect(first.closedWith).toBeDefined()
    await vi.advanceTimersByTimeAsync(49)
    expect(FakeSocket.all).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(last().url).toBe('ws://b:1001/channel/ch') // the owner rotated after the loss
  })

  it('backs off with full jitter, gives up after maxRetries, and reconnect() starts again with a fresh budget', async () => {
    const { c, log } = connection()
    await settle()
    for (const wait of [50, 100, 200]) {
      last().lose()
      await vi.advanceTimersByTimeAsync(wait)
    }
    last().lose()
    expect(log.filter((l) => l.startsWith('reconnect '))).toEqual(['reconnect 1 in 50', 'reconnect 2 in 100', 'reconnect 3 in 200'])
    expect(c.state).toBe('giveup')
    expect(log.at(-1)).toBe('giveup')
    const sockets = FakeSocket.all.length
    await vi.advanceTimersByTimeAsync(10_000)
    expect(FakeSocket.all).toHaveLength(sockets) // no timer left behind a give-up
    c.reconnect()
    expect(FakeSocket.all).toHaveLength(sockets + 1)
    expect(c.state).toBe('connecting')
  })

  it('queues while not open and flushes in order; past the high-water mark while open it queues until the socket drains', async () => {
    const { c } = connection()
    const early = c.offer('{"type":1,"data":"early"}')
    expect(early.status).toBe('queued')
    await settle()
    last().open()
    last().whoami()
    expect(
      last()
        .frames()
        .map((f) => f.data),
    ).toEqual(['', '', 'early'])
    await expect((early as { written: Promise<string> }).written).resolves.toBe('a:1000')
    last().bufferedAmount = 150 // over highWaterMark (100)
    const held = c.offer('{"type":1,"data":"held"}')
    expect(held.status).toBe('queued')
    expect(c.queued).toBe(1)
    await vi.advanceTimersByTimeAsync(100)
    expect(c.queued).toBe(1) // still full: still waiting
    last().bufferedAmount = 0
    await vi.advanceTimersByTimeAsync(20)
    expect(c.queued).toBe(0)
    expect(last().frames().at(-1)!.data).toBe('held')
  })

  it('retries a 1008 "duplicate id" soon after losing its own connection, and makes it final after duplicateIdTimeout', async () => {
    const { c, log, states } = connection({ reconnect: { minDelay: 100, maxDelay: 1000, factor: 2, maxRetries: Infinity, minUptime: 5000 } })
    await settle()
    last().open()
    last().whoami('alice')
    last().lose() // a connection of ours, gone
    await vi.advanceTimersByTimeAsync(50)
    last().open()
    last().lose(1008, 'duplicate id: an instance with this id is already in the channel')
    expect(c.state).toBe('reconnecting')
    expect(log.at(-1)).toMatch(/^reconnect 2 in/)
    await vi.advanceTimersByTimeAsync(6000) // past duplicateIdTimeout
    last().open()
    last().lose(1008, 'duplicate id: an instance with this id is already in the channel')
    expect(c.state).toBe('closed')
    expect(states.at(-1)![1].error?.code).toBe('ERR_REJECTED')
  })

  it('a close 1009 is reported as an error with the reconnecting state, error first', async () => {
    const { c, states } = connection()
    await settle()
    last().open()
    last().whoami()
    last().lose(1009)
    const [state, detail] = states.at(-1)!
    expect(state).toBe('reconnecting')
    expect(detail.error?.code).toBe('ERR_FRAME_TOO_LARGE')
    expect(c.offer('x').status).toBe('queued') // what its listener sends waits for the next socket
  })

  it('withdraw() takes a queued frame back: never written, its promise rejects with the reason, the others flush in order', async () => {
    const { c } = connection()
    const a = c.offer('{"type":1,"data":"a"}') as { written: Promise<string>; pending: object }
    const b = c.offer('{"type":1,"data":"b"}') as { written: Promise<string>; pending: object }
    const d = c.offer('{"type":1,"data":"d"}') as { written: Promise<string>; pending: object }
    const why = new Error('timed out') as SockError
    expect(c.withdraw(b.pending, why)).toBe(true)
    expect(c.withdraw(b.pending, why)).toBe(false) // once
    await expect(b.written).rejects.toBe(why)
    expect(c.queued).toBe(2)
    await settle()
    last().open()
    last().whoami()
    expect(
      last()
        .frames()
        .map((f) => f.data),
    ).toEqual(['', '', 'a', 'd'])
    await expect(a.written).resolves.toBe('a:1000')
    await expect(d.written).resolves.toBe('a:1000')
    expect(c.withdraw(a.pending, why)).toBe(false) // written: too late to take back
    // the queue emptied by withdrawals leaves the fast path: the next frame is written at once
    last().bufferedAmount = 150
    const e = c.offer('{"type":1,"data":"e"}') as { written: Promise<string>; pending: object }
    expect(c.withdraw(e.pending, why)).toBe(true)
    await expect(e.written).rejects.toBe(why)
    last().bufferedAmount = 0
    expect(c.offer('{"type":1,"data":"f"}').status).toBe('sent')
  })

  it('waits for a URL the owner gives as a promise (a token function) on its own timer: no socket before it, ERR_TOKEN at connectTimeout', async () => {
    const { c, o, log } = connection()
    let give: ((url: string) => void) | undefined
    o.url = (conn) => new Promise<string>((r) => (give = (t) => r(`${conn.address.url}/channel/ch?token=${t}`)))
    await settle()
    expect(FakeSocket.all).toHaveLength(0) // waiting for the token: no socket yet
    expect(c.state).toBe('connecting')
    give!('t1')
    await settle()
    expect(last().url).toBe('ws://a:1000/channel/ch?token=t1')
    last().lose()
    await vi.advanceTimersByTimeAsync(50) // the drawn backoff delay; this attempt's promise never settles
    expect(FakeSocket.all).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1999)
    expect(log.filter((l) => l === 'error ERR_TOKEN')).toEqual([])
    await vi.advanceTimersByTimeAsync(1) // connectTimeout (2000)
    expect(log.slice(-3)).toEqual(['error ERR_TOKEN', 'reconnecting', 'reconnect 2 in 100'])
    give!('late') // the timed-out attempt's token opens nothing
    await settle()
    expect(FakeSocket.all).toHaveLength(1)
    c.close()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('close() rejects what is queued, closes the socket and leaves no timer', async () => {
    const { c } = connection()
    const q = c.offer('x') as { written: Promise<string> }
    await settle()
    c.close()
    await expect(q.written).rejects.toMatchObject({ code: 'ERR_CLOSED' })
    expect(c.state).toBe('closed')
    expect(vi.getTimerCount()).toBe(0)
  })
})

/** A client stand-in for a channel: records what it dispatches and reports. */
function host(features = mod.compose([]), k: Partial<Kernel> = {}) {
  const dispatched: [string, unknown, { from: string; type: number }][] = []
  const reports: [string, object][] = []
  let seq = 0
  const h: ChannelHost = {
    k: { conn: options(), id: 'me', token: 's3cret', maxFrameBytes: 1024, maxMessageBytes: 1 << 20, codec: mod.json, features, ...k } as Kernel,
    dispatch: (_key, _any, event, data, message) => dispatched.push([event, data, message as { from: string; type: number }]),
    report: (_ch, _conn, kind, detail) => reports.push([kind, detail]),
    nextId: () => `id${++seq}`,
    callback: (fn, _what, _ch, ...args) => fn?.(...args),
  }
  return { h, dispatched, reports }
}

async function openChannel(h: ChannelHost, addresses = [mod.makeAddress('a', 1000)]) {
  const ch = new mod.Channel('room', addresses, h)
  await settle()
  last().open()
  last().whoami('me')
  return ch
}

describe('Channel: the message layer (fake socket, fake time)', () => {
  it('reads type 1 as message, type 7 as its event and other types as type:<n>; a chunk or a file without its feature is an error naming it', async () => {
    const { h, dispatched, reports } = host()
    await openChannel(h)
    const s = last()
    const frame = (type: number, data: string) => s.emit('message', { data: JSON.stringify({ type, data, from: 'peer' }) })
    frame(1, 'hello')
    frame(7, JSON.stringify({ i: 'x1', e: 'move', d: { x: 1 } }))
    frame(42, 'raw')
    frame(8, 'c1:0:2:10:abcde')
    frame(2, 'a.txt:aGk=')
    frame(7, JSON.stringify({ i: 'x2', e: 'file', d: { name: 'a', size: 1, crc32: '0', base64: 'YQ==' } }))
    expect(dispatched.map(([e, d]) => [e, d])).toEqual([
      ['message', 'hello'],
      ['move', { x: 1 }],
      ['type:42', 'raw'],
    ])
    expect(dispatched.every(([, , m]) => m.from === 'peer')).toBe(true)
    const errors = reports.filter(([k]) => k === 'error').map(([, e]) => (e as Error).message)
    expect(errors).toEqual([expect.stringContaining("'sock-client/chunks'"), expect.stringContaining("'sock-client/files'"), expect.stringContaining("'sock-client/files'")])
  })

  it('writes a message string that fits as type 1 and anything else as an envelope; too large without chunks is refused naming the feature', async () => {
    const { h } = host()
    const ch = await openChannel(h)
    await ch.signal('message', 'hi')
    await ch.signal('move', { x: 1 })
    const frames = last().frames().slice(2)
    expect(frames).toEqual([
      { type: 1, data: 'hi' },
      { type: 7, data: '{"i":"id1","e":"move","d":{"x":1}}' },
    ])
    await expect(ch.signal('big', 'x'.repeat(2000))).rejects.toThrow(/add the chunks feature from 'sock-client\/chunks'/)
  })

  it('an event addressed to another instance is dropped, one to us delivered; requests and replies go to the replies hook only (none without it); type 9 is dropped without it', async () => {
    const seen: [string, unknown][] = []
    for (const features of [mod.compose([]), mod.compose([{ name: 'replies', requests: (_ch, _conn, from, _type, env) => seen.push([from, env.id]) }])]) {
      const { h, dispatched, reports } = host(features)
      await openChannel(h)
      const s = last()
      const frame = (type: number, data: string) => s.emit('message', { data: JSON.stringify({ type, data, from: 'peer' }) })
      frame(7, '{"i":"a1","e":"move","t":"someoneElse","d":1}')
      frame(7, '{"i":"a2","e":"move","t":"me","d":2}')
      frame(7, '{"i":"a3","e":"move","t":5,"d":3}') // a t that names nobody
      frame(7, '{"i":"q1","e":"resize","q":5000,"d":{}}')
      frame(7, '{"i":"q2","e":"resize","q":5000,"t":"someoneElse","d":{}}')
      frame(7, '{"i":"r1","e":"$r","r":"q0","t":"someoneElse","d":{}}') // a reply's t is advisory: the hook matches on r
      frame(9, 'a:q0:0:r2')
      expect(dispatched.map(([e, d]) => [e, d])).toEqual([['move', 2]])
      expect(reports.filter(([k]) => k === 'error')).toEqual([])
    }
    expect(seen).toEqual([
      ['peer', 'q1'],
      ['peer', 'r1'],
    ])
  })

  it('signal(event, data, to) writes an envelope with t, a message string too', async () => {
    const { h } = host()
    const ch = await openChannel(h)
    await ch.signal('message', 'hi', 'bob')
    await ch.signal('move', { x: 1 }, 'bob')
    expect(last().frames().slice(2)).toEqual([
      { type: 7, data: '{"i":"id1","e":"message","t":"bob","d":"hi"}' },
      { type: 7, data: '{"i":"id2","e":"move","t":"bob","d":{"x":1}}' },
    ])
  })

  it('hands an envelope too large for one frame to the split hook of a feature', async () => {
    const split = vi.fn(async () => ({ sent: ['a:1000'], queued: [], failed: [] }))
    const { h } = host(mod.compose([{ name: 'test', split }]))
    const ch = await openChannel(h)
    await ch.signal('big', 'x'.repeat(2000))
    expect(split).toHaveBeenCalledOnce()
    expect((split.mock.calls[0] as unknown[])[1]).toBe('id1')
  })

  it('failover: one connection rotating through the addresses after each loss, wrapping around, each URL with id and token', async () => {
    const { h, reports } = host()
    const addresses = ['a', 'b', 'c'].map((x, i) => mod.makeAddress(x, 2000 + i))
    const ch = new mod.Channel('room', addresses, h)
    await settle()
    const urls = [last().url]
    for (let i = 0; i < 3; i++) {
      last().lose()
      await vi.advanceTimersByTimeAsync(1000)
      urls.push(last().url)
    }
    expect(urls).toEqual([
      'ws://a:2000/channel/room?id=me&token=s3cret',
      'ws://b:2001/channel/room?id=me&token=s3cret',
      'ws://c:2002/channel/room?id=me&token=s3cret',
      'ws://a:2000/channel/room?id=me&token=s3cret',
    ])
    expect(ch.connections).toHaveLength(1)
    // the loss is reported on the address lost, the retry on the address it goes to
    const lost = reports.find(([k, d]) => k === 'state' && (d as { code?: number }).code === 1006)
    expect(lost).toBeDefined()
  })

  it('ready() resolves when the connection opens and rejects when it is closed before', async () => {
    const { h } = host()
    const ch = new mod.Channel('room', [mod.makeAddress('a', 1000)], h)
    const ready = ch.ready()
    await settle()
    last().open()
    last().whoami()
    await expect(ready).resolves.toBeUndefined()
    const other = new mod.Channel('other', [mod.makeAddress('a', 1000)], h)
    const never = other.ready()
    other.close()
    await expect(never).rejects.toMatchObject({ code: 'ERR_CLOSED' })
  })
})
