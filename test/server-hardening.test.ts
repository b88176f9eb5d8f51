// The embedded server against requests, peers and clocks no well-behaved client would produce.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'
import { blackHoleProxy, clientFrame, rawRequest, rawWebSocket, upgradeRequest } from './raw-http'

afterEach(closeAll)

const children: ChildProcess[] = []
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

/** A server in its own process (test/fixtures/sock-node.mjs), so that a crash is a dead process, not a test error. */
async function childServer(options: object = {}): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  const script = fileURLToPath(new URL('./fixtures/sock-node.mjs', import.meta.url))
  const child = spawn(process.execPath, [script, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!).port)
    })
    child.once('exit', (code) => reject(new Error(`server process exited (${code}): ${err}`)))
  })
  return { child, port, stderr: () => err }
}

const get = (target: string, extra: string[] = [], method = 'GET') => `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra.map((e) => `${e}\r\n`).join('')}\r\n`

describe('server: no request crashes or hangs it', () => {
  it('answers an upgrade to `//` (it used to kill the process with TypeError: Invalid URL) and keeps serving', async () => {
    const s = await childServer()
    for (const target of ['//', '//channel/chat', '///x', '//x:y@z/channel/chat']) {
      const a = await rawRequest(s.port, upgradeRequest(target))
      expect(a.status, target).toBe(404)
      expect(a.closed).toBe(true)
    }
    const p = await rawPeer(`ws://127.0.0.1:${s.port}/channel/chat?id=after`)
    p.send({ type: 0, data: '' })
    expect(await p.next()).toEqual({ type: 0, data: 'after', from: 'after' })
    p.close()
    expect(s.child.exitCode).toBeNull()
    expect(s.stderr()).toBe('')
  })

  it('answers `//` and other odd targets over plain HTTP with 404 or 400, not a misleading 503', async () => {
    const s = await startServer()
    expect((await rawRequest(s.port, get('//'))).status).toBe(404)
    expect((await rawRequest(s.port, get('//api/channel/chat'))).status).toBe(404)
    expect((await rawRequest(s.port, get('*', [], 'OPTIONS'))).status).toBe(400)
    // absolute-form targets are valid HTTP/1.1: routed by their path
    expect((await rawRequest(s.port, get(`http://127.0.0.1:${s.port}/api/channel/chat`))).status).toBe(404)
    const listed = await rawRequest(s.port, get('/api/channel/chat?x=%zz&x=1&x=%00'))
    expect(listed.status).toBe(404)
    expect(listed.text).toContain('{"error":"Channel not found"}')
  })

  it('answers a request Node cannot parse with 400, and too large a head with 431, instead of dropping the socket', async () => {
    const s = await startServer()
    const garbage = await rawRequest(s.port, 'GARBAGE\r\n\r\n')
    expect(garbage.status).toBe(400)
    expect(garbage.closed).toBe(true)
    expect((await rawRequest(s.port, 'GET /api/channel/chat HTTP/1.1\r\nBad Header\r\n\r\n')).status).toBe(400)
    expect((await rawRequest(s.port, get('/api/channel/chat', [`X-Big: ${'a'.repeat(20_000)}`]))).status).toBe(431)
    expect((await rawRequest(s.port, get(`/api/channel/${'a'.repeat(20_000)}`))).status).toBe(431)
    expect((await rawRequest(s.port, upgradeRequest('/channel/chat', [`X-Big: ${'a'.repeat(20_000)}`]))).status).toBe(431)
  })

  it('answers CONNECT with 405 (Node closed it unanswered)', async () => {
    const s = await startServer()
    for (const target of ['127.0.0.1:443', '/api/channel/chat', '//']) {
      const a = await rawRequest(s.port, `CONNECT ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
      expect(a.status, target).toBe(405)
      expect(a.headers.allow).toBe('GET, HEAD, OPTIONS')
    }
  })

  it('answers 405 with Allow for other methods on /api, /channel and static files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sock-static-'))
    writeFileSync(join(dir, 'index.html'), '<p>hi</p>')
    try {
      const s = await startServer({ static: dir })
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'TRACE', 'PROPFIND']) {
        const api = await rawRequest(s.port, get('/api/channel/chat', [], method))
        expect(api.status, method).toBe(405)
        expect(api.headers.allow).toBe('GET, HEAD, OPTIONS')
        const ch = await rawRequest(s.port, get('/channel/chat', [], method))
        expect(ch.status, method).toBe(405)
        expect(ch.headers.allow).toBe('GET')
        const st = await rawRequest(s.port, get('/index.html', [], method))
        expect(st.status, method).toBe(405)
        expect(st.headers.allow).toBe('GET, HEAD')
      }
      expect((await rawRequest(s.port, get('/api/channel/chat', [], 'FOO'))).status).toBe(400) // not a method Node parses
      const pre = await rawRequest(s.port, get('/api/channel/chat', [], 'OPTIONS'))
      expect(pre.status).toBe(204)
      expect(pre.headers.allow).toBe('GET, HEAD, OPTIONS')
      expect((await rawRequest(s.port, get('/index.html'))).status).toBe(200)
      expect((await rawRequest(s.port, get('/index.html', [], 'HEAD'))).status).toBe(200)
      expect((await rawRequest(s.port, get('/%00'))).status).toBe(404)
      expect((await rawRequest(s.port, get('/%'))).status).toBe(404)
      expect((await rawRequest(s.port, get('/..%2f..%2fetc%2fpasswd'))).status).toBe(403)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('survives a static file that fails while it is read (it used to crash on the read stream error)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sock-static-'))
    symlinkSync('/proc/self/mem', join(dir, 'broken.bin')) // a regular file whose every read fails with EIO
    try {
      const s = await childServer({ static: dir })
      const a = await rawRequest(s.port, get('/broken.bin'))
      expect(a.closed).toBe(true)
      expect((await rawRequest(s.port, get('/api/channel/chat'))).status).toBe(404) // still serving
      expect(s.child.exitCode).toBeNull()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.each([
    ['a POST upgrade', upgradeRequest('/channel/chat', [], 'POST'), 405, { allow: 'GET' }],
    ['no Sec-WebSocket-Key', upgradeRequest('/channel/chat', ['Sec-WebSocket-Key: -']), 400, {}],
    ['a short Sec-WebSocket-Key', upgradeRequest('/channel/chat', ['Sec-WebSocket-Key: abc']), 400, {}],
    ['a key that is not base64', upgradeRequest('/channel/chat', ['Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==']), 400, {}],
    ['version 12', upgradeRequest('/channel/chat', ['Sec-WebSocket-Version: 12']), 426, { 'sec-websocket-version': '13, 8' }],
    ['no version', upgradeRequest('/channel/chat', ['Sec-WebSocket-Version: -']), 426, { 'sec-websocket-version': '13, 8' }],
    ['Upgrade: h2c', upgradeRequest('/channel/chat', ['Upgrade: h2c']), 400, {}],
    ['an /api path', upgradeRequest('/api/channel/chat'), 404, {}],
    ['the root', upgradeRequest('/'), 404, {}],
    ['a channel route with more segments', upgradeRequest('/channel/chat/x'), 404, {}],
  ])('answers an upgrade with %s cleanly', async (_name, request, status, headers) => {
    const s = await startServer()
    const a = await rawRequest(s.port, request)
    expect(a.status).toBe(status)
    expect(a.headers).toMatchObject(headers)
    expect(a.closed).toBe(true)
    expect(s.connections).toBe(0)
  })

  it.each([
    ['/channel/%', /invalid channel/],
    ['/channel/%zz', /invalid channel/],
    ['/channel/%00', /invalid channel/],
    ['/channel/%C0%AF', /invalid channel/], // overlong UTF-8
    ['/channel/caf%C3%A9', /invalid channel/],
    ['/channel/\u00e9', /invalid channel/],
    ['/channel/chat?id=%00', /invalid id/],
    ['/channel/chat?id=%', /invalid id/],
    ['/channel/chat?id=a&id=a', /more than once/],
    ['/channel/chat?token=demo&token=x', /more than once/],
  ])('closes an upgrade to %s with 1008 and a reason', async (target, reason) => {
    const s = await startServer()
    const p = await rawPeer(`${s.url}${target}`)
    const closed = await p.closed
    expect(closed.code).toBe(1008)
    expect(closed.reason).toMatch(reason)
    expect(s.instances('chat')).toEqual([])
  })
})

describe('server: time', () => {
  it('marks nobody stale when the wall clock steps an hour forward, an hour back, and back again', async () => {
    const s = await startServer({ pingWindow: 1000 }) // sweeps every 250 ms
    const a = await rawPeer(`${s.url}/channel/clock?id=a`)
    const b = await rawPeer(`${s.url}/channel/clock?id=b`)
    const real = Date.now.bind(Date)
    const spy = vi.spyOn(Date, 'now')
    try {
      // Both ping, then the clock steps and stays there for at least two sweeps, all well inside one real window.
      for (const step of [3_600_000, -3_600_000, 0]) {
        a.send({ type: -1, data: '' })
        b.send({ type: -1, data: '' })
        await sleep(50)
        spy.mockImplementation(() => real() + step)
        await sleep(600)
      }
    } finally {
      spy.mockRestore()
    }
    a.send({ type: 1, data: 'still here' })
    expect(await b.next()).toEqual({ type: 1, data: 'still here', from: 'a' })
    b.send({ type: 1, data: 'me too' })
    expect(await a.next()).toEqual({ type: 1, data: 'me too', from: 'b' })
  })
})

describe('server: an id survives its holder dying silently', () => {
  it('lets a join take the id of a holder lost in a network black hole (its WebSocket ping goes unanswered)', async () => {
    const s = await startServer() // default 60 s ping window: the holder is not stale, its socket is dead
    const proxy = await blackHoleProxy(s.port)
    const replaced: unknown[] = []
    const gone: string[] = []
    s.on('replace', (info) => replaced.push(info))
    s.on('disconnect', ({ id, code }) => gone.push(`${id}:${code}`))
    try {
      const a = await rawPeer(`ws://127.0.0.1:${proxy.port}/channel/bh?id=alice`)
      a.send({ type: -1, data: '' })
      a.send({ type: 0, data: '' })
      expect((await a.next()).data).toBe('alice')
      proxy.dark()
      // Before: 1008 "duplicate id" for as long as the dead connection lingered (TCP may keep it for hours).
      const t0 = performance.now()
      const b = await rawPeer(`${s.url}/channel/bh?id=alice`)
      b.send({ type: 0, data: '' })
      expect(await b.next(undefined, 6000)).toEqual({ type: 0, data: 'alice', from: 'alice' })
      console.log(`black hole: the newcomer was admitted as alice after ${Math.round(performance.now() - t0)} ms (pongTimeout 2000)`)
      expect(replaced).toEqual([{ channel: 'bh', id: 'alice', why: 'dead' }])
      await waitFor(() => gone.length === 1, 3000, 'the old connection to be removed')
      expect(s.instances('bh')).toHaveLength(1)
      expect(s.connections).toBe(1)
      const c = await rawPeer(`${s.url}/channel/bh?id=carol`)
      c.send({ type: 1, data: 'hi alice' })
      expect(await b.next()).toEqual({ type: 1, data: 'hi alice', from: 'carol' })
    } finally {
      await proxy.close()
    }
  })

  it('lets a join take the id of a stale holder at once, and closes the old socket', async () => {
    const s = await startServer({ pingWindow: 300 })
    const replaced: unknown[] = []
    s.on('replace', (info) => replaced.push(info))
    const a = await rawPeer(`${s.url}/channel/st?id=alice`) // never pings: stale after one window
    await sleep(700)
    const b = await rawPeer(`${s.url}/channel/st?id=alice`)
    b.send({ type: -1, data: '' })
    b.send({ type: 0, data: '' })
    expect(await b.next()).toEqual({ type: 0, data: 'alice', from: 'alice' })
    expect(replaced).toEqual([{ channel: 'st', id: 'alice', why: 'stale' }])
    expect(await a.closed).toEqual({ code: 1008, reason: expect.stringMatching(/^replaced/) })
    expect(s.instances('st')).toHaveLength(1)
  })

  it('keeps a live holder (it answers the ping): the newcomer gets 1008 duplicate id', async () => {
    const s = await startServer()
    const replaced: unknown[] = []
    s.on('replace', (info) => replaced.push(info))
    const a = await rawPeer(`${s.url}/channel/live?id=alice`)
    a.send({ type: -1, data: '' })
    const b = await rawPeer(`${s.url}/channel/live?id=alice`)
    expect(await b.closed).toEqual({ code: 1008, reason: expect.stringContaining('duplicate id') })
    a.send({ type: 0, data: '' })
    expect(await a.next()).toEqual({ type: 0, data: 'alice', from: 'alice' })
    expect(replaced).toEqual([])
  })

  it('ends a connection whose WebSocket pings go unanswered, with no newcomer needed', async () => {
    const s = await startServer({ pingWindow: 1000, pongTimeout: 300 })
    const proxy = await blackHoleProxy(s.port)
    const gone: number[] = []
    s.on('disconnect', ({ code }) => gone.push(code))
    try {
      const a = await rawPeer(`ws://127.0.0.1:${proxy.port}/channel/hb?id=a`)
      a.send({ type: -1, data: '' })
      const live = await rawPeer(`${s.url}/channel/hb?id=live`) // answers every ping: stays
      proxy.dark()
      await waitFor(() => gone.length === 1, 4000, 'the dead connection to be ended')
      expect(s.instances('hb').map((i) => i.id)).toEqual(['live'])
      expect(live.ws.readyState).toBe(1)
    } finally {
      await proxy.close()
    }
  })
})

describe('server: bounds on what peers control', () => {
  it('refuses a join beyond maxConnections with 503 and Retry-After, and lets one in when a slot frees', async () => {
    const s = await startServer({ maxConnections: 3 })
    const peers = await Promise.all([1, 2, 3].map((i) => rawPeer(`${s.url}/channel/full?id=p${i}`)))
    const over = await rawRequest(s.port, upgradeRequest('/channel/full?id=p4'))
    expect(over.status).toBe(503)
    expect(over.headers['retry-after']).toBe('1')
    expect(over.closed).toBe(true)
    expect(s.connections).toBe(3)
    expect((await rawRequest(s.port, get('/api/channel/full'))).status).toBe(200) // REST still answers
    peers[0]!.close()
    await waitFor(() => s.connections === 2, 3000, 'a slot to free')
    const p4 = await rawPeer(`${s.url}/channel/full?id=p4`)
    p4.send({ type: 0, data: '' })
    expect(await p4.next()).toEqual({ type: 0, data: 'p4', from: 'p4' })
  })

  it('bounds channel names and ids at 256 characters (the maps keyed by them are bounded in bytes too)', async () => {
    const s = await startServer()
    const long = 'a'.repeat(256)
    const ok = await rawPeer(`${s.url}/channel/${long}?id=${long}`)
    ok.send({ type: 0, data: '' })
    expect((await ok.next()).data).toBe(long)
    for (const target of [`/channel/${long}b`, `/channel/chat?id=${long}b`]) {
      const p = await rawPeer(`${s.url}${target}`)
      expect(await p.closed).toEqual({ code: 1008, reason: expect.stringMatching(/^invalid (channel|id): .*at most 256 characters/) })
    }
  })

  it('drops the socket of a connection closed with 1013 that never answers the close, within about 5 s', async () => {
    const s = await startServer({ maxBuffered: 256 * 1024 })
    const sock = await rawWebSocket(s.port, '/channel/gone?id=g')
    sock.pause() // reads nothing, answers nothing: its slot must not be held for ws's default 30 s
    sock.on('error', () => {})
    const burst = Buffer.concat(Array(1000).fill(clientFrame('{}')))
    for (let i = 0; i < 100 && !sock.destroyed; i++) {
      sock.write(burst) // who-am-I after who-am-I: its replies pass maxBuffered, it is closed with 1013
      await sleep(5)
    }
    await waitFor(() => s.connections === 0, 8000, 'the connection to be dropped')
    sock.destroy()
  })

  it('rejects bad maxConnections and pongTimeout options with a clear error', async () => {
    await expect(startServer({ maxConnections: 0 })).rejects.toThrow(/invalid maxConnections 0: use an integer of at least 1/)
    await expect(startServer({ maxConnections: 1.5 })).rejects.toThrow(/invalid maxConnections/)
    await expect(startServer({ pongTimeout: -1 })).rejects.toThrow(/invalid pongTimeout/)
  })
})
