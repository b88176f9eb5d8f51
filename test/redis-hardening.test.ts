// Scale-out under failure: failed handshakes, a Redis that stops answering, instances that die silently.
import { execFileSync, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createSockServer, redactRedisUrl, type SockServer, type SockServerOptions } from '../src/server'
import { rawPeer, sleep, waitFor, type RawPeer } from './helpers'
import { blackHoleProxy, rawRequest, upgradeRequest } from './raw-http'
import { freePort, secretUrls, startRedis, stopRedis } from './redis-helpers'

const WINDOW = 1500 // ping window and registry TTL of every node here, in ms

let redis: ChildProcess
let redisUrl = ''
const nodes: SockServer[] = []
const peers: RawPeer[] = []
const timers: ReturnType<typeof setInterval>[] = []

async function node(options: SockServerOptions = {}): Promise<SockServer> {
  const s = await createSockServer({ port: 0, redis: redisUrl, pingWindow: WINDOW, ...options })
  nodes.push(s)
  return s
}

/** A raw peer, admitted (its who-am-I answered) unless refused; it keeps itself alive unless `quiet`. */
async function peer(s: SockServer | string, channel: string, id: string, opts: { quiet?: boolean } = {}): Promise<RawPeer> {
  const p = await rawPeer(`${typeof s === 'string' ? s : s.url}/channel/${channel}?id=${id}`)
  peers.push(p)
  if (p.ws.readyState !== WebSocket.OPEN) return p
  if (!opts.quiet) {
    p.send({ type: -1, data: '' })
    timers.push(setInterval(() => p.ws.readyState === WebSocket.OPEN && p.send({ type: -1, data: '' }), 200))
  }
  p.send({ type: 0, data: '' })
  await Promise.race([p.next((f) => f?.type === 0, 5000), p.closed])
  return p
}

const admitted = (p: RawPeer) => p.ws.readyState === WebSocket.OPEN

async function list(s: SockServer, channel: string): Promise<string[]> {
  const res = await fetch(`${s.httpUrl}/api/channel/${channel}`)
  if (res.status === 404) return []
  expect(res.status).toBe(200)
  return ((await res.json()) as { id: string }[]).map((r) => r.id).sort()
}

beforeAll(async () => {
  const port = await freePort()
  redisUrl = `redis://127.0.0.1:${port}`
  redis = await startRedis(port)
})

afterEach(async () => {
  redis.kill('SIGCONT')
  for (const t of timers.splice(0)) clearInterval(t)
  for (const p of peers.splice(0)) p.ws.terminate()
  await Promise.all(nodes.splice(0).map((s) => s.close()))
})

afterAll(async () => {
  if (redis) await stopRedis(redis)
})

describe('Redis: an id is claimed only for a handshake that succeeded', () => {
  it.each([
    ['a bad Sec-WebSocket-Key', ['Sec-WebSocket-Key: abc']],
    ['an unknown WebSocket version', ['Sec-WebSocket-Version: 12']],
    ['a bad Sec-WebSocket-Protocol', ['Sec-WebSocket-Protocol: a b']],
  ])('leaves no registration after an upgrade with %s (it used to block the id on every node, for good)', async (_name, extra) => {
    const [a, b] = [await node(), await node()]
    const refused = await rawRequest(a.port, upgradeRequest('/channel/ghost?id=ghost', extra))
    expect(refused.status).toBeGreaterThanOrEqual(400)
    await sleep(WINDOW) // the old claim would still be there: refreshed every quarter window
    expect(await list(b, 'ghost')).toEqual([])
    const p = await peer(b, 'ghost', 'ghost')
    expect(admitted(p)).toBe(true)
  })

  it('releases the claim of a client that leaves while it is being admitted', async () => {
    const [a, b] = [await node(), await node()]
    for (let i = 0; i < 20; i++) {
      const p = await rawPeer(`${a.url}/channel/brief?id=brief${i}`)
      p.ws.terminate() // gone right after the handshake, while the claim is under way
    }
    await waitFor(async () => (await list(b, 'brief')).length === 0, WINDOW * 2, 'every claim to be released')
    expect(a.instances('brief')).toEqual([])
  })
})

describe('Redis: every command has a deadline', () => {
  it('answers REST with 503 and closes joins with 1013 within about a second while Redis is stopped, and recovers', async () => {
    const [a, b] = [await node(), await node()]
    const states: string[] = []
    a.on('redis', (info) => states.push(info.state))
    const pa = await peer(a, 'stall', 'pa')
    const pb = await peer(b, 'stall', 'pb')
    redis.kill('SIGSTOP')
    try {
      let t0 = performance.now()
      const res = await fetch(`${a.httpUrl}/api/channel/stall`, { signal: AbortSignal.timeout(4000) }) // before: hung for as long as Redis did
      expect(res.status).toBe(503)
      console.log(`Redis stopped: REST 503 after ${Math.round(performance.now() - t0)} ms`)
      expect(performance.now() - t0).toBeLessThan(3000)
      t0 = performance.now()
      const late = await rawPeer(`${b.url}/channel/stall?id=late`)
      peers.push(late)
      expect(await Promise.race([late.closed, sleep(4000).then(() => 'still waiting')])).toEqual({ code: 1013, reason: 'registry unavailable: try again later' })
      console.log(`Redis stopped: join closed 1013 after ${Math.round(performance.now() - t0)} ms`)
      expect(performance.now() - t0).toBeLessThan(3000)
      // Once Redis is known to stall, a request does not wait for it at all.
      t0 = performance.now()
      expect((await fetch(`${b.httpUrl}/api/channel/stall/pa`, { signal: AbortSignal.timeout(4000) })).status).toBe(503)
      expect(performance.now() - t0).toBeLessThan(1000)
      expect(admitted(pa) && admitted(pb)).toBe(true) // connected instances stay
      expect(states).toContain('error')
    } finally {
      redis.kill('SIGCONT')
    }
    await waitFor(async () => (await fetch(`${a.httpUrl}/api/channel/stall`)).status === 200, 5000, 'REST to answer again')
    await waitFor(() => states.includes('ready'), 5000, 'node a to report Redis ready')
    expect(await list(a, 'stall')).toEqual(['pa', 'pb'])
    const again = await peer(b, 'stall', 'late')
    expect(admitted(again)).toBe(true)
    pa.send({ type: 1, data: 'back' })
    expect(await again.next((f) => f?.type === 1)).toEqual({ type: 1, data: 'back', from: 'pa' })
  })

  it('lets one connection have 16 REST requests waiting for Redis at most: the rest are answered 503 at once', async () => {
    const a = await node()
    await peer(a, 'pipe', 'here')
    redis.kill('SIGSTOP')
    try {
      // 2000 pipelined requests in one write, all parsed before any Redis deadline passes.
      const answer = await rawRequest(a.port, 'GET /api/channel/pipe HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2000), { timeout: 8000, until: (t) => t.split('HTTP/1.1 ').length > 2000 })
      const bodies = answer.text.split('HTTP/1.1 ').slice(1)
      expect(bodies).toHaveLength(2000)
      expect(bodies.every((b) => b.startsWith('503 '))).toBe(true)
      // The first 16 waited for Redis (its deadline); those parsed meanwhile were answered at once. Before, every
      // one of them held a request, a response and a Redis command until Redis answered or timed out.
      expect(bodies.slice(0, 16).every((b) => b.includes('Registry unavailable'))).toBe(true)
      expect(bodies[16]).toContain('Too many requests pending')
      expect(bodies.filter((b) => b.includes('Too many requests pending')).length).toBeGreaterThan(100)
    } finally {
      redis.kill('SIGCONT')
    }
  })

  it('gives up on a Redis that accepts connections and never answers', async () => {
    const mute: Server = createServer(() => {}) // accepts, says nothing
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r))
    try {
      const port = (mute.address() as { port: number }).port
      const t0 = performance.now()
      const err = await createSockServer({ port: 0, redis: `redis://127.0.0.1:${port}` }).catch((e: Error) => e)
      expect(err).toBeInstanceOf(Error)
      // ioredis' ready check misses its command deadline, or the connect deadline (5 s) ends it: before, it hung.
      expect((err as Error).message).toMatch(/^createSockServer: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: \S/)
      expect(performance.now() - t0).toBeLessThan(9000)
    } finally {
      mute.close()
    }
  })
})

describe('Redis: an id survives its holder dying silently, across nodes', () => {
  it('lets a join on another node take the id of a stale instance, and closes the old one', async () => {
    const [a, b] = [await node(), await node()]
    const replaced: unknown[] = []
    b.on('replace', (info) => replaced.push(info))
    const old = await peer(a, 'roam', 'roamer', { quiet: true }) // never pings: stale after one window
    const first = await peer(b, 'roam', 'roamer')
    expect(first.ws.readyState).not.toBe(WebSocket.OPEN) // still live: refused
    expect((await first.closed).code).toBe(1008)
    await sleep(WINDOW + 600) // stale by now, and marked so in Redis
    const p = await peer(b, 'roam', 'roamer')
    expect(admitted(p)).toBe(true)
    expect(replaced).toEqual([{ channel: 'roam', id: 'roamer', why: 'stale' }])
    expect(await old.closed).toEqual({ code: 1008, reason: expect.stringMatching(/^replaced/) })
    expect(await list(a, 'roam')).toEqual(['roamer'])
    expect(a.instances('roam')).toEqual([])
  })

  it('frees the id of an instance whose socket died (a black hole) within about one ping window, for a join on another node', async () => {
    const [a, b] = [await node({ pongTimeout: 500 }), await node()]
    const proxy = await blackHoleProxy(a.port)
    const gone: string[] = []
    a.on('disconnect', ({ id }) => gone.push(id))
    try {
      const old = await peer(`ws://127.0.0.1:${proxy.port}`, 'bh', 'mover')
      expect(admitted(old)).toBe(true)
      proxy.dark()
      const t0 = performance.now()
      let p: RawPeer | undefined
      while (!p || !admitted(p)) {
        if (performance.now() - t0 > WINDOW * 3) throw new Error('the id was not freed within three ping windows')
        p = await peer(b, 'bh', 'mover')
        if (!admitted(p)) await sleep(200)
      }
      console.log(`black hole on node a: the id was free for node b after ${Math.round(performance.now() - t0)} ms (ping window ${WINDOW} ms)`)
      expect(gone).toEqual(['mover'])
      expect(await list(b, 'bh')).toEqual(['mover'])
    } finally {
      await proxy.close()
    }
  })
})

describe('Redis: no secret in an error or an event', () => {
  it('shows no password in the error of createSockServer({ redis }), whatever the URL', async () => {
    const dead = await freePort()
    const live = Number(new URL(redisUrl).port)
    const messages: string[] = []
    for (const url of secretUrls(dead, live)) {
      const r = await createSockServer({ port: 0, redis: url }).then(
        (s) => (nodes.push(s), `up: ${redactRedisUrl(url)}`),
        (e: Error) => e.message,
      )
      messages.push(r)
    }
    // Before: 7 of these 14 showed it: a '/' in the password, a lone userinfo, `?password=` (twice), no '//', a
    // wrong scheme with a query, the password read as a port and a path.
    expect(messages.filter((m) => /hunter2|sEcret/i.test(m))).toEqual([])
    expect(messages.filter((m) => m.startsWith('up: '))).toEqual([`up: redis://127.0.0.1:${live}/?password=***`])
    expect(messages).toContain(`createSockServer: invalid redis redis://:***@127.0.0.1:${dead}: its user or password has a malformed %-escape (write % as %25)`)
  })

  it('shows no password in the redis event when Redis starts refusing it', async () => {
    const port = await freePort()
    const pw = 'hunter2sEcret'
    const locked = await startRedis(port, ['--requirepass', pw])
    try {
      const s = await createSockServer({ port: 0, redis: `redis://:${pw}@127.0.0.1:${port}`, pingWindow: WINDOW })
      nodes.push(s)
      const events: string[] = []
      s.on('redis', (info) => events.push(`${info.state}: ${info.error?.message ?? ''}`))
      const cli = (...args: string[]) => execFileSync('redis-cli', ['-p', String(port), ...args], { env: { ...process.env, REDISCLI_AUTH: pw } })
      cli('CONFIG', 'SET', 'requirepass', 'another')
      execFileSync('redis-cli', ['-p', String(port), 'CLIENT', 'KILL', 'TYPE', 'normal'], { env: { ...process.env, REDISCLI_AUTH: 'another' } })
      await waitFor(() => events.some((e) => e.startsWith('error: ')), 5000, 'an error event')
      expect(events.filter((e) => /hunter2|sEcret/i.test(e))).toEqual([])
    } finally {
      await stopRedis(locked)
    }
  })
})
