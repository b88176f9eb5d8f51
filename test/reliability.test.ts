import { createServer, type Server } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { WebSocket as WsSocket } from 'ws'
import { isSockError } from '../src'
import { backoffCap, backoffDelay, DEFAULT_RECONNECT } from '../src/protocol-entry'
import { createSockServer } from '../src/server'
import { answerWhoami, client, closeAll, DIST, record, runScript, scripted, sleep, startServer, waitFor } from './helpers'

const closers: (() => unknown)[] = []

afterEach(async () => {
  for (const f of closers.splice(0)) await f()
  await closeAll()
})

/** A scripted ws server (helpers' `scripted`), each connection numbered. */
const hostile = (onConnection: (ws: WsSocket) => void) => scripted(onConnection)
const whoami = answerWhoami

describe('retry policy (pure)', () => {
  it('grows the jitter window by factor up to maxDelay, and jitters every retry, the first included', () => {
    const o = { ...DEFAULT_RECONNECT, minDelay: 100, maxDelay: 1000, factor: 2 }
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffCap(a, o))).toEqual([100, 200, 400, 800, 1000, 1000])
    expect(backoffDelay(1, o, () => 0)).toBe(0)
    expect(backoffDelay(1, o, () => 0.999)).toBe(100)
    expect(backoffDelay(3, o, () => 0.5)).toBe(200)
    const first = Array.from({ length: 2000 }, () => backoffDelay(1, o))
    expect(Math.min(...first)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...first)).toBeLessThanOrEqual(100)
    expect(new Set(first).size).toBeGreaterThan(50) // spread, not one value
  })
})

describe('reconnect policy against real servers', () => {
  it('a server that accepts and drops at once: attempts follow the backoff, no tight loop', async () => {
    let accepted = 0
    const { address } = await hostile((ws) => {
      accepted++
      ws.terminate()
    })
    const c = client({ reconnect: { minDelay: 40, maxDelay: 400, factor: 2, minUptime: 1000 } })
    const rec = record(c, 'reconnect')
    c.setup(address)
    c.on('chat', () => {})
    await sleep(1500)
    const attempts = rec.map(([, i]) => i.attempt)
    expect(attempts).toEqual(attempts.map((_, k) => k + 1)) // the counter never resets: no connection lasted minUptime
    expect(accepted).toBeLessThan(20) // a tight loop would be thousands
    expect(accepted).toBeGreaterThan(2)
    for (const [, i] of rec) {
      expect(i.delay).toBeLessThanOrEqual(backoffCap(i.attempt!, { ...DEFAULT_RECONNECT, minDelay: 40, maxDelay: 400, factor: 2 }))
      expect(i.reason).toBeTruthy()
    }
  })

  it('resets the retry counter only after the connection stayed up for minUptime', async () => {
    let n = 0
    const { address } = await hostile((ws) => {
      whoami(ws)
      const k = ++n
      setTimeout(() => ws.terminate(), k <= 3 ? 10 : 250) // three short-lived connections, then long-lived ones
    })
    const c = client({ reconnect: { minDelay: 20, maxDelay: 40, factor: 2, minUptime: 150 } })
    const rec = record(c, 'reconnect')
    c.setup(address)
    await c.join('chat')
    await waitFor(() => rec.length >= 5, 5000, 'five retries')
    expect(rec.slice(0, 5).map(([, i]) => i.attempt)).toEqual([1, 2, 3, 1, 1])
  })

  it('gives up after maxRetries: giveup event and state, queued sends rejected; reconnect() still works', async () => {
    const s = await startServer()
    const port = s.port
    const c = client({ id: 'g', reconnect: { minDelay: 10, maxDelay: 20, maxRetries: 3 } })
    const rec = record(c)
    c.setup(s.address)
    await c.join('chat')
    await s.close({ abrupt: true })
    await waitFor(() => c.stateOf('chat') !== 'open')
    const queued = c.signal('chat', 'message', 'never')
    queued.catch(() => {}) // asserted below
    await waitFor(() => c.stateOf('chat') === 'giveup', 5000, 'giveup')
    await expect(queued).rejects.toMatchObject({ name: 'ConnectionError', code: 'ERR_GAVE_UP' })
    expect(rec.filter(([e]) => e === 'reconnect').map(([, i]) => i.attempt)).toEqual([1, 2, 3])
    const giveup = rec.find(([e]) => e === 'giveup')![1]
    expect(giveup.error?.message).toMatch(/gave up on channel 'chat' after 3 retries.*call reconnect\(\)/)
    await expect(c.signal('chat', 'message', 'x')).rejects.toMatchObject({ code: 'ERR_GAVE_UP' })
    const back = await createSockServer({ port })
    closers.push(() => back.close())
    c.reconnect()
    await waitFor(() => c.stateOf('chat') === 'open', 3000, 'reopen after reconnect()')
    expect(back.instances('chat').map((i) => i.id)).toEqual(['g'])
  })

  it('a close 1009 names the frame limit, and the client reconnects', async () => {
    const s = await startServer({ limit: 1024 })
    const c = client({ id: 'big', maxFrameBytes: 4096 }) // misconfigured: larger than the server's limit
    const rec = record(c, 'error', 'open')
    c.setup(s.address)
    await c.join('chat')
    await c.send('chat', 1, 'x'.repeat(2000))
    await waitFor(() => rec.filter(([e]) => e === 'open').length === 2, 3000, 'reopen')
    const err = rec.find(([e]) => e === 'error')![1].error!
    expect(err.code).toBe('ERR_FRAME_TOO_LARGE')
    expect(err.message).toMatch(/1009.*maxFrameBytes/)
  })

  it('a duplicate id is one clear error and no retry loop; the first holder keeps working', async () => {
    const s = await startServer()
    const first = client({ id: 'same' })
    const second = client({ id: 'same' })
    first.setup(s.address)
    second.setup(s.address)
    await first.join('chat')
    const rec = record(second)
    await expect(second.join('chat')).rejects.toMatchObject({ code: 'ERR_REJECTED', closeCode: 1008 })
    await sleep(300)
    expect(rec.filter(([e]) => e === 'error')).toHaveLength(1)
    expect(rec.find(([e]) => e === 'error')![1].error!.message).toMatch(/duplicate id/)
    expect(rec.filter(([e]) => e === 'reconnect')).toHaveLength(0)
    expect(first.stateOf('chat')).toBe('open')
  })
})

describe('liveness', () => {
  it('a server that never answers the handshake: connect timeout, retries, no crash', async () => {
    const sockets: import('node:net').Socket[] = []
    const silent: Server = createServer((sock) => sockets.push(sock))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    closers.push(() => {
      for (const s of sockets) s.destroy()
      return new Promise((r) => silent.close(r))
    })
    const c = client({ connectTimeout: 100, reconnect: { minDelay: 10, maxDelay: 20 } })
    const rec = record(c, 'error', 'reconnect')
    c.setup('127.0.0.1', (silent.address() as { port: number }).port)
    c.on('chat', () => {})
    await waitFor(() => rec.filter(([e]) => e === 'reconnect').length >= 3, 5000, 'three timed-out attempts')
    const errors = rec.filter(([e]) => e === 'error').map(([, i]) => i.error!)
    expect(errors.length).toBeGreaterThanOrEqual(2)
    expect(errors[0]!.message).toMatch(/connectTimeout \(100 ms\)/)
    expect(sockets.length).toBeGreaterThanOrEqual(3)
  })

  it('a server that stays open but goes deaf is detected within pingInterval + probeTimeout', async () => {
    let deafen = false
    let connections = 0
    const { address } = await hostile((ws) => {
      const first = ++connections === 1 // only the first connection goes deaf; the reconnect finds a live server
      ws.on('message', (d) => {
        if (first && deafen) return // no relay, no who-am-I reply (the ws library still answers transport pings)
        if ((JSON.parse(d.toString()).type ?? 0) === 0) ws.send(JSON.stringify({ type: 0, data: 'z', from: 'z' }))
      })
    })
    const c = client({ pingInterval: 100, probeTimeout: 150 })
    const rec = record(c, 'error', 'close', 'open')
    c.setup(address)
    await c.join('chat')
    deafen = true
    const t0 = performance.now()
    await waitFor(() => rec.some(([e]) => e === 'close'), 3000, 'the zombie to be dropped')
    const detected = rec.find(([e]) => e === 'close')![2] - t0
    expect(detected).toBeLessThanOrEqual(100 + 150 + 400) // interval + timeout + scheduling slack on a loaded CI machine
    expect(rec.find(([e]) => e === 'error')![1].error!.message).toMatch(/who-am-I probe within 150 ms/)
    await waitFor(() => rec.filter(([e]) => e === 'open').length === 2, 3000, 'reconnect')
    expect(connections).toBe(2)
  })

  it('a peer that stops reading altogether (no pong either) is detected the same way', async () => {
    const { address } = await hostile((ws) => {
      whoami(ws, 'p')
      setTimeout(() => (ws as unknown as { _socket: import('node:net').Socket })._socket.pause(), 50)
    })
    const c = client({ pingInterval: 80, probeTimeout: 120 })
    const rec = record(c, 'error')
    c.setup(address)
    await c.join('chat')
    await waitFor(() => rec.length, 3000, 'liveness error')
    expect(rec[0]![1].error!.code).toBe('ERR_TIMEOUT')
  })
})

describe('queue and outcomes', () => {
  async function downClient(queue: object) {
    const s = await startServer()
    const c = client({ id: 'q', queue })
    c.setup(s.address)
    await c.join('chat')
    await s.close({ abrupt: true })
    await waitFor(() => c.stateOf('chat') !== 'open')
    return c
  }

  it('rejects the newest send when the queue is full (count)', async () => {
    const c = await downClient({ maxCount: 3 })
    const sends = [1, 2, 3, 4].map((i) => c.signal('chat', 'message', `m${i}`))
    sends.slice(0, 3).forEach((p) => p.catch(() => {}))
    await expect(sends[3]).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' })
    await expect(sends[3]).rejects.toThrow(/3 frames.*limits 3/)
    expect(c.connectionsOf('chat')[0]!.queued).toBe(3)
  })

  it('bounds the queue by bytes too, and drop-oldest rejects the oldest instead', async () => {
    // Each queued frame costs its text (~60 bytes framed) plus ~320 bytes of bookkeeping: one fits in 500, two do not.
    const c = await downClient({ maxBytes: 500, overflow: 'drop-oldest' })
    const a = c.signal('chat', 'message', 'a'.repeat(40))
    const b = c.signal('chat', 'message', 'b'.repeat(40))
    await expect(a).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' })
    await expect(a).rejects.toThrow(/drop-oldest/)
    expect(c.connectionsOf('chat')[0]!.queued).toBe(1)
    b.catch(() => {})
  })

  it('queued sends reject on close()', async () => {
    const c = await downClient({})
    const p = c.signal('chat', 'message', 'pending')
    c.close()
    await expect(p).rejects.toMatchObject({ code: 'ERR_CLOSED' })
    expect(() => c.stateOf('chat')).not.toThrow()
  })
})

describe('chaos', () => {
  it('server killed and restarted mid-stream while 3 clients signal: what is sent after the reopen arrives once, in order', async () => {
    const s = await startServer()
    const port = s.port
    const senders = ['s1', 's2', 's3'].map((id) => {
      const c = client({ id, reconnect: { minDelay: 150, maxDelay: 400 } })
      c.setup(s.address)
      return c
    })
    await Promise.all(senders.map((c) => c.join('chat')))
    const written = new Map<string, { n: number; at: number; queued: boolean }[]>()
    let running = true
    const loops = senders.map(async (c, k) => {
      const id = `s${k + 1}`
      written.set(id, [])
      for (let n = 0; running; n++) {
        const queued = c.stateOf('chat') !== 'open'
        const p = c.signal('chat', 'n', { id, n }).then(() => written.get(id)!.push({ n, at: Date.now(), queued }))
        p.catch(() => {})
        await sleep(3)
      }
    })
    await sleep(150)
    await s.close({ abrupt: true })
    await sleep(250)
    const s2 = await createSockServer({ port })
    closers.push(() => s2.close())
    // a plain receiver joins the restarted server first
    const { rawPeer } = await import('./helpers')
    const rx = await rawPeer(`${s2.url}/channel/chat?id=rx`)
    const joinedAt = Date.now()
    await waitFor(() => senders.every((c) => c.stateOf('chat') === 'open'), 5000, 'senders reopen')
    await sleep(200)
    running = false
    await Promise.all(loops)
    await sleep(200)
    const got = rx.frames.filter((f) => f.type === 7).map((f) => JSON.parse(f.data).d as { id: string; n: number })
    let queuedChecked = 0
    for (const id of ['s1', 's2', 's3']) {
      const mine = got.filter((g) => g.id === id).map((g) => g.n)
      expect(new Set(mine).size, `${id} duplicates`).toBe(mine.length)
      expect(
        [...mine].sort((a, b) => a - b),
        `${id} order`,
      ).toEqual(mine)
      const mustArrive = written.get(id)!.filter((w) => w.at > joinedAt)
      expect(mustArrive.length).toBeGreaterThan(10)
      for (const w of mustArrive) expect(mine, `${id} #${w.n}`).toContain(w.n)
      queuedChecked += mustArrive.filter((w) => w.queued).length
    }
    expect(queuedChecked).toBeGreaterThan(0)
  })

  it('200 clients reconnecting after a restart spread their first attempts over the jitter window', async () => {
    const s = await startServer()
    const port = s.port
    const many = Array.from({ length: 200 }, (_, i) => {
      const c = client({ id: `c${i}`, reconnect: { minDelay: 1000, maxDelay: 2000 } })
      c.setup(s.address)
      return c
    })
    await Promise.all(many.map((c) => c.join('chat')))
    const s2 = new (await import('../src/server')).SockServer({ port })
    const arrivals: number[] = []
    s2.on('connect', () => arrivals.push(Date.now()))
    await s.close({ abrupt: true })
    const t0 = Date.now()
    await s2.listen()
    closers.push(() => s2.close({ abrupt: true }))
    await waitFor(() => arrivals.length === 200, 5000, 'all 200 back')
    const first100 = arrivals.filter((t) => t - t0 < 100).length / 200
    const spread = Math.max(...arrivals) - Math.min(...arrivals)
    console.log(`herd check: ${(first100 * 100).toFixed(1)}% of 200 reconnects in the first 100 ms (uniform jitter over 1000 ms would give 10%); spread ${spread} ms`)
    expect(first100).toBeLessThan(0.3)
    expect(spread).toBeGreaterThan(600)
  })
})

describe('secrets and input', () => {
  it('the token never appears in errors, lifecycle events or shown URLs', async () => {
    const token = 'SeCrEtToKeN123'
    const s = await startServer({ token: 'other' })
    const c = client({ token })
    const seen: string[] = []
    c.on('socket', (e, info) => seen.push(JSON.stringify({ e, ...info, error: info.error && { message: info.error.message, stack: info.error.stack } })))
    c.setup(s.address)
    await expect(c.join('chat')).rejects.toThrow(/invalid token/)
    const d = client({ token, connectTimeout: 100, reconnect: { minDelay: 5, maxDelay: 10, maxRetries: 2 } })
    d.on('socket', (e, info) => seen.push(JSON.stringify({ e, ...info, error: info.error && { message: info.error.message, stack: info.error.stack } })))
    d.setup('127.0.0.1:1')
    d.on('chat', () => {})
    await waitFor(() => d.stateOf('chat') === 'giveup', 5000)
    expect(seen.length).toBeGreaterThan(3)
    for (const line of seen) expect(line).not.toContain(token)
    expect(String((c as any).channels.get('chat')?.connections[0] ?? '')).not.toContain(token)
  })

  it('every error event carries a typed SockError', async () => {
    const s = await startServer()
    const c = client()
    const errors: unknown[] = []
    c.on('socket', 'error', (i) => errors.push(i.error))
    c.setup(s.address)
    await c.join('chat')
    const { rawPeer } = await import('./helpers')
    const p = await rawPeer(`${s.url}/channel/chat?id=p`)
    p.send({ type: 7, data: 'not json' })
    p.send({ type: 8, data: 'bad chunk' })
    p.send({ type: 2, data: 'nocolon' })
    await waitFor(() => errors.length === 3)
    expect(errors.every(isSockError)).toBe(true)
  })
})

describe('listeners that act on the connection', () => {
  it('close() from the close-1009 error listener closes for good: no orphan reconnects behind it', async () => {
    const s = await startServer({ limit: 200 })
    const c = client({ id: 'big', maxFrameBytes: 4096, reconnect: { minDelay: 20, maxDelay: 20 } })
    const rec = record(c)
    c.on('socket', 'error', (i) => i.error?.code === 'ERR_FRAME_TOO_LARGE' && c.close())
    c.setup(s.address)
    await c.join('chat')
    void c.signal('chat', 'message', 'x'.repeat(1000)).catch(() => {})
    await waitFor(() => rec.some(([e]) => e === 'error'), 3000, 'the 1009 error')
    await sleep(300) // several retry delays
    expect(rec.filter(([e]) => e === 'connecting')).toHaveLength(1)
    expect(rec.filter(([e]) => e === 'reconnect')).toHaveLength(0)
    expect(s.instances('chat')).toEqual([])
  })

  it('a send from the close-1009 error listener is queued and delivered after the reconnect, not thrown', async () => {
    const s = await startServer({ limit: 200 })
    const peer = client({ id: 'peer' })
    const got: string[] = []
    peer.on('chat', 'message', (d) => got.push(d))
    peer.setup(s.address)
    const c = client({ id: 'big', maxFrameBytes: 4096 })
    let retry: Promise<unknown> | undefined
    c.on('socket', 'error', (i) => {
      if (i.error?.code === 'ERR_FRAME_TOO_LARGE') retry ??= c.signal('chat', 'message', 'smaller')
    })
    c.setup(s.address)
    await Promise.all([peer.join('chat'), c.join('chat')])
    void c.signal('chat', 'message', 'x'.repeat(1000)).catch(() => {})
    await waitFor(() => retry, 3000, 'the 1009 error')
    await expect(retry).resolves.toMatchObject({ sent: [s.address] })
    await waitFor(() => got.length === 1, 3000, 'the smaller message')
    expect(got).toEqual(['smaller'])
  })

  it('reconnect() from the liveness error listener schedules one attempt, not two', async () => {
    let answered = 0
    const { address } = await hostile((ws) => {
      ws.on('message', (d) => {
        // every connection answers its first who-am-I only, then goes deaf
        if ((JSON.parse(d.toString()).type ?? 0) === 0 && answered++ === 0) ws.send(JSON.stringify({ type: 0, data: 'z', from: 'z' }))
      })
    })
    const c = client({ pingInterval: 60, probeTimeout: 80, reconnect: { minDelay: 2000, maxDelay: 2000 } })
    const rec = record(c, 'error', 'reconnect', 'connecting')
    c.on('socket', 'error', (i) => i.error?.code === 'ERR_TIMEOUT' && c.reconnect())
    c.setup(address)
    await c.join('chat')
    await waitFor(() => rec.some(([e]) => e === 'reconnect'), 3000, 'the liveness failure')
    await sleep(100)
    // What that one failure scheduled: the reconnects from the first one to the next attempt's 'connecting'. (The
    // jittered retry may come within milliseconds and fail its own probe: a second failure, not a second attempt.)
    const first = rec.findIndex(([e]) => e === 'reconnect')
    const after = rec.slice(first)
    const until = after.findIndex(([e]) => e === 'connecting')
    expect((until < 0 ? after : after.slice(0, until)).filter(([e]) => e === 'reconnect').map(([, i]) => i.attempt)).toEqual([1])
  })

  it('keeps pinging when the wall clock steps back an hour', async () => {
    let pings = 0
    const { address } = await hostile((ws) => {
      whoami(ws)
      ws.on('message', (d) => JSON.parse(d.toString()).type === -1 && pings++)
    })
    const c = client({ pingInterval: 50, probeTimeout: 1000 })
    c.setup(address)
    await c.join('chat')
    const now = Date.now
    const back = now() - 3_600_000
    const start = now()
    Date.now = () => back + (now() - start)
    try {
      pings = 0
      await sleep(500)
    } finally {
      Date.now = now
    }
    expect(pings).toBeGreaterThanOrEqual(3)
    expect(c.stateOf('chat')).toBe('open')
  })

  it('a close listener that throws does not strand the channel: it still reconnects', async () => {
    let connections = 0
    const { address } = await hostile((ws) => {
      whoami(ws)
      if (++connections === 1) setTimeout(() => ws.close(1001), 100)
    })
    const { code, out } = await runScript(`
      import { SockClient } from ${DIST}
      process.on('uncaughtException', (e) => console.log('reported:', e.message)) // what a browser does with it
      const c = new SockClient({ reconnect: { minDelay: 10, maxDelay: 10 } })
      c.setup(${JSON.stringify(address)})
      let thrown = false
      c.on('socket', 'close', () => { if (!thrown) { thrown = true; throw new Error('bug in a close listener') } })
      await c.join('chat')
      c.on('socket', 'open', () => { console.log('reopened'); c.close() })
    `)
    expect(out).toContain('reported: bug in a close listener')
    expect(out).toContain('reopened')
    expect(code).toBe(0)
    expect(connections).toBe(2)
  })

  it('close() lets Node exit within about a second even when the peer stopped reading', async () => {
    const { address } = await hostile((ws) => {
      whoami(ws)
      setTimeout(() => (ws as unknown as { _socket: import('node:net').Socket })._socket.pause(), 50)
    })
    const { code, out, ms } = await runScript(`
      import { SockClient } from ${DIST}
      const c = new SockClient()
      c.setup(${JSON.stringify(address)})
      await c.join('chat')
      await new Promise((r) => setTimeout(r, 150))
      c.close()
      console.log('closed')
    `)
    expect(out).toContain('closed')
    expect(code).toBe(0)
    expect(ms, 'ws waits 30 s for a close frame unless the socket is terminated').toBeLessThan(5000)
  })
})
