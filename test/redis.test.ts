// Scale-out: several embedded Sock servers sharing their channels through a real redis-server on loopback.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { SockClient } from '../src'
import { createSockServer, type SockServer } from '../src/server'
import { rawPeer, waitFor, type RawPeer } from './helpers'
import { freePort, startRedis, stopRedis } from './redis-helpers'

const WINDOW = 1500 // ping window and registry TTL of every node here, in ms

let redisPort = 0
let redis: ChildProcess
let redisUrl = ''
const nodes: SockServer[] = []
const peers: RawPeer[] = []
const timers: ReturnType<typeof setInterval>[] = []
const clients: SockClient[] = []
const children: ChildProcess[] = []

async function node(options: { pingWindow?: number } = {}): Promise<SockServer> {
  const s = await createSockServer({ port: 0, redis: redisUrl, pingWindow: WINDOW, ...options })
  nodes.push(s)
  return s
}

/** A raw Sock peer that keeps itself alive (pings well inside the window). */
async function peer(s: SockServer, channel: string, id: string, opts: { binary?: boolean } = {}): Promise<RawPeer> {
  const p = await rawPeer(`${s.url}/channel/${channel}?id=${id}`, opts)
  peers.push(p)
  if (p.ws.readyState === WebSocket.OPEN) {
    p.send({ type: -1, data: '' })
    timers.push(setInterval(() => p.ws.readyState === WebSocket.OPEN && p.send({ type: -1, data: '' }), 200))
    // In the channel once the server answers who-am-I: the id is settled and the node subscribed after the socket
    // opened (a frame published before could miss this peer, as it would any client not yet joined).
    p.send({ type: 0, data: '' })
    const answered = p.next((f) => f?.type === 0, 5000)
    answered.catch(() => {}) // when the close wins, this one times out later: nobody waits for it
    await Promise.race([answered, p.closed]) // or refused (a duplicate id is refused after the open)
  }
  return p
}

async function list(s: SockServer, channel: string): Promise<string[]> {
  const res = await fetch(`${s.httpUrl}/api/channel/${channel}`)
  if (res.status === 404) return []
  expect(res.status).toBe(200)
  return ((await res.json()) as { id: string }[]).map((r) => r.id).sort()
}

/** A node in its own process, to be killed with SIGKILL. */
async function childNode(options: object): Promise<{ child: ChildProcess; url: string; httpUrl: string }> {
  const script = fileURLToPath(new URL('./fixtures/sock-node.mjs', import.meta.url))
  const child = spawn(process.execPath, [script, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const info = await new Promise<{ port: number; ioredis: boolean }>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!))
    })
    child.once('exit', (code) => reject(new Error(`node process exited (${code}): ${out}`)))
  })
  return { child, url: `ws://127.0.0.1:${info.port}`, httpUrl: `http://127.0.0.1:${info.port}` }
}

beforeAll(async () => {
  redisPort = await freePort()
  redisUrl = `redis://127.0.0.1:${redisPort}`
  redis = await startRedis(redisPort)
})

afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t)
  for (const c of clients.splice(0)) c.close()
  for (const p of peers.splice(0)) p.ws.terminate()
  for (const c of children.splice(0)) c.kill('SIGKILL')
  await Promise.all(nodes.splice(0).map((s) => s.close()))
})

afterAll(async () => {
  if (redis) await stopRedis(redis)
})

describe('scale-out through Redis', () => {
  it('relays across nodes exactly once, with from preserved and no echo to the sender on any node', async () => {
    const [a, b, c] = [await node(), await node(), await node()]
    const a1 = await peer(a, 'relay', 'a1')
    const a2 = await peer(a, 'relay', 'a2')
    const b1 = await peer(b, 'relay', 'b1', { binary: true })
    const c1 = await peer(c, 'relay', 'c1')
    const other = await peer(b, 'elsewhere', 'x1')
    for (const n of ['m1', 'm2', 'm3', 'end']) a1.send({ type: 1, data: n })
    const relayed = (p: RawPeer) => p.frames.filter((f) => f?.type === 1)
    for (const p of [a2, b1, c1]) {
      await p.next((f) => f?.data === 'end')
      expect(relayed(p)).toEqual([
        { type: 1, data: 'm1', from: 'a1' },
        { type: 1, data: 'm2', from: 'a1' },
        { type: 1, data: 'm3', from: 'a1' },
      ])
    }
    // A frame from another node arrives in the opcode its sender used, from preserved.
    b1.send({ type: 5, data: 'back' })
    for (const p of [a1, a2, c1]) expect(await p.next((f) => f?.type === 5)).toEqual({ type: 5, data: 'back', from: 'b1' })
    // Everything a1 sent was published before b1's frame, so an echo would have reached a1 by now.
    expect(a1.frames.filter((f) => f?.from === 'a1')).toEqual([])
    expect(b1.frames.filter((f) => f?.from === 'b1')).toEqual([])
    expect(other.frames).toEqual([])
  })

  it('lists the instances of every node over REST, and forgets one that leaves', async () => {
    const [a, b, c] = [await node(), await node(), await node()]
    await peer(a, 'rest', 'ra')
    const rb = await peer(b, 'rest', 'rb')
    await peer(c, 'rest', 'rc')
    for (const s of [a, b, c]) expect(await list(s, 'rest')).toEqual(['ra', 'rb', 'rc'])
    const one = await fetch(`${c.httpUrl}/api/channel/rest/ra`)
    expect(one.status).toBe(200)
    const rec = (await one.json()) as { channel: string; id: string; created_at: string }
    expect(rec).toMatchObject({ channel: 'rest', id: 'ra' })
    expect(rec.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    expect((await fetch(`${a.httpUrl}/api/channel/rest/nobody`)).status).toBe(404)
    expect((await fetch(`${a.httpUrl}/api/channel/nochannel`)).status).toBe(404)
    expect((await a.allInstances('rest')).map((r) => r.id).sort()).toEqual(['ra', 'rb', 'rc'])
    expect(a.instances('rest').map((r) => r.id)).toEqual(['ra']) // the local view stays local

    rb.close()
    await waitFor(async () => (await list(a, 'rest')).join() === 'ra,rc', 3000, 'rb to leave the registry')
    expect((await fetch(`${a.httpUrl}/api/channel/rest/rb`)).status).toBe(404)

    // SockClient's REST helper, asked through one node, sees every node's instances.
    const client = new SockClient({ WebSocket: WebSocket as never })
    clients.push(client)
    client.setup(b.address)
    expect((await client.instances('rest')).map((i) => i.id).sort()).toEqual(['ra', 'rc'])
  })

  it('rejects a duplicate id across nodes (1008), also when two nodes race for it', async () => {
    const [a, b, c] = [await node(), await node(), await node()]
    const first = await peer(a, 'dup', 'same')
    const second = await peer(b, 'dup', 'same')
    expect(await second.closed).toEqual({ code: 1008, reason: expect.stringContaining('duplicate id') })
    expect(first.ws.readyState).toBe(WebSocket.OPEN)

    const racers = await Promise.all([peer(b, 'dup', 'race'), peer(c, 'dup', 'race'), peer(a, 'dup', 'race')])
    await waitFor(() => racers.filter((p) => p.ws.readyState === WebSocket.CLOSED).length === 2, 3000, 'two racers rejected')
    for (const p of racers.filter((p) => p.ws.readyState === WebSocket.CLOSED)) expect((await p.closed).code).toBe(1008)
    expect(racers.filter((p) => p.ws.readyState === WebSocket.OPEN)).toHaveLength(1)

    // Once the holder leaves, the id is free on every node.
    first.close()
    await waitFor(async () => !(await list(c, 'dup')).includes('same'), 3000, 'the id to be released')
    const again = await peer(c, 'dup', 'same')
    expect(again.ws.readyState).toBe(WebSocket.OPEN)
  })

  it('removes the instances of a node killed with SIGKILL within one ping window', async () => {
    const a = await node()
    const victim = await childNode({ redis: redisUrl, pingWindow: WINDOW })
    const onA = await peer(a, 'death', 'survivor')
    const p = await rawPeer(`${victim.url}/channel/death?id=doomed`)
    peers.push(p)
    p.send({ type: -1, data: '' })
    p.send({ type: 0, data: '' })
    await p.next((f) => f?.type === 0) // answered once admitted: its id is claimed in Redis by then
    expect(await list(a, 'death')).toEqual(['doomed', 'survivor'])
    p.send({ type: 1, data: 'last words' })
    expect(await onA.next((f) => f?.type === 1)).toEqual({ type: 1, data: 'last words', from: 'doomed' })

    victim.child.kill('SIGKILL')
    await new Promise((r) => victim.child.once('exit', r))
    // Its registrations expire with the registry TTL, which is one ping window.
    await waitFor(async () => (await list(a, 'death')).join() === 'survivor', WINDOW + 500, 'the dead node instances to expire')
  })

  it('deregisters at once on a graceful close, and keeps the registry on an abrupt one until it expires', async () => {
    const [a, b, c] = [await node(), await node(), await node()]
    await peer(a, 'bye', 'stay')
    await peer(b, 'bye', 'graceful')
    await peer(c, 'bye', 'abrupt')
    expect(await list(a, 'bye')).toEqual(['abrupt', 'graceful', 'stay'])
    await b.close()
    expect(await list(a, 'bye')).toEqual(['abrupt', 'stay'])
    await c.close({ abrupt: true })
    await waitFor(async () => (await list(a, 'bye')).join() === 'stay', WINDOW + 500, 'the abrupt node instances to expire')
  })

  it('recovers subscriptions and registry after a Redis restart', async () => {
    const [a, b] = [await node(), await node()]
    const states: string[] = []
    a.on('redis', (info) => states.push(info.state))
    const pa = await peer(a, 'phoenix', 'pa')
    const pb = await peer(b, 'phoenix', 'pb')
    pa.send({ type: 1, data: 'before' })
    expect(await pb.next((f) => f?.type === 1)).toMatchObject({ data: 'before', from: 'pa' })

    await stopRedis(redis)
    // While Redis is away: a join is refused as retryable (1013), REST says 503, connected instances stay.
    const refused = await peer(b, 'phoenix', 'late')
    expect(await refused.closed).toEqual({ code: 1013, reason: 'registry unavailable: try again later' })
    expect((await fetch(`${a.httpUrl}/api/channel/phoenix`)).status).toBe(503)
    expect(pa.ws.readyState).toBe(WebSocket.OPEN)
    redis = await startRedis(redisPort) // empty: no keys, no subscribers
    await waitFor(() => states.includes('ready'), 5000, 'node a to reconnect to Redis')
    expect(states[0]).toBe('reconnecting')
    // The registry comes back from the nodes' re-registration ...
    await waitFor(async () => (await list(b, 'phoenix')).join() === 'pa,pb', 5000, 'both instances re-registered')
    // ... and relay works both ways again (frames sent while Redis was away may be lost: keep sending).
    let n = 0
    await waitFor(() => (pa.send({ type: 1, data: `after${n++}` }), pb.frames.some((f) => f?.from === 'pa' && f.data.startsWith('after'))), 5000, 'a -> b relay')
    await waitFor(() => (pb.send({ type: 1, data: `back${n++}` }), pa.frames.some((f) => f?.from === 'pb' && f.data.startsWith('back'))), 5000, 'b -> a relay')
    // The duplicate check works on the new Redis too.
    const dup = await peer(a, 'phoenix', 'pb')
    expect((await dup.closed).code).toBe(1008)
    // And a newcomer on the node whose join was refused gets in and receives.
    const late = await peer(b, 'phoenix', 'late')
    pa.send({ type: 1, data: 'welcome' })
    expect(await late.next((f) => f?.type === 1 && f.data === 'welcome')).toMatchObject({ from: 'pa' })
  })

  it('does not load a Redis client without the redis option (and does with it)', async () => {
    const script = fileURLToPath(new URL('./fixtures/sock-node.mjs', import.meta.url))
    const run = (options: object) => {
      const r = spawnSync(process.execPath, [script, JSON.stringify(options)], { env: { ...process.env, EXIT: '1' }, encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
      return JSON.parse(r.stdout.split('\n')[0]!) as { ioredis: boolean }
    }
    expect(run({}).ioredis).toBe(false)
    expect(run({ redis: redisUrl }).ioredis).toBe(true)
  })

  it('rejects a bad redis option with a clear error that shows no password', async () => {
    await expect(createSockServer({ redis: 'http://127.0.0.1:6379' })).rejects.toThrow(/invalid redis .*use a URL like redis:\/\//)
    await expect(createSockServer({ redis: 42 as never })).rejects.toThrow(TypeError)
    const port = await freePort() // nothing listens there
    const err = await createSockServer({ redis: `redis://:hunter2secret@127.0.0.1:${port}` }).catch((e: Error) => e)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1/)
    expect((err as Error).message).not.toContain('hunter2secret')
  })
})

describe('SockClient across Redis-backed nodes', () => {
  it('failover: keeps its channel (and its id) when its node dies', async () => {
    const a = await node()
    const doomed = await childNode({ redis: redisUrl, pingWindow: WINDOW })
    const listener = await peer(a, 'fo', 'listener')
    const client = new SockClient({ id: 'mover', WebSocket: WebSocket as never, pingInterval: 200, probeTimeout: 1000, reconnect: { minDelay: 20, maxDelay: 100 } })
    clients.push(client)
    client.setup([doomed.url, a.url], 'failover')
    const got: string[] = []
    client.on('fo', 'message', (text) => got.push(text))
    await client.join('fo')
    expect(a.instances('fo').map((i) => i.id)).toEqual(['listener']) // the client is on the doomed node
    await client.signal('fo', 'message', 'one')
    expect(await listener.next((f) => f?.type === 1)).toEqual({ type: 1, data: 'one', from: 'mover' })

    doomed.child.kill('SIGKILL')
    // It moves to node a, under the same id (the dead node's claim is taken over), and messages flow again.
    await waitFor(() => a.instances('fo').some((i) => i.id === 'mover'), 5000, 'the client to fail over to node a')
    await client.signal('fo', 'message', 'two')
    expect(await listener.next((f) => f?.type === 1)).toEqual({ type: 1, data: 'two', from: 'mover' })
    listener.send({ type: 1, data: 'welcome' })
    await waitFor(() => got.includes('welcome'), 3000, 'the client to receive on its new node')
    expect(client.stateOf('fo')).toBe('open')
  })

  it('broadcast: connected to three nodes, delivers each event once', async () => {
    const [a, b, c] = [await node(), await node(), await node()]
    const sender = new SockClient({ WebSocket: WebSocket as never, pingInterval: 300 })
    const receiver = new SockClient({ WebSocket: WebSocket as never, pingInterval: 300 })
    clients.push(sender, receiver)
    for (const cl of [sender, receiver]) cl.setup([a.address, b.address, c.address], 'broadcast')
    const got: unknown[] = []
    const mine: unknown[] = []
    receiver.on('bc', 'evt', (data) => got.push(data))
    sender.on('bc', 'evt', (data) => mine.push(data))
    await Promise.all([receiver.join('bc'), sender.join('bc')])
    for (let i = 0; i < 5; i++) await sender.signal('bc', 'evt', { i })
    await sender.signal('bc', 'evt', { i: 'end' })
    await waitFor(() => got.some((d) => (d as { i: unknown }).i === 'end'), 3000, 'the last event')
    // Each event reached the receiver 3 (sender connections) x 3 (receiver connections) times on the wire.
    expect(got).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }, { i: 'end' }])
    expect(mine).toEqual([])
  })
})
