// Each feature with and without it composed onto the kernel, against real servers on loopback: what a core-only
// client does with what the feature would read (an error that names the feature to add), and what it does once
// composed in. The full client (`sock-client`) has them all and is what the other test files exercise.
import { createServer, type IncomingMessage } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { SockClient as FullClient } from '../src'
import { addresses } from '../src/addresses'
import { chunks } from '../src/chunks'
import { SockClient, type CoreOptions } from '../src/client'
import { codecs } from '../src/codec'
import { files, sendFile } from '../src/files'
import { messages } from '../src/messages'
import { msgpack } from '../src/msgpack'
import { presence, presenceOf } from '../src/presence'
import { instances, rest } from '../src/rest'
import { handle, replies, request } from '../src/replies'
import { handleStream, stream, streams } from '../src/streams'
import { closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

const made: { close(): void }[] = []
afterEach(async () => {
  for (const c of made.splice(0)) c.close()
  await closeAll()
})
function core(options: CoreOptions = {}): SockClient {
  const c = new SockClient({ reconnect: { minDelay: 50, maxDelay: 200 }, ...options })
  made.push(c)
  return c
}
function full(options: ConstructorParameters<typeof FullClient>[0] = {}): FullClient {
  const c = new FullClient({ reconnect: { minDelay: 50, maxDelay: 200 }, ...options })
  made.push(c)
  return c
}
function errorsOf(c: SockClient): string[] {
  const out: string[] = []
  c.on('socket', 'error', (i) => out.push(i.error!.message))
  return out
}

async function pair(receiver: SockClient, sender: FullClient = full(), channel = 'feat') {
  const s = await startServer()
  receiver.setup(s.address)
  sender.setup(s.address)
  await Promise.all([receiver.join(channel), sender.join(channel)])
  return { s, sender }
}

describe('chunks', () => {
  it('without it, a large message received is an error naming sock-client/chunks, and one sent is refused naming it; with it both work', async () => {
    const bare = core()
    const errors = errorsOf(bare)
    const got: unknown[] = []
    bare.on('feat', 'big', (d) => got.push(d))
    const { sender } = await pair(bare)
    await sender.signal('feat', 'big', 'x'.repeat(5000))
    await waitFor(() => errors.length, 3000, 'the error')
    expect(errors[0]).toMatch(/add the chunks feature from 'sock-client\/chunks'/)
    await expect(bare.signal('feat', 'big', 'x'.repeat(5000))).rejects.toThrow(/add the chunks feature from 'sock-client\/chunks'/) // an outcome, not a throw
    expect(got).toEqual([])

    const composed = core({ features: [chunks] })
    const got2: unknown[] = []
    composed.on('feat', 'big', (d) => got2.push(d))
    const { sender: s2 } = await pair(composed)
    await s2.signal('feat', 'big', 'y'.repeat(5000))
    await composed.signal('feat', 'big', 'z'.repeat(5000)) // and it splits what it sends
    await waitFor(() => got2.length, 3000, 'the reassembled message')
    expect(got2).toEqual(['y'.repeat(5000)])
  })
})

describe('replies and streams', () => {
  it('without replies, request() and handle() throw naming sock-client/replies and requests reach no listener; with it, they work; a large request needs chunks too', async () => {
    const bare = core()
    const events: string[] = []
    bare.on('feat', (e) => events.push(e))
    const { s, sender } = await pair(bare) // a full sender: it also announces itself (presence), which the kernel drops too
    expect(() => request(bare, 'feat', 'x')).toThrow(/replies feature: add it from 'sock-client\/replies'/)
    expect(() => handle(bare, 'feat', 'x', () => 1)).toThrow(/replies feature/)
    expect(() => stream(bare, 'feat', 'x', null, { to: 'a' })).toThrow(/replies feature/)
    expect(await sender.request('feat', 'x', 1, { timeout: 200 }).catch((e) => e.code)).toBe('ERR_TIMEOUT') // the bare client cannot answer
    await sleep(50)
    expect(events).toEqual([]) // nor does the request reach its listeners

    const composed = core({ features: [replies, streams] })
    composed.setup(s.address)
    handle(composed, 'feat', 'double', (n: number) => n * 2)
    handleStream(composed, 'feat', 'count', async (reader) => {
      let n = 0
      for await (const p of reader) n += p.length
      return n
    })
    await composed.join('feat')
    expect(await sender.request('feat', 'double', 21, { to: composed.idOf('feat') })).toBe(42)
    expect(await request(composed, 'feat', 'double', 2, { to: sender.idOf('feat') }).catch((e) => e.replyCode)).toBe(2) // sender has no handler
    const w = sender.stream('feat', 'count', null, { to: composed.idOf('feat')! })
    await w.write('abc')
    await w.close()
    expect(await w.result).toBe(3)
    // a request too large for one frame, on a client without chunks: refused naming the chunks feature
    await expect(request(composed, 'feat', 'double', 'x'.repeat(5000))).rejects.toThrow(/sock-client\/chunks/)
  })
})

describe('presence', () => {
  it("without it, a peer's announcements reach no listener and raise no error; with it, the join and the leave show at once", async () => {
    const bare = core()
    const events: string[] = []
    const errors = errorsOf(bare)
    bare.on('feat', (e) => events.push(e))
    const { s, sender } = await pair(bare) // a full sender announces its join...
    await sender.signal('feat', 'message', 'after the join')
    sender.leave('feat') // ...and its leave
    await waitFor(() => events.length, 3000, 'the message')
    await sleep(100)
    expect(events).toEqual(['message'])
    expect(errors).toEqual([])

    const composed = core({ features: [presence] })
    composed.setup(s.address)
    const seen: string[] = []
    const p = presenceOf(composed, 'feat')
    p.on('join', (i) => seen.push(`join ${i.id}`))
    p.on('leave', (i) => seen.push(`leave ${i.id}`))
    await composed.join('feat')
    const late = full({ id: 'late' })
    late.setup(s.address)
    await late.join('feat')
    await waitFor(() => seen.includes('join late'), 2000, 'the announced join') // long before the 5 s REST poll
    late.leave('feat')
    await waitFor(() => seen.includes('leave late'), 2000, 'the announced leave')
  })
})

describe('composition', () => {
  it('a feature given twice (or again to the full client, which has it) composes once: one announcement per join', async () => {
    const s = await startServer()
    const peer = await rawPeer(`${s.url}/channel/feat?id=watcher`)
    // The full client already has presence: given again, its watch hook would announce every join twice.
    const twice = full({ features: [presence], id: 'twice' })
    twice.setup(s.address)
    await twice.join('feat')
    const again = core({ features: [presence, presence], id: 'again' })
    again.setup(s.address)
    await again.join('feat')
    await sleep(100)
    const joins = peer.frames.filter((f) => f.type === 7 && f.data.includes('sock:presence')).map((f) => f.from)
    expect(joins).toEqual(['twice', 'again'])
  })

  it('options.features that is not an array of features is a ValidationError naming it, on the kernel and the full client', () => {
    for (const features of ['chunks', [undefined], [{}], {}]) {
      expect(() => core({ features: features as never }), String(features)).toThrow(/options.features must be an array of features/)
      expect(() => full({ features: features as never }), String(features)).toThrow(/options.features must be an array of features/)
    }
  })
})

describe('files', () => {
  it('without it, a file received (type 2) is an error naming sock-client/files; with it, event file delivers the bytes', async () => {
    const bare = core()
    const errors = errorsOf(bare)
    const { sender } = await pair(bare)
    await sender.sendFile('feat', 'a.txt', new TextEncoder().encode('hi'))
    await waitFor(() => errors.length, 3000, 'the error')
    expect(errors[0]).toMatch(/add the files feature from 'sock-client\/files'/)

    const composed = core({ features: [files] })
    const got: { name: string; size: number }[] = []
    composed.on('feat', 'file', (f) => got.push(f))
    const { sender: s2 } = await pair(composed)
    await s2.sendFile('feat', 'b.txt', new TextEncoder().encode('hello'))
    await waitFor(() => got.length, 3000, 'the file')
    expect(got[0]).toMatchObject({ name: 'b.txt', size: 5 })
    // sendFile() works on any client; a file too large for one frame needs chunks as well
    await expect(sendFile(composed, 'feat', 'c.bin', new Uint8Array(10_000))).rejects.toThrow(/sock-client\/chunks/)
    const both = core({ features: [files, chunks] })
    await pair(both)
    await expect(sendFile(both, 'feat', 'c.bin', new Uint8Array(10_000))).resolves.toMatchObject({ sent: [expect.any(String)] })
  })
})

describe('addresses', () => {
  it('without it, setup() takes one address and says which feature takes lists; with it, broadcast on two servers delivers once', async () => {
    const [a, b] = [await startServer(), await startServer()]
    expect(() => core().setup([a.address, b.address])).toThrow(/addresses feature from 'sock-client\/addresses'/)
    expect(() => core().setup('127.0.0.1', a.port)).not.toThrow() // (host, port) is one address: the core takes it

    const composed = core({ features: [addresses] })
    composed.setup([a.address, b.address])
    const got: unknown[] = []
    composed.on('feat', 'n', (d) => got.push(d))
    await composed.join('feat')
    await waitFor(() => composed.connectionsOf('feat').every((x) => x.state === 'open'), 3000, 'both servers')
    const peer = full()
    peer.setup([a.address, b.address])
    await peer.join('feat')
    await waitFor(() => peer.connectionsOf('feat').every((x) => x.state === 'open'), 3000, 'the peer on both')
    await peer.signal('feat', 'n', 1)
    await waitFor(() => got.length, 3000, 'the event')
    await sleep(100)
    expect(got).toEqual([1]) // over two servers, once
  })
})

describe('codecs', () => {
  it('without it, an envelope in another codec is an error naming sock-client/codecs; with it, msgpack decodes', async () => {
    const bare = core()
    const errors = errorsOf(bare)
    const { sender } = await pair(bare, full({ codec: msgpack() }))
    await sender.signal('feat', 'when', { at: new Date(0) })
    await waitFor(() => errors.length, 3000, 'the error')
    expect(errors[0]).toMatch(/codecs feature from 'sock-client\/codecs'/)

    const composed = core({ features: [codecs] })
    const got: unknown[] = []
    composed.on('feat', 'when', (d) => got.push(d))
    const { sender: s2 } = await pair(composed, full({ codec: msgpack() }))
    await s2.signal('feat', 'when', { at: new Date(0) })
    await waitFor(() => got.length, 3000, 'the event')
    expect((got[0] as { at: Date }).at).toBeInstanceOf(Date)
  })
})

describe('rest and messages', () => {
  it('instances() and messages() work on any client; the registration check runs only with the rest feature', async () => {
    const s = await startServer()
    // A REST route on another port that counts the registration checks the clients make.
    const checks: string[] = []
    const http = createServer((req: IncomingMessage, res) => {
      checks.push(req.url ?? '')
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ channel: 'feat', id: 'x', created_at: new Date(0).toISOString() }))
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    made.push({ close: () => http.close() })
    const bare = core()
    bare.setup(s.address)
    await bare.join('feat')
    expect((await instances(bare, 'feat')).map((i) => i.id)).toEqual([bare.idOf('feat')])
    const it = messages(bare, 'feat', 'message')
    const peer = full()
    peer.setup(s.address)
    await peer.join('feat')
    await peer.signal('feat', 'message', 'through the iterator')
    expect((await it.next()).value?.data).toBe('through the iterator')
    await it.return!()

    // The check goes to the address's REST routes: point both clients at a server whose REST counts them.
    const port = (http.address() as { port: number }).port
    const { WebSocketServer } = await import('ws')
    const wss = new WebSocketServer({ server: http })
    wss.on('connection', (ws) => ws.on('message', (d) => (JSON.parse(String(d)).type ?? 0) === 0 && ws.send('{"type":0,"data":"x","from":"x"}')))
    made.push({ close: () => wss.close() })
    const withRest = core({ features: [rest], registrationCheck: 50 } as CoreOptions)
    const without = core({ registrationCheck: 50 } as CoreOptions)
    withRest.setup('127.0.0.1', port)
    without.setup('127.0.0.1', port)
    await Promise.all([withRest.join('feat'), without.join('other')])
    await sleep(300)
    expect(checks.filter((u) => u.startsWith('/api/channel/feat/')).length).toBeGreaterThan(1)
    expect(checks.filter((u) => u.startsWith('/api/channel/other/'))).toEqual([])
  })
})
