// Requests and replies through the embedded server on loopback: every way a request settles, each with its code,
// fast replies, failures that leak nothing, progress, addressing, requestAll, withdrawal from the queue, retries that
// execute once, and the bounds (pending requests, the reply cache) filled.
import { afterEach, describe, expect, it } from 'vitest'
import { NO_REPLY, ReplyCode, ReplyError } from '../src'
import { stateOf } from '../src/replies'
import { client, closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

afterEach(closeAll)

async function pair(options: Parameters<typeof client>[0] = {}, channel = 'jobs') {
  const s = await startServer()
  const a = client({ id: 'alice', ...options })
  const b = client({ id: 'bob', ...options })
  a.setup(s.address)
  b.setup(s.address)
  await Promise.all([a.join(channel), b.join(channel)])
  return { s, a, b }
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e) => e.code,
  )

describe('request / handle', () => {
  it('a value is the reply, nothing a fast reply (type 9), a ReplyError its code and message, any other throw code 5 without its message', async () => {
    const { s, a, b } = await pair()
    const frames: string[] = []
    const spy = await rawPeer(`${s.url}/channel/jobs?id=spy`)
    spy.ws.on('message', (d) => frames.push(String(d)))
    b.handle('jobs', 'resize', ({ w, h }: { w: number; h: number }) => {
      if (w > 10_000) throw new ReplyError(ReplyCode.BadRequest, 'too wide', { max: 10_000 })
      return { url: `/${w}x${h}.png` }
    })
    b.handle('jobs', 'ping', () => {})
    b.handle('jobs', 'boom', async () => {
      throw new Error('secret internal path /etc/x')
    })
    b.handle('jobs', 'bare', () => {
      throw new ReplyError(404)
    })
    expect(await a.request('jobs', 'resize', { w: 100, h: 80 })).toEqual({ url: '/100x80.png' })
    expect(await a.request('jobs', 'ping')).toBeUndefined()
    const bad = await a.request('jobs', 'resize', { w: 20_000, h: 1 }).catch((e) => e)
    expect(bad).toBeInstanceOf(ReplyError)
    expect(bad).toMatchObject({ name: 'ReplyError', code: 'ERR_REPLY', replyCode: 4, message: 'too wide', data: { max: 10_000 }, from: 'bob' })
    const boom = await a.request('jobs', 'boom').catch((e) => e)
    expect(boom).toMatchObject({ replyCode: ReplyCode.HandlerError })
    expect(boom.message).not.toContain('secret')
    expect(await a.request('jobs', 'bare').catch((e) => e.replyCode)).toBe(404)
    await waitFor(() => frames.length >= 10, 3000, 'the spy to see the traffic')
    const data = frames
      .map((f) => JSON.parse(f))
      .filter((f) => f.from === 'bob')
      .map((f) => [f.type, f.data])
    // the fast replies are type 9 `a:<request>:<code>:<reply id>`; nothing of the thrown error went on the wire
    expect(data.filter(([t]) => t === 9).map(([, d]) => d.replace(/:[A-Za-z0-9]+$/, ':R').replace(/^a:[A-Za-z0-9]+:/, 'a:Q:'))).toEqual(['a:Q:0:R', 'a:Q:5:R', 'a:Q:404:R'])
    expect(frames.join('\n')).not.toContain('secret')
    expect(data.filter(([t]) => t === 7).map(([, d]) => JSON.parse(d))).toEqual([
      { i: expect.any(String), e: '$r', t: 'alice', r: expect.any(String), d: { url: '/100x80.png' } },
      { i: expect.any(String), e: '$r', t: 'alice', r: expect.any(String), k: 4, d: { message: 'too wide', data: { max: 10_000 } } },
    ])
  })

  it('exposeErrors sends the handler message with code 5; the handler bug is an error event on the responder', async () => {
    const { a, b } = await pair({ exposeErrors: true })
    const errors: string[] = []
    b.on('socket', 'error', (i) => errors.push(i.error!.code))
    b.handle('jobs', 'boom', () => {
      throw new Error('disk full')
    })
    const e = await a.request('jobs', 'boom').catch((x) => x)
    expect(e).toMatchObject({ replyCode: 5, message: 'disk full' })
    expect(errors).toEqual(['ERR_LISTENER'])
  })

  it('progress replies come before the final one; NO_REPLY sends nothing, so another responder answers', async () => {
    const { s, a, b } = await pair()
    const c = client({ id: 'carol' })
    c.setup(s.address)
    await c.join('jobs')
    b.handle('jobs', 'work', async (n: number, req) => {
      for (let i = 1; i <= n; i++) await req.progress({ done: i })
      return 'finished'
    })
    const seen: unknown[] = []
    expect(await a.request('jobs', 'work', 3, { onProgress: (d) => seen.push(d) })).toBe('finished')
    expect(seen).toEqual([{ done: 1 }, { done: 2 }, { done: 3 }])
    b.handle('jobs', 'shard', (key: string) => (key === 'b' ? 'bob has it' : NO_REPLY))
    c.handle('jobs', 'shard', (key: string) => (key === 'c' ? 'carol has it' : NO_REPLY))
    expect(await a.request('jobs', 'shard', 'c')).toBe('carol has it')
    expect(await a.request('jobs', 'shard', 'b')).toBe('bob has it')
    expect(await codeOf(a.request('jobs', 'shard', 'z', { timeout: 300 }))).toBe('ERR_TIMEOUT')
  })

  it('to: only that instance runs it; an addressed instance without a handler fails fast (code 2); replies from others are ignored', async () => {
    const { s, a, b } = await pair()
    const c = client({ id: 'carol' })
    c.setup(s.address)
    await c.join('jobs')
    const ran: string[] = []
    b.handle('jobs', 'who', () => (ran.push('bob'), 'bob'))
    c.handle('jobs', 'who', () => (ran.push('carol'), 'carol'))
    expect(await a.request('jobs', 'who', undefined, { to: 'carol' })).toBe('carol')
    await sleep(100)
    expect(ran).toEqual(['carol'])
    const t0 = performance.now()
    const e = await a.request('jobs', 'nothing', undefined, { to: 'bob', timeout: 5000 }).catch((x) => x)
    expect(e).toMatchObject({ replyCode: ReplyCode.NoHandler, from: 'bob' })
    expect(performance.now() - t0).toBeLessThan(2000) // at once, not at the timeout
    // a raw peer answering a request addressed to carol is not carol: ignored
    const mallory = await rawPeer(`${s.url}/channel/jobs?id=mallory`)
    c.handle('jobs', 'slow', () => new Promise((r) => setTimeout(() => r('carol, slowly'), 300)))
    const p = a.request('jobs', 'slow', undefined, { to: 'carol' })
    const req = await mallory.next((f) => f.type === 7 && JSON.parse(f.data).e === 'slow')
    mallory.send({ type: 9, data: `a:${JSON.parse(req.data).i}:0:forged` })
    expect(await p).toBe('carol, slowly')
  })

  it('requests never reach on() listeners; an unaddressed request without a handler gets no answer; signal({ to }) reaches only its instance', async () => {
    const { s, a, b } = await pair()
    const c = client({ id: 'carol' })
    c.setup(s.address)
    await c.join('jobs')
    const events: string[] = []
    b.on('jobs', (e) => events.push(`bob ${e}`))
    c.on('jobs', (e) => events.push(`carol ${e}`))
    expect(await codeOf(a.request('jobs', 'nobody', 1, { timeout: 300 }))).toBe('ERR_TIMEOUT')
    await a.signal('jobs', 'hint', 'for carol', { to: 'carol' })
    await a.signal('jobs', 'message', 'for bob', { to: 'bob' })
    await waitFor(() => events.length >= 2, 3000, 'the addressed events')
    await sleep(100)
    expect(events.sort()).toEqual(['bob message', 'carol hint'])
    expect(() => a.signal('jobs', 'x', 1, { to: 'not an id' })).toThrow(/invalid id/)
    expect(() => a.signal('jobs', '$r', 1)).toThrow(/reserved/)
    expect(() => a.on('jobs', '$r', () => {})).toThrow(/reserved/)
    expect(() => b.handle('jobs', 'resize', () => 1) && b.handle('jobs', 'resize', () => 2)).toThrow(/already has a handler/)
  })

  it('requestAll() yields every responder once (failures too) and ends at the timeout or after max final replies', async () => {
    const { s, a, b } = await pair()
    const c = client({ id: 'carol' })
    const d = client({ id: 'dave' })
    for (const x of [c, d]) x.setup(s.address)
    await Promise.all([c.join('jobs'), d.join('jobs')])
    b.handle('jobs', 'count', () => 1)
    c.handle('jobs', 'count', () => 2)
    d.handle('jobs', 'count', () => {
      throw new ReplyError(ReplyCode.Unauthorized)
    })
    const t0 = performance.now()
    const all = []
    for await (const r of a.requestAll('jobs', 'count', undefined, { timeout: 400 })) all.push(r)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390)
    expect(all.map((r) => [r.from, r.code, r.data]).sort()).toEqual([
      ['bob', 0, 1],
      ['carol', 0, 2],
      ['dave', 3, undefined],
    ])
    const two = []
    for await (const r of a.requestAll('jobs', 'count', undefined, { timeout: 5000, max: 2 })) two.push(r)
    expect(two).toHaveLength(2)
    // its signal ends it, without an error
    const ctrl = new AbortController()
    const some = []
    const t1 = performance.now()
    setTimeout(() => ctrl.abort(), 200)
    for await (const r of a.requestAll('jobs', 'count', undefined, { timeout: 5000, signal: ctrl.signal })) some.push(r)
    expect(performance.now() - t1).toBeLessThan(2000)
    expect(some.length).toBeGreaterThanOrEqual(1)
    expect(stateOf((a as any).channelOf('jobs')).out.size).toBe(0)
  })
})

describe('settling exactly once', () => {
  it('the timeout counts from the call, queue time included; a request timed out in the queue is withdrawn and never sent', async () => {
    const s = await startServer()
    const port = s.port
    const b = client({ id: 'bob' })
    const ran: number[] = []
    b.handle('jobs', 'job', (n: number) => (ran.push(n), n))
    b.setup(s.address)
    await b.join('jobs')
    const a = client({ id: 'alice', reconnect: { minDelay: 50, maxDelay: 100 } })
    await s.close({ abrupt: true }) // nothing to connect to: a's requests wait in its queue
    a.setup(`127.0.0.1:${port}`)
    const t0 = performance.now()
    const r = await a.request('jobs', 'job', 1, { timeout: 300 }).catch((e) => e)
    expect(r).toMatchObject({ name: 'RequestError', code: 'ERR_TIMEOUT', sent: false })
    expect(performance.now() - t0).toBeLessThan(1500)
    expect(a.connectionsOf('jobs')[0]!.queued).toBe(0) // withdrawn
    const s2 = await startServer({ port })
    await waitFor(() => a.stateOf('jobs') === 'open' && b.stateOf('jobs') === 'open', 8000, 'both back')
    expect(await a.request('jobs', 'job', 2)).toBe(2)
    await sleep(100)
    expect(ran).toEqual([2]) // the first one never went out
    void s2
  })

  it('abort: before sending, while queued (withdrawn), and after sending (the handler sees its signal abort)', async () => {
    const { s, a, b } = await pair()
    let signalled: unknown
    b.handle('jobs', 'long', (_d, req) => new Promise((resolve) => req.signal.addEventListener('abort', () => ((signalled = req.signal.reason), resolve('late')))))
    const ctrl = new AbortController()
    ctrl.abort()
    expect(await codeOf(a.request('jobs', 'long', 1, { signal: ctrl.signal }))).toBe('ERR_ABORTED')
    const c2 = new AbortController()
    const p = a.request('jobs', 'long', 2, { signal: c2.signal })
    await sleep(100)
    c2.abort()
    const e = await p.catch((x) => x)
    expect(e).toMatchObject({ code: 'ERR_ABORTED', sent: true })
    await waitFor(() => signalled, 3000, 'the handler signal')
    expect(signalled).toMatchObject({ code: 'ERR_ABORTED' })
    // queued: the socket is over its high-water mark, so the request waits; aborted there, it is never written
    const x = client({ id: 'xavier', highWaterMark: 1 })
    x.setup(s.address)
    await x.join('jobs')
    const seen: unknown[] = []
    b.handle('jobs', 'count', (d) => void seen.push(d))
    const burst = Array.from({ length: 50 }, (_, _i) => x.signal('jobs', 'filler', 'y'.repeat(500)).catch(() => {}))
    const c3 = new AbortController()
    const q = x.request('jobs', 'count', 'queued', { signal: c3.signal })
    expect(x.connectionsOf('jobs')[0]!.queued).toBeGreaterThan(0)
    c3.abort()
    expect(await q.catch((err) => [err.code, err.sent])).toEqual(['ERR_ABORTED', false])
    await Promise.all(burst)
    await sleep(200)
    expect(seen).toEqual([])
  })

  it('close(), leave(), give-up and a rejection (1008) each settle every pending request with their own code; late replies are dropped', async () => {
    const { s, a, b } = await pair()
    b.handle('jobs', 'never', () => new Promise(() => {}))
    const p1 = a.request('jobs', 'never', 1)
    await sleep(50)
    a.leave('jobs')
    expect(await codeOf(p1)).toBe('ERR_CLOSED')
    await a.join('jobs')
    const p2 = a.request('jobs', 'never', 2)
    await sleep(50)
    a.close()
    expect(await codeOf(p2)).toBe('ERR_CLOSED')
    // give-up: no retries left when the server goes away; a request made then rejects ERR_GAVE_UP
    const g = client({ id: 'gina', reconnect: { maxRetries: 0 } })
    g.setup(s.address)
    await g.join('jobs')
    const p3 = g.request('jobs', 'never', 3)
    // 1008: a duplicate id on a first join
    const dup = client({ id: 'bob' })
    dup.setup(s.address)
    const p4 = dup.request('jobs', 'never', 4)
    expect(await codeOf(p4)).toBe('ERR_REJECTED')
    await s.close({ abrupt: true })
    expect(await codeOf(p3)).toBe('ERR_DISCONNECTED') // it had been written: the carrier is lost
    const p5 = g.request('jobs', 'never', 5)
    expect(await codeOf(p5)).toBe('ERR_GAVE_UP')
  })

  it('a late reply (after the timeout) is dropped; the next request is not confused by it', async () => {
    const { a, b } = await pair()
    let n = 0
    b.handle('jobs', 'slow', () => new Promise((r) => setTimeout(() => r(++n), 300)))
    expect(await codeOf(a.request('jobs', 'slow', undefined, { timeout: 100 }))).toBe('ERR_TIMEOUT')
    expect(await a.request('jobs', 'slow', undefined, { timeout: 2000 })).toBe(2) // its own reply, not the late one
  })

  it('maxPendingRequests bounds the requests waiting for replies: beyond it ERR_QUEUE_FULL, with room again once they settle', async () => {
    const { a, b } = await pair({ maxPendingRequests: 3 })
    b.handle('jobs', 'wait', (ms: number) => new Promise((r) => setTimeout(r, ms)))
    // requests aborted before they start never count, in either direction
    const gone = new AbortController()
    gone.abort()
    for (let i = 0; i < 5; i++) expect(await codeOf(a.request('jobs', 'wait', 1, { signal: gone.signal }))).toBe('ERR_ABORTED')
    const ps = [1, 2, 3].map(() => a.request('jobs', 'wait', 200))
    expect(await codeOf(a.request('jobs', 'wait', 1))).toBe('ERR_QUEUE_FULL')
    await Promise.all(ps)
    await expect(a.request('jobs', 'wait', 1)).resolves.toBeUndefined()
  })
})

describe('at most once', () => {
  it('a repeated request id runs once: a copy over another server gets nothing, a retry (another q) the cached reply', async () => {
    const s = await startServer()
    const b = client({ id: 'bob' })
    let runs = 0
    b.handle('jobs', 'charge', (amount: number) => (++runs, { charged: amount }))
    b.setup(s.address)
    await b.join('jobs')
    const peer = await rawPeer(`${s.url}/channel/jobs?id=peer`)
    const req = (q: number) => ({ type: 7, data: JSON.stringify({ i: 'pay1', e: 'charge', q, d: 5 }) })
    peer.send(req(5000))
    const r1 = await peer.next((f) => f.type === 7)
    peer.send(req(5000)) // the same copy (as over another server): ignored
    peer.send(req(4000)) // a retry: the reply again
    const r2 = await peer.next((f) => f.type === 7)
    await sleep(200)
    expect(runs).toBe(1)
    expect(JSON.parse(r2.data)).toEqual(JSON.parse(r1.data))
    expect(peer.frames.filter((f) => f.type === 7)).toEqual([])
    // without a deadline (q 0) a retry and a copy look alike: each repeat gets the reply again, the handler still runs once
    const req0 = { type: 7, data: JSON.stringify({ i: 'pay2', e: 'charge', q: 0, d: 7 }) }
    peer.send(req0)
    await peer.next((f) => f.type === 7)
    peer.send(req0)
    await peer.next((f) => f.type === 7)
    expect(runs).toBe(2)
  })

  it('large requests and replies travel in chunks; a retry of a chunked reply is chunked again under a fresh id; too large is refused', async () => {
    const { s, a, b } = await pair({ maxMessageBytes: 50_000 })
    let runs = 0
    b.handle('jobs', 'big', (d: string) => (runs++, d.toUpperCase()))
    b.handle('jobs', 'grow', (n: number) => (runs++, 'z'.repeat(n)))
    const text = 'é'.repeat(4000)
    expect(await a.request('jobs', 'big', text)).toBe('É'.repeat(4000))
    const peer = await rawPeer(`${s.url}/channel/jobs?id=peer`)
    const req = (q: number) => ({ type: 7, data: JSON.stringify({ i: 'bigone', e: 'grow', q, d: 3000 }) })
    peer.send(req(5000))
    await waitFor(() => peer.frames.filter((f) => f?.type === 8).length >= 4, 3000, 'the chunks of the reply')
    peer.send(req(4000))
    await waitFor(() => new Set(peer.frames.filter((f) => f?.type === 8).map((f) => f.data.split(':')[0])).size === 2, 3000, 'a second set of chunks')
    expect(runs).toBe(2) // alice's request and the peer's, each once
    await expect(a.request('jobs', 'big', 'y'.repeat(60_000))).rejects.toMatchObject({ name: 'RequestError', code: 'ERR_FRAME_TOO_LARGE' })
  })

  it('a handler registered before setup() answers once the client is set up', async () => {
    const s = await startServer()
    const b = client({ id: 'bob' })
    b.handle('early', 'hi', () => 'hello')
    b.setup(s.address)
    const a = client({ id: 'alice' })
    a.setup(s.address)
    await waitFor(() => b.stateOf('early') === 'open', 3000, 'bob joined by handle()')
    expect(await a.request('early', 'hi')).toBe('hello')
  })

  it('only the requester can cancel a request; a far deadline (q = 2^53 - 1) neither aborts the handler nor spins a timer', async () => {
    const { s, b } = await pair()
    let aborted: unknown
    let release: ((v: unknown) => void) | undefined
    b.handle('jobs', 'hold', (_d, req) => new Promise((r) => (req.signal.addEventListener('abort', () => (aborted = req.signal.reason)), (release = r))))
    const peer = await rawPeer(`${s.url}/channel/jobs?id=peer`)
    const mallory = await rawPeer(`${s.url}/channel/jobs?id=mallory`)
    peer.send({ type: 7, data: JSON.stringify({ i: 'far1', e: 'hold', q: 2 ** 53 - 1, d: 1 }) })
    await waitFor(() => release, 3000, 'the handler')
    mallory.send({ type: 9, data: 'x:far1:6:not yours' })
    await sleep(150)
    expect(aborted).toBeUndefined()
    peer.send({ type: 9, data: 'x:far1:6:mine' })
    await waitFor(() => aborted, 3000, 'the cancel')
    expect(aborted).toMatchObject({ code: 'ERR_ABORTED' })
    // a timeout beyond what a timer takes is stepped, not fired at once
    const a = client({ id: 'amy' })
    a.setup(s.address)
    await a.join('jobs')
    b.handle('jobs', 'later', () => new Promise((r) => setTimeout(() => r('late but fine'), 100)))
    expect(await a.request('jobs', 'later', 1, { timeout: 1e12 })).toBe('late but fine')
  })

  it('the reply cache is bounded in entries and bytes, oldest first (filled)', async () => {
    const { a, b } = await pair({ replyCache: { max: 50, maxBytes: 20_000 } })
    b.handle('jobs', 'echo', (d: string) => d)
    const chB = (b as any).channelOf('jobs')
    for (let i = 0; i < 120; i++) await a.request('jobs', 'echo', `${i}`)
    const cs = stateOf(chB)
    expect(cs.served.size).toBe(50)
    for (let i = 0; i < 60; i++) await a.request('jobs', 'echo', 'x'.repeat(600))
    expect(cs.servedBytes).toBeLessThanOrEqual(20_000)
    expect(cs.served.size).toBeLessThan(50)
    let sum = 0
    for (const e of cs.served.values()) sum += e.bytes
    expect(sum).toBe(cs.servedBytes)
  })

  it('requestAll() under a flood of distinct replies: it holds at most maxBuffered and its dedupe set stays bounded (filled)', async () => {
    const { s, a } = await pair()
    const mallory = await rawPeer(`${s.url}/channel/jobs?id=mallory`)
    const it = a.requestAll('jobs', 'count', undefined, { timeout: 10_000, maxBuffered: 500 })
    const first = it.next()
    const req = await mallory.next((f) => f.type === 7 && JSON.parse(f.data).e === 'count')
    const id = JSON.parse(req.data).i
    for (let i = 0; i < 5000; i++) mallory.send({ type: 9, data: `a:${id}:0:r${i}` })
    expect((await first).value).toMatchObject({ from: 'mallory', code: 0 })
    const e = await (async () => {
      for (;;) if ((await it.next()).done) return 'ended'
    })().catch((x) => x)
    expect(e).toMatchObject({ code: 'ERR_QUEUE_FULL' })
    expect(stateOf((a as any).channelOf('jobs')).out.size).toBe(0) // freed at once
  })

  it('a flood of requests that never finish is refused beyond replyCache.max running (code 1 when addressed), not run', async () => {
    const { a, b } = await pair({ replyCache: { max: 10 } })
    let started = 0
    b.handle('jobs', 'hang', () => (started++, new Promise(() => {})))
    const ps = Array.from({ length: 10 }, () => a.request('jobs', 'hang', 1, { timeout: 60_000 }).catch(() => {}))
    await waitFor(() => started === 10, 3000, 'ten running')
    const e = await a.request('jobs', 'hang', 1, { to: 'bob' }).catch((x) => x)
    expect(e).toMatchObject({ replyCode: ReplyCode.Rejected })
    expect(started).toBe(10)
    a.close()
    await Promise.all(ps)
  })
})
