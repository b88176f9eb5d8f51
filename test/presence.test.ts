// Presence (issue 17): client.presence(channel) gives the live set of instances with join / leave / change events,
// driven by the REST routes of every address (plain Sock peers included) and updated at once by the announcements
// of sock-client peers (docs/protocol-presence.md), merged by id over several servers; polling only while someone
// listens, with backoff per address; bounded; ended by close().
import { createServer } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { SockClient, type Instance } from '../src'
import { SockClient as CoreClient } from '../src/core'
import { MAX_PRESENCE, presence, presenceOf } from '../src/presence'
import { client, closeAll, heapAfterGc, rawPeer, sleep, startServer, waitFor } from './helpers'

const cleanup: (() => unknown)[] = []
afterEach(async () => {
  await closeAll()
  for (const f of cleanup.splice(0)) await f()
})

/** A fetch that counts the REST requests it makes (and can be told to fail). */
function countingFetch() {
  const calls: { url: string; at: number }[] = []
  const f: { calls: typeof calls; fail: boolean; fetch: typeof fetch } = {
    calls,
    fail: false,
    fetch: ((url: string, init?: RequestInit) => {
      calls.push({ url: String(url), at: performance.now() })
      return f.fail ? Promise.reject(new Error('REST is down')) : fetch(url, init)
    }) as typeof fetch,
  }
  return f
}

/** Every presence event of `p`, as 'join id' / 'leave id'. */
function watch(p: ReturnType<SockClient['presence']>) {
  const log: string[] = []
  const joined: Instance[] = []
  p.on('join', (i) => (log.push(`join ${i.id}`), joined.push(i)))
  p.on('leave', (i) => log.push(`leave ${i.id}`))
  return { log, joined }
}

const ids = (list: readonly Instance[]) => list.map((i) => i.id).sort()

describe('presence over REST', () => {
  it('sees a plain Sock peer (raw ws) join and leave, with id, createdAt and addresses; list() and snapshot() agree', async () => {
    const s = await startServer()
    const c = client({ id: 'obs', presenceInterval: 100 })
    c.setup(s.address)
    const p = c.presence('room')
    expect(c.presence('room')).toBe(p) // one object per channel
    const { log, joined } = watch(p)
    await waitFor(() => log.includes('join obs'), 3000, 'our own instance')
    const raw = await rawPeer(`${s.url}/channel/room?id=plain`)
    await waitFor(() => log.includes('join plain'), 3000, 'the plain peer')
    const plain = joined.find((i) => i.id === 'plain')!
    expect(plain).toMatchObject({ channel: 'room', id: 'plain', addresses: [s.address] })
    expect(plain.createdAt).toBeInstanceOf(Date)
    const record = s.instances('room').find((i) => i.id === 'plain')!
    expect(plain.createdAt.getTime()).toBe(new Date(record.created_at.replace(/(\.\d{3})\d+/, '$1')).getTime()) // the server's, from REST
    expect(ids(await p.list())).toEqual(['obs', 'plain'])
    expect(ids(p.snapshot())).toEqual(['obs', 'plain'])
    expect(p.snapshot()).toBe(p.snapshot()) // the same array until something changes
    raw.close()
    await waitFor(() => log.includes('leave plain'), 3000, 'the plain peer leaving')
    expect(ids(p.snapshot())).toEqual(['obs'])
  })

  it('polls only while someone listens; list() without listeners is one REST round; close() ends it and leaves no timer', async () => {
    const s = await startServer()
    const f = countingFetch()
    const c = client({ id: 'obs', presenceInterval: 50, fetch: f.fetch, registrationCheck: 0 })
    c.setup(s.address)
    await c.join('room')
    const p = c.presence('room')
    expect(ids(await p.list())).toEqual(['obs']) // nobody listens: one round of REST
    expect(f.calls).toHaveLength(1)
    await sleep(200)
    expect(f.calls).toHaveLength(1) // and no polling
    const off = p.on('change', () => {})
    await waitFor(() => f.calls.length >= 4, 3000, 'polls while listened to')
    off()
    await sleep(60)
    const n = f.calls.length
    await sleep(300)
    expect(f.calls.length).toBe(n) // nobody listens: stopped
    expect(p.snapshot()).toEqual([])

    const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const { log } = watch(p)
    await waitFor(() => log.includes('join obs'), 3000, 'live again')
    c.close()
    expect(log.at(-1)).toBe('leave obs') // the set empties with the channel
    const m = f.calls.length
    await sleep(300)
    expect(f.calls.length).toBe(m)
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(timers)
  })

  it('backs off per address while REST fails (one error for the run), and polls at its interval again once it answers', async () => {
    const s = await startServer()
    const f = countingFetch()
    const c = client({ presenceInterval: 40, fetch: f.fetch, registrationCheck: 0 })
    const errors: string[] = []
    c.on('socket', 'error', (i) => errors.push(i.error!.message))
    c.setup(s.address)
    await c.join('room')
    f.fail = true
    const p = c.presence('room')
    p.on('change', () => {})
    await waitFor(() => f.calls.length >= 5, 5000, 'five failed polls')
    const at = f.calls.map((x) => x.at)
    const gaps = at.slice(1).map((t, i) => t - at[i]!)
    console.log(`presence REST failing, interval 40 ms: gaps between polls ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`)
    expect(gaps[1]!).toBeGreaterThan(gaps[0]! * 1.5)
    expect(gaps[2]!).toBeGreaterThan(gaps[1]! * 1.5)
    expect(gaps[3]!).toBeGreaterThan(gaps[2]! * 1.5)
    expect(errors.filter((e) => e.includes('presence of channel'))).toHaveLength(1)
    expect(errors[0]).toMatch(/REST is down/)
    f.fail = false
    const n = f.calls.length
    await waitFor(() => f.calls.length >= n + 4, 5000, 'polls at the interval again')
    const last = f.calls.slice(-3).map((x) => x.at)
    expect(last[2]! - last[1]!).toBeLessThan(gaps[3]!)
  })
})

describe('presence announcements', () => {
  it('a sock-client peer that joins or leaves is in or out at once, long before the next poll', async () => {
    const s = await startServer()
    const f = countingFetch()
    const c = client({ id: 'obs', presenceInterval: 60_000, fetch: f.fetch, registrationCheck: 0 })
    c.setup(s.address)
    await c.join('room')
    const p = c.presence('room')
    const { log, joined } = watch(p)
    expect(ids(await p.list())).toEqual(['obs']) // the first poll
    const polls = f.calls.length
    const bob = client({ id: 'bob', presenceInterval: 0 })
    bob.setup(s.address)
    const t0 = performance.now()
    await bob.join('room')
    await waitFor(() => log.includes('join bob'), 2000, 'bob announced')
    const joinMs = performance.now() - t0
    const b = joined.find((i) => i.id === 'bob')!
    expect(b).toMatchObject({ channel: 'room', addresses: [s.address] })
    expect(b.createdAt).toBeInstanceOf(Date)
    const t1 = performance.now()
    bob.leave('room')
    await waitFor(() => log.includes('leave bob'), 2000, 'bob left')
    const leaveMs = performance.now() - t1
    const carol = client({ id: 'carol' })
    carol.setup(s.address)
    await carol.join('room')
    await waitFor(() => log.includes('join carol'), 2000, 'carol')
    carol.close() // close() announces the leave too
    await waitFor(() => log.includes('leave carol'), 2000, 'carol closing')
    expect(f.calls.length).toBe(polls) // none of it came from REST
    expect(log).toEqual(['join obs', 'join bob', 'leave bob', 'join carol', 'leave carol'])
    console.log(`announcements: join seen ${joinMs.toFixed(0)} ms after join() began, leave ${leaveMs.toFixed(0)} ms after leave(); presenceInterval 60 s`)
  })

  it('no client hands an announcement to listeners: the full client reads it, a kernel without the feature drops it', async () => {
    const s = await startServer()
    const full = client({ id: 'full' })
    const kernel = new CoreClient({ id: 'kern' })
    cleanup.push(() => kernel.close())
    const seenFull: string[] = []
    const seenKernel: string[] = []
    full.on('room', (event) => seenFull.push(event))
    kernel.on('room', (event) => seenKernel.push(event))
    full.setup(s.address)
    kernel.setup(s.address)
    await Promise.all([full.join('room'), kernel.join('room')])
    const peer = client({ id: 'peer' })
    peer.setup(s.address)
    await peer.join('room')
    await peer.signal('room', 'message', 'hi')
    await waitFor(() => seenFull.length && seenKernel.includes('message'), 2000, 'the message')
    await sleep(50)
    expect(seenFull).toEqual(['message'])
    expect(seenKernel).toEqual(['message']) // not peer's announcement (nor full's, if the kernel was open first)
    expect(() => presenceOf(kernel as never, 'room')).toThrow(/presence feature/)
    const composed = new CoreClient({ id: 'comp', features: [presence] })
    cleanup.push(() => composed.close())
    composed.setup(s.address)
    const got: string[] = []
    presenceOf(composed, 'room').on('join', (i) => got.push(i.id))
    await waitFor(() => ['comp', 'full', 'kern', 'peer'].every((id) => got.includes(id)), 3000, 'everyone, over REST, on the kernel with the feature')
  })
})

describe('presence announcements over two servers', () => {
  it('a peer on both servers is seen on both through its announcements alone: one per connection that opens', async () => {
    const [s1, s2] = [await startServer(), await startServer()]
    const f = countingFetch()
    const obs = client({ id: 'obs', presenceInterval: 60_000, fetch: f.fetch, registrationCheck: 0 })
    obs.setup([s1.address, s2.address])
    await obs.join('room')
    await waitFor(() => obs.connectionsOf('room').every((x) => x.state === 'open'), 3000, 'obs on both')
    const p = obs.presence('room')
    p.on('change', () => {})
    await p.list()
    const polls = f.calls.length
    const peer = await rawPeer(`${s1.url}/channel/room?id=watcher`) // counts what reaches a plain peer on s1
    const carol = client({ id: 'carol', presenceInterval: 0 })
    carol.setup([s1.address, s2.address])
    await carol.join('room')
    await waitFor(() => p.snapshot().find((i) => i.id === 'carol')?.addresses.length === 2, 2000, 'carol on both servers')
    expect([...p.snapshot().find((i) => i.id === 'carol')!.addresses].sort()).toEqual([s1.address, s2.address].sort())
    expect(f.calls.length).toBe(polls) // announcements only
    await sleep(100)
    expect(peer.frames.filter((x) => x.type === 7 && x.from === 'carol')).toHaveLength(1) // one per server, not one per open connection
  })
})

describe('presence announcements, off', () => {
  it('presenceAnnounce: false sends none (a plain peer sees only what the application sends); REST still lists the client', async () => {
    const s = await startServer()
    const peer = await rawPeer(`${s.url}/channel/room?id=plain`)
    const quiet = client({ id: 'quiet', presenceAnnounce: false })
    quiet.setup(s.address)
    await quiet.join('room')
    await quiet.signal('room', 'message', 'only this')
    await peer.next((f) => f.data === 'only this')
    quiet.leave('room')
    await sleep(100)
    expect(peer.frames).toEqual([])
    const loud = client({ id: 'loud' })
    loud.setup(s.address)
    await loud.join('room')
    const announced = await peer.next((f) => f.type === 7)
    expect(JSON.parse(announced.data)).toEqual({ i: expect.any(String), e: 'sock:presence', d: { op: 'join' } })
    expect(announced.from).toBe('loud')
    loud.leave('room')
    expect(JSON.parse((await peer.next((f) => f.type === 7)).data).d).toEqual({ op: 'leave' })
    expect(() => client({ presenceAnnounce: 'no' as never })).toThrow(expect.objectContaining({ argument: 'options.presenceAnnounce' }))
  })
})

describe('presence over three servers', () => {
  it('merges by id: a raw ws peer, sock-client peers on one server each, one on two; leaves at once, and a server gone takes its instances with it', async () => {
    const [s1, s2, s3] = [await startServer(), await startServer(), await startServer()]
    const all = [s1.address, s2.address, s3.address]
    const obs = client({ id: 'obs', presenceInterval: 150 })
    obs.setup(all)
    const p = obs.presence('room')
    const { log } = watch(p)
    const errors: string[] = []
    obs.on('socket', 'error', (i) => errors.push(i.error!.message))
    await obs.join('room')
    const raw = await rawPeer(`${s1.url}/channel/room?id=plain`)
    const bob = client({ id: 'bob', presenceInterval: 0 })
    bob.setup(s2.address)
    const carol = client({ id: 'carol' })
    carol.setup([s2.address, s3.address]) // broadcast: on both
    await Promise.all([bob.join('room'), carol.join('room')])
    await waitFor(() => carol.connectionsOf('room').every((x) => x.state === 'open'), 3000, 'carol on both')
    await waitFor(() => ['bob', 'carol', 'obs', 'plain'].every((id) => p.snapshot().some((i) => i.id === id)), 3000, 'all four')
    await waitFor(() => p.snapshot().find((i) => i.id === 'carol')!.addresses.length === 2 && p.snapshot().find((i) => i.id === 'obs')!.addresses.length === 3, 3000, 'every address of carol and obs')
    const byId = Object.fromEntries(p.snapshot().map((i) => [i.id, [...i.addresses].sort()]))
    expect(byId).toEqual({ obs: [...all].sort(), plain: [s1.address], bob: [s2.address], carol: [s2.address, s3.address].sort() })
    expect(log.filter((l) => l.startsWith('join'))).toHaveLength(4) // once each, however many servers list it

    bob.leave('room')
    await waitFor(() => log.includes('leave bob'), 1000, 'bob leaving, at once')
    raw.close()
    await waitFor(() => log.includes('leave plain'), 3000, 'the raw peer leaving (REST)')
    await s3.close({ abrupt: true }) // carol keeps s2; what only s3 listed goes
    await waitFor(() => p.snapshot().find((i) => i.id === 'carol')?.addresses.length === 1, 5000, 'carol on s2 only')
    expect(p.snapshot().find((i) => i.id === 'carol')!.addresses).toEqual([s2.address])
    expect(
      p
        .snapshot()
        .find((i) => i.id === 'obs')!
        .addresses.sort(),
    ).toEqual([s1.address, s2.address].sort())
    expect(log.filter((l) => l === 'leave carol')).toEqual([])
    expect(errors.filter((e) => e.includes(`could not ask ${s3.address}`))).toHaveLength(1)
  })
})

describe('presence bounds', () => {
  it(`holds at most ${MAX_PRESENCE} instances whatever peers announce (one error says so), ignores ids it would not keep, and its memory stays bounded (heap)`, async () => {
    // A Sock server of our own that floods every client with announcements from ever new ids, and has no REST.
    const N = 40_000
    const http = createServer((_req, res) => res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Channel not found"}'))
    const wss = new WebSocketServer({ server: http })
    let flooded!: () => void
    const done = new Promise<void>((r) => (flooded = r))
    wss.on('connection', (ws) => {
      ws.on('message', (d) => {
        if ((JSON.parse(String(d)).type ?? 0) !== 0) return
        ws.send('{"type":0,"data":"obs","from":"obs"}')
        const env = (i: number, op: string) => JSON.stringify({ type: 7, data: JSON.stringify({ i: `e${op}${i}`, e: 'sock:presence', d: { op } }), from: `peer${i}` })
        let i = 0
        const burst = () => {
          for (let n = 0; n < 2000 && i < N; n++, i++) ws.send(env(i, 'join'))
          if (i < N) return void setImmediate(burst)
          ws.send(JSON.stringify({ type: 7, data: JSON.stringify({ i: 'long', e: 'sock:presence', d: { op: 'join' } }), from: 'x'.repeat(300) }))
          for (let k = 0; k < N; k++) ws.send(env(N + k, 'leave')) // leaves of ids never seen: the 'gone' list is bounded too
          ws.send(JSON.stringify({ type: 1, data: 'end', from: 'srv' }), () => flooded())
        }
        burst()
      })
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    cleanup.push(() => new Promise((r) => (wss.close(), http.closeAllConnections(), http.close(r))))
    const port = (http.address() as { port: number }).port
    const c = client({ id: 'obs', presenceInterval: 60_000, registrationCheck: 0 })
    const errors: string[] = []
    c.on('socket', 'error', (i) => errors.push(`${i.error!.code} ${i.error!.message}`))
    let ended = false
    c.on('room', 'message', () => (ended = true))
    const before = heapAfterGc()
    c.setup('127.0.0.1', port)
    const p = c.presence('room')
    p.on('change', () => {})
    await done
    await waitFor(() => ended, 20_000, 'the end of the flood')
    const grown = heapAfterGc() - before
    expect(p.snapshot()).toHaveLength(MAX_PRESENCE)
    expect(p.snapshot().some((i) => i.id.length > 256)).toBe(false)
    expect(errors.filter((e) => e.startsWith('ERR_QUEUE_FULL'))).toEqual([expect.stringContaining(`holds ${MAX_PRESENCE} instances`)])
    console.log(`presence flooded with ${N} joins and ${N} leaves of new ids: ${p.snapshot().length} kept, heap +${(grown / 1048576).toFixed(1)} MiB`)
    expect(grown).toBeLessThan(14 << 20) // what 10 000 instances take (about 6.5 MiB), with room; the 40 000 unbounded would take four times that
  }, 30_000)
})

describe('presence listeners', () => {
  it('a listener that throws is isolated (ERR_LISTENER) and the others still hear; bad arguments throw at once', async () => {
    const s = await startServer()
    const c = client({ id: 'obs', presenceInterval: 100 })
    c.setup(s.address)
    const errors: string[] = []
    c.on('socket', 'error', (i) => errors.push(i.error!.code))
    const p = c.presence('room')
    p.on('join', () => {
      throw new Error('bad listener')
    })
    const { log } = watch(p)
    await waitFor(() => log.includes('join obs'), 3000, 'the join')
    expect(errors).toContain('ERR_LISTENER')
    expect(() => p.on('nope' as never, () => {})).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'event' }))
    expect(() => p.on('join', 'x' as never)).toThrow(expect.objectContaining({ argument: 'listener' }))
    expect(() => c.presence('bad room')).toThrow(expect.objectContaining({ argument: 'channel' }))
    expect(() => new SockClient({ presenceInterval: -5 })).toThrow(expect.objectContaining({ argument: 'options.presenceInterval' }))
  })
})
