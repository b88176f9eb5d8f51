import { afterEach, describe, expect, it } from 'vitest'
import { closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

afterEach(closeAll)

const route = (s: { url: string }, channel: string, q = '') => `${s.url}/channel/${channel}${q}`

describe('embedded server: WebSocket route', () => {
  it('answers who-am-I with the given id, in the opcode received', async () => {
    const s = await startServer()
    const p = await rawPeer(route(s, 'chat', '?id=alice'))
    p.send({ type: 0, data: '' })
    expect(await p.next()).toEqual({ type: 0, data: 'alice', from: 'alice' })
    p.send({ data: '' }) // no type key means 0
    expect(await p.next()).toEqual({ type: 0, data: 'alice', from: 'alice' })
    const b = await rawPeer(route(s, 'chat', '?id=bin'), { binary: true })
    b.send({ type: 0, data: '' })
    await waitFor(() => b.frames.length)
    const raw = await new Promise<{ data: Buffer; binary: boolean }>((r) => {
      b.ws.once('message', (data, binary) => r({ data: data as Buffer, binary }))
      b.send({ type: 0, data: '' })
    })
    expect(raw.binary).toBe(true)
    expect(JSON.parse(raw.data.toString())).toEqual({ type: 0, data: 'bin', from: 'bin' })
  })

  it('picks a 12-character alphanumeric id when none is given', async () => {
    const s = await startServer()
    const p = await rawPeer(route(s, 'chat'))
    p.send({ type: 0, data: '' })
    const f = await p.next()
    expect(f.data).toMatch(/^[A-Za-z0-9]{12}$/)
    expect(f.from).toBe(f.data)
  })

  it('relays to every other instance of the channel with from overwritten, no echo, not across channels', async () => {
    const s = await startServer()
    const a = await rawPeer(route(s, 'chat', '?id=a'))
    const b = await rawPeer(route(s, 'chat', '?id=b'))
    const c = await rawPeer(route(s, 'chat', '?id=c'))
    const other = await rawPeer(route(s, 'other', '?id=o'))
    a.send({ type: 1, data: 'hello <&>', from: 'forged' })
    expect(await b.next()).toEqual({ type: 1, data: 'hello <&>', from: 'a' })
    expect(await c.next()).toEqual({ type: 1, data: 'hello <&>', from: 'a' })
    a.send({ type: 9, data: 'x' })
    expect(await b.next()).toEqual({ type: 9, data: 'x', from: 'a' })
    await sleep(50)
    expect(a.frames).toEqual([])
    expect(other.frames).toEqual([])
  })

  it('does not reply to or relay pings', async () => {
    const s = await startServer()
    const a = await rawPeer(route(s, 'chat', '?id=a'))
    const b = await rawPeer(route(s, 'chat', '?id=b'))
    a.send({ type: -1, data: '' })
    a.send({ type: -5, data: 'x' })
    await sleep(50)
    expect(a.frames).toEqual([])
    expect(b.frames).toEqual([])
  })

  it.each([
    ['wrong token', '?token=nope', /invalid token/],
    ['empty token is not demo', '?token=', /invalid token/],
    ['token twice', '?token=demo&token=demo', /more than once/],
    ['bad id', '?id=a-b', /invalid id/],
    ['empty id', '?id=', /invalid id/],
    ['id twice', '?id=a&id=b', /more than once/],
  ])('rejects %s with close 1008 and a reason', async (_name, q, reason) => {
    const s = await startServer()
    const p = await rawPeer(route(s, 'chat', q))
    const { code, reason: r } = await p.closed
    expect(code).toBe(1008)
    expect(r).toMatch(reason)
    expect(s.instances('chat')).toEqual([])
  })

  it('rejects a bad channel name with 1008', async () => {
    const s = await startServer()
    for (const ch of ['a%20b', 'caf%C3%A9', '%2Fx', '']) {
      const p = await rawPeer(`${s.url}/channel/${ch}`)
      const { code, reason } = await p.closed
      expect(code, ch).toBe(1008)
      expect(reason).toMatch(/invalid channel/)
    }
  })

  it('accepts the default and a configured token, and any token with token: null', async () => {
    const s = await startServer({ token: 's3cret' })
    expect((await (await rawPeer(route(s, 'chat'))).closed).code).toBe(1008) // absent = demo != s3cret
    const ok = await rawPeer(route(s, 'chat', '?token=s3cret'))
    ok.send({ type: 0 })
    expect((await ok.next()).type).toBe(0)
    const open = await startServer({ token: null })
    const any = await rawPeer(route(open, 'chat', '?token=whatever'))
    any.send({ type: 0 })
    expect((await any.next()).type).toBe(0)
  })

  it('rejects a duplicate id in the same channel and keeps the first holder; other channels may reuse it', async () => {
    const s = await startServer()
    const first = await rawPeer(route(s, 'chat', '?id=dup'))
    const second = await rawPeer(route(s, 'chat', '?id=dup'))
    const { code, reason } = await second.closed
    expect(code).toBe(1008)
    expect(reason).toMatch(/duplicate id/)
    first.send({ type: 0 })
    expect(await first.next()).toEqual({ type: 0, data: 'dup', from: 'dup' })
    const elsewhere = await rawPeer(route(s, 'other', '?id=dup'))
    elsewhere.send({ type: 0 })
    expect((await elsewhere.next()).data).toBe('dup')
  })

  it('survives every bad input, answering Invalid json format, and acts on none of it', async () => {
    const s = await startServer()
    const a = await rawPeer(route(s, 'chat', '?id=a'))
    const b = await rawPeer(route(s, 'chat', '?id=b'))
    const bad = [
      'null',
      'garbage',
      '[]',
      '[1,2]',
      '42',
      '"str"',
      '{"type":"1","data":"x"}',
      '{"type":1.5,"data":"x"}',
      '{"type":1,"data":5}',
      '{"type":1,"data":null,"x":1}',
      '{"type":1,"data":"x","from":7}',
      '{"type":1e400,"data":"x"}',
      '{"type":null,"data":"x"}',
      '',
    ]
    for (const t of bad) a.ws.send(t)
    a.ws.send(Buffer.from([0xff, 0x00, 0x7b]), { binary: true })
    await waitFor(() => a.frames.length === bad.length + 1, 3000, 'error replies')
    expect(a.frames.every((f) => f?.error === 'Invalid json format')).toBe(true)
    expect(b.frames).toEqual([])
    // still alive and relaying
    a.send({ type: 1, data: 'after' })
    expect(await b.next()).toEqual({ type: 1, data: 'after', from: 'a' })
  })

  it('closes a connection whose frame exceeds the limit with 1009 and keeps serving others', async () => {
    const s = await startServer({ limit: 100 })
    const a = await rawPeer(route(s, 'chat', '?id=a'))
    const b = await rawPeer(route(s, 'chat', '?id=b'))
    a.ws.send(JSON.stringify({ type: 1, data: 'x'.repeat(100) }))
    expect((await a.closed).code).toBe(1009)
    const c = await rawPeer(route(s, 'chat', '?id=c'))
    c.send({ type: 1, data: 'x'.repeat(100 - 20) }) // exactly 100 bytes
    expect((await b.next()).data).toHaveLength(80)
  })

  it('removes exactly the connection that left', async () => {
    const s = await startServer()
    const a = await rawPeer(route(s, 'chat', '?id=a'))
    const b = await rawPeer(route(s, 'chat', '?id=b'))
    expect(
      s
        .instances('chat')
        .map((i) => i.id)
        .sort(),
    ).toEqual(['a', 'b'])
    a.close()
    await waitFor(() => s.instances('chat').length === 1)
    expect(s.instances('chat').map((i) => i.id)).toEqual(['b'])
    // the id is free again; a rejected duplicate attempt did not remove the holder
    const a2 = await rawPeer(route(s, 'chat', '?id=a'))
    const dup = await rawPeer(route(s, 'chat', '?id=a'))
    await dup.closed
    await sleep(30)
    expect(
      s
        .instances('chat')
        .map((i) => i.id)
        .sort(),
    ).toEqual(['a', 'b'])
    a2.send({ type: 1, data: 'still here' })
    expect((await b.next()).from).toBe('a')
  })

  it('fans out two peers bursting hundreds of messages at once without crashing or losing any', async () => {
    const s = await startServer()
    const a = await rawPeer(route(s, 'chat', '?id=a'))
    const b = await rawPeer(route(s, 'chat', '?id=b'))
    const watchers = await Promise.all([1, 2, 3].map((i) => rawPeer(route(s, 'chat', `?id=w${i}`))))
    const N = 500
    for (let i = 0; i < N; i++) {
      a.send({ type: 1, data: `a${i}` })
      b.send({ type: 1, data: `b${i}` })
    }
    await waitFor(() => watchers.every((w) => w.frames.length === 2 * N), 10_000, 'all relayed frames')
    for (const w of watchers) {
      const fromA = w.frames.filter((f) => f.from === 'a').map((f) => f.data)
      expect(fromA).toEqual(Array.from({ length: N }, (_, i) => `a${i}`)) // in order per sender
    }
    await waitFor(() => a.frames.length === N && b.frames.length === N)
  })

  it('marks an un-pinged instance stale: listed, deaf, and closed (1006) by its next non-ping frame', async () => {
    const s = await startServer({ pingWindow: 150 })
    const quiet = await rawPeer(route(s, 'chat', '?id=quiet'))
    const live = await rawPeer(route(s, 'chat', '?id=live'))
    const pinger = setInterval(() => live.send({ type: -1, data: '' }), 40)
    try {
      await sleep(400)
      expect(
        s
          .instances('chat')
          .map((i) => i.id)
          .sort(),
      ).toEqual(['live', 'quiet']) // still listed
      live.send({ type: 1, data: 'anyone?' })
      await sleep(100)
      expect(quiet.frames).toEqual([]) // deaf
      quiet.send({ type: -1, data: '' }) // a ping does not revive it
      quiet.send({ type: 1, data: 'hello' })
      expect((await quiet.closed).code).toBe(1006)
      await waitFor(() => s.instances('chat').length === 1)
      expect(live.frames).toEqual([])
    } finally {
      clearInterval(pinger)
    }
  })

  it('keeps an instance that pings inside every window', async () => {
    const s = await startServer({ pingWindow: 150 })
    const a = await rawPeer(route(s, 'chat', '?id=a'))
    const b = await rawPeer(route(s, 'chat', '?id=b'))
    const pinger = setInterval(() => {
      a.send({ type: -1, data: '' })
      b.send({ type: -1, data: '' })
    }, 40)
    try {
      await sleep(500)
      a.send({ type: 1, data: 'still there' })
      expect(await b.next()).toEqual({ type: 1, data: 'still there', from: 'a' })
    } finally {
      clearInterval(pinger)
    }
  })
})

describe('embedded server: HTTP routes', () => {
  it('lists the instances of a channel, one instance, and 404s as the reference does', async () => {
    const s = await startServer()
    const get = (p: string) => fetch(`${s.httpUrl}${p}`)
    let r = await get('/api/channel/chat')
    expect(r.status).toBe(404)
    expect(await r.json()).toEqual({ error: 'Channel not found' })
    await rawPeer(route(s, 'chat', '?id=alice'))
    r = await get('/api/channel/chat')
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toBe('application/json')
    const list = await r.json()
    expect(list).toHaveLength(1)
    expect(Object.keys(list[0]).sort()).toEqual(['channel', 'created_at', 'id'])
    expect(list[0].channel).toBe('chat')
    expect(list[0].id).toBe('alice')
    expect(list[0].created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    r = await get('/api/channel/chat/alice')
    expect(await r.json()).toEqual(list[0])
    r = await get('/api/channel/chat/bob')
    expect(r.status).toBe(404)
    expect(await r.json()).toEqual({ error: 'Instance not found' })
  })

  it('answers 426 to a non-upgrade request on a channel route and 404 elsewhere', async () => {
    const s = await startServer()
    expect((await fetch(`${s.httpUrl}/channel/chat`)).status).toBe(426)
    expect((await fetch(`${s.httpUrl}/nope`)).status).toBe(404)
    expect((await fetch(`${s.httpUrl}/api/channel/chat`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${s.httpUrl}/api/channel/%E0%A4%A`)).status).toBe(404)
  })

  it('sends CORS headers when cors is on (the default) and none when off', async () => {
    const s = await startServer()
    const r = await fetch(`${s.httpUrl}/api/channel/chat`)
    expect(r.headers.get('access-control-allow-origin')).toBe('*')
    const pre = await fetch(`${s.httpUrl}/api/channel/chat`, { method: 'OPTIONS' })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-methods')).toContain('GET')
    const off = await startServer({ cors: false })
    expect((await fetch(`${off.httpUrl}/api/channel/chat`)).headers.get('access-control-allow-origin')).toBeNull()
  })

  it('binds to 127.0.0.1 by default and refuses bad options with a clear error', async () => {
    const s = await startServer()
    expect(s.host).toBe('127.0.0.1')
    expect(s.address).toBe(`127.0.0.1:${s.port}`)
    await expect(startServer({ port: -1 })).rejects.toThrow(/invalid port/)
    await expect(startServer({ token: '' })).rejects.toThrow(/token/)
    await expect(startServer({ port: s.port })).rejects.toThrow(/in use/)
  })
})
