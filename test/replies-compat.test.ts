// Interoperability of requests, replies and addressed events: a Python responder written from
// docs/protocol-replies.md alone (standard library only), sock-client 0.1.0 as built from commit 07828e0
// (test/fixtures/sock-client-0.1.0.umd.min.cjs: `git archive 07828e0`, `npm i`, `npx rollup -c`, its UMD bundle), and a
// plain Sock peer over raw ws (what sockc is): none of them breaks, each degrades as docs/protocol-replies.md says.
import { spawn, type ChildProcess } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { ReplyCode } from '../src'
import { client, closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

const require = createRequire(import.meta.url)
const children = new Set<ChildProcess>()
const old: { close(): void }[] = []
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL')
  children.clear()
  for (const c of old.splice(0)) c.close()
  await closeAll()
})

describe('a Python responder from the protocol document', () => {
  it('answers with data, a fast reply, code 5 without internals, code 2 for no handler, and a repeat from its cache', async () => {
    const s = await startServer()
    const py = spawn('python3', [fileURLToPath(new URL('./fixtures/responder.py', import.meta.url)), '127.0.0.1', String(s.port), 'py', 'pyone'], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(py)
    let out = ''
    let err = ''
    py.stdout!.on('data', (d) => (out += d))
    py.stderr!.on('data', (d) => (err += d))
    await waitFor(() => out.includes('ready') || err, 10_000, 'the Python responder')
    expect(err).toBe('')
    const a = client({ id: 'alice' })
    a.setup(s.address)
    await a.join('py')
    expect(await a.request('py', 'add', { a: 2, b: 3 }, { to: 'pyone' })).toBe(5)
    expect(await a.request('py', 'ping', undefined, { to: 'pyone' })).toBeUndefined()
    const failed = await a.request('py', 'fail', 1, { to: 'pyone' }).catch((e) => e)
    expect(failed).toMatchObject({ name: 'ReplyError', replyCode: ReplyCode.HandlerError, from: 'pyone' })
    expect(failed.message).not.toContain('internal')
    expect(await a.request('py', 'nope', 1, { to: 'pyone' }).catch((e) => e.replyCode)).toBe(ReplyCode.NoHandler)
    // a retry (the same id) is answered from its cache, not run again
    const peer = await rawPeer(`${s.url}/channel/py?id=retrier`)
    const req = (q: number) => ({ type: 7, data: JSON.stringify({ i: 'again1', e: 'add', q, t: 'pyone', d: { a: 1, b: 1 } }) })
    peer.send(req(5000))
    const r1 = await peer.next((f) => f.type === 7)
    peer.send(req(4000))
    const r2 = await peer.next((f) => f.type === 7)
    expect(JSON.parse(r1.data)).toMatchObject({ e: '$r', r: 'again1', t: 'retrier', d: 2 })
    expect(r2.data).toBe(r1.data)
    expect(out.match(/ran add/g)).toHaveLength(2) // alice's request and the retrier's, each once
  })
})

describe('sock-client 0.1.0 peers', () => {
  it('see requests as events and replies and control frames only on catch-all listeners, with no error; their own events still reach new clients', async () => {
    const { SockClient: Old } = require('./fixtures/sock-client-0.1.0.umd.min.cjs')
    const s = await startServer()
    const legacy = new Old({ id: 'legacy', WebSocket, reconnect: { minDelay: 50, maxDelay: 200 } })
    old.push(legacy)
    legacy.setup(s.address)
    const events: string[] = []
    const errors: string[] = []
    const resize: unknown[] = []
    legacy.on('jobs', (e: string) => events.push(e))
    legacy.on('jobs', 'resize', (d: unknown) => resize.push(d))
    legacy.on('socket', 'error', (i: { error: Error }) => errors.push(i.error.message))
    await legacy.join('jobs')
    const a = client({ id: 'alice' })
    const b = client({ id: 'bob' })
    a.setup(s.address)
    b.setup(s.address)
    b.handle('jobs', 'resize', (d: { w: number }) => ({ w: d.w * 2 }))
    b.handle('jobs', 'ack', () => {})
    b.handle('jobs', 'echo', (d: string) => d)
    await Promise.all([a.join('jobs'), b.join('jobs')])
    expect(await a.request('jobs', 'resize', { w: 10 })).toEqual({ w: 20 })
    expect(await a.request('jobs', 'ack')).toBeUndefined()
    expect(await a.request('jobs', 'echo', 'x'.repeat(3000))).toBe('x'.repeat(3000)) // chunks (type 8) both ways
    await a.signal('jobs', 'hint', 'only for bob', { to: 'bob' })
    await waitFor(() => events.filter((e) => e === 'type:9').length >= 1 && events.includes('hint'), 3000, 'the old peer to see the traffic')
    await sleep(200)
    expect(resize).toEqual([{ w: 10 }]) // a request is an event to it: it cannot reply, and the requester does not wait for it
    expect(events.filter((e) => e === 'echo' || e === '$r')).toEqual(['$r', 'echo', '$r']) // reassembled from chunks too (the ack was a type-9 fast reply)
    expect(events).toContain('$r') // replies: on catch-all listeners only
    expect(events).toContain('hint') // `t` is not honoured by 0.1 (documented)
    expect(errors).toEqual([])
    // and the old peer's own events reach the new clients
    const got = new Promise((r) => a.on('jobs', 'hello', (d) => r(d)))
    await legacy.signal('jobs', 'hello', { from: 'the past' })
    expect(await got).toEqual({ from: 'the past' })
  })
})

describe('plain Sock peers', () => {
  it('a raw ws peer (as sockc) sees the frames, stays connected and keeps talking type 1; its stray type 9 is an error event, not a crash', async () => {
    const s = await startServer()
    const plain = await rawPeer(`${s.url}/channel/jobs?id=plain`)
    plain.send({ type: -1, data: '' })
    const a = client({ id: 'alice' })
    const b = client({ id: 'bob' })
    a.setup(s.address)
    b.setup(s.address)
    b.handle('jobs', 'sum', (xs: number[]) => xs.reduce((x, y) => x + y, 0))
    await Promise.all([a.join('jobs'), b.join('jobs')])
    const errors: string[] = []
    a.on('socket', 'error', (i) => errors.push(i.error!.code))
    expect(await a.request('jobs', 'sum', [1, 2, 3])).toBe(6)
    await waitFor(() => plain.frames.some((f) => f?.type === 7 && JSON.parse(f.data).e === '$r'), 3000, 'the reply at the plain peer')
    const texts: string[] = []
    a.on('jobs', 'message', (t) => texts.push(t))
    plain.send({ type: 1, data: 'still here' })
    plain.send({ type: 9, data: 'not a control frame' })
    plain.send({ type: 9, data: 'a:nosuchrequest:0:r1' }) // a fast reply to nothing: dropped
    await waitFor(() => texts.length && errors.length, 3000, 'the text and the error')
    expect(texts).toEqual(['still here'])
    expect(errors).toEqual(['ERR_PROTOCOL'])
    expect(plain.ws.readyState).toBe(WebSocket.OPEN)
    expect(await a.request('jobs', 'sum', [4])).toBe(4)
  })
})
