// Every bound on what peers send, filled: each test sends one more than the bound holds and shows what the client
// does at the edge (the oldest entry forgotten, the newest refused, nothing more kept), through the embedded
// server on loopback with raw peers sending what no sock-client would.
import { afterEach, describe, expect, it } from 'vitest'
import { ReplyCode, type Reply } from '../src'
import { client, closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

afterEach(closeAll)

const envelope = (i: string, e: string, d: unknown) => ({ type: 7, data: JSON.stringify({ i, e, d }) })

describe('bounds on what peers send, filled', () => {
  it('the broadcast dedupe window remembers the last 4096 envelope ids: the 4097th back is delivered again, the 4096th is not', async () => {
    const [s1, s2] = [await startServer(), await startServer()]
    const rx = client({ id: 'rx' })
    rx.setup([s1.address, s2.address], 'broadcast')
    const got: string[] = []
    rx.on('bounds', 'n', (d: string) => got.push(d))
    await rx.join('bounds')
    await waitFor(() => rx.connectionsOf('bounds').every((c) => c.state === 'open'), 3000, 'both servers')
    const [p1, p2] = [await rawPeer(`${s1.url}/channel/bounds?id=p1`), await rawPeer(`${s2.url}/channel/bounds?id=p2`)]
    p1.send(envelope('first', 'n', 'first'))
    p1.send(envelope('kept', 'n', 'kept'))
    for (let i = 0; i < 4095; i++) p1.send(envelope(`f${i}`, 'n', 'filler')) // 4097 ids seen: 'first' is the one forgotten
    await waitFor(() => got.length === 4097, 10_000, 'every envelope once')
    p2.send(envelope('kept', 'n', 'kept again')) // still in the window: a copy, dropped
    p2.send(envelope('first', 'n', 'first again')) // out of it: delivered
    p2.send(envelope('last', 'n', 'last'))
    await waitFor(() => got.includes('last'), 3000, 'the last envelope')
    expect(got.slice(4097)).toEqual(['first again', 'last'])
  })

  it('finished chunked messages are remembered by their last 4096 ids: a repeat within them is ignored, beyond them it is read again', async () => {
    const s = await startServer()
    const rx = client({ id: 'rx' })
    rx.setup(s.address)
    const got: string[] = []
    rx.on('bounds', 'n', (d: string) => got.push(d))
    await rx.join('bounds')
    const p = await rawPeer(`${s.url}/channel/bounds?id=p`)
    // A message in one type-8 piece: `id:index:count:length:` and the envelope's text.
    const chunked = (id: string, env: string, d: string) => {
      const text = JSON.stringify({ i: env, e: 'n', d })
      return { type: 8, data: `${id}:0:1:${text.length}:${text}` }
    }
    p.send(chunked('c0', 'e0', 'c0'))
    p.send(chunked('c0', 'e0b', 'c0 repeated')) // finished: ignored
    for (let i = 1; i <= 4095; i++) p.send(chunked(`c${i}`, `e${i}`, 'filler')) // 4096 finished: c0 still among them
    p.send(chunked('c0', 'e0c', 'c0 within the bound'))
    p.send(chunked('c4096', 'e4096', 'one more')) // 4097: c0 is forgotten
    p.send(chunked('c0', 'e0d', 'c0 beyond the bound'))
    p.send(envelope('last', 'n', 'last'))
    await waitFor(() => got.includes('last'), 10_000, 'the last envelope')
    expect(got.filter((d) => d !== 'filler')).toEqual(['c0', 'one more', 'c0 beyond the bound', 'last'])
    expect(got.length).toBe(4095 + 4)
  })

  it('the listener keys of a channel are kept for 64 event names; a peer sending 10,000 names costs no more, and each is still delivered', async () => {
    const s = await startServer()
    const rx = client({ id: 'rx' })
    rx.setup(s.address)
    const names = new Set<string>()
    let late = 0
    rx.on('bounds', (_d, m) => names.add(m.event))
    rx.on('bounds', 'name9999', () => late++) // a name far beyond the 64 kept: its listener still hears it
    await rx.join('bounds')
    const p = await rawPeer(`${s.url}/channel/bounds?id=p`)
    for (let i = 0; i < 10_000; i++) p.send(envelope(`i${i}`, `name${i}`, i))
    await waitFor(() => names.size === 10_000, 10_000, 'every name')
    expect(late).toBe(1)
    expect((rx as any).channelOf('bounds').keys.size).toBe(64)
  })

  it('requestAll() remembers the last 4096 reply ids: a copy within them is dropped, one beyond them is yielded again', async () => {
    const s = await startServer()
    const asker = client({ id: 'asker' })
    asker.setup(s.address)
    await asker.join('bounds')
    const p = await rawPeer(`${s.url}/channel/bounds?id=p`)
    const replies = asker.requestAll('bounds', 'count', null, { timeout: 15_000 })
    const q = await p.next((f) => f.type === 7 && JSON.parse(f.data).q !== undefined)
    const id = JSON.parse(q.data).i as string
    const reply = (r: string, d: unknown) => ({ type: 7, data: JSON.stringify({ i: r, e: '$r', t: 'asker', r: id, d }) })
    p.send(reply('R0', 'R0'))
    for (let i = 1; i <= 4096; i++) p.send(reply(`R${i}`, 'filler')) // 4097 ids: R0 is forgotten
    p.send(reply('R1', 'R1 again')) // still remembered: dropped
    p.send(reply('R0', 'R0 again')) // forgotten: yielded
    p.send(reply('Rlast', 'last'))
    const got: unknown[] = []
    for await (const r of replies as AsyncIterable<Reply<string>>) {
      got.push(r.data)
      if (r.data === 'last') break
    }
    expect(got.filter((d) => d !== 'filler')).toEqual(['R0', 'R0 again', 'last'])
    expect(got.length).toBe(4096 + 3)
  })

  it("a handler's concurrency, and replyCache.max for all of a channel's handlers, bound what runs at once: one more addressed request is answered code 1", async () => {
    const s = await startServer()
    const asker = client({ id: 'asker' })
    const bob = client({ id: 'bob', replyCache: { max: 3 } })
    for (const c of [asker, bob]) c.setup(s.address)
    await Promise.all([asker.join('bounds'), bob.join('bounds')])
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let running = 0
    bob.handle(
      'bounds',
      'slow',
      async () => {
        running++
        await gate
        return 'done'
      },
      { concurrency: 2 },
    )
    bob.handle('bounds', 'other', async () => {
      running++
      await gate
      return 'other done'
    })
    const slow = [asker.request('bounds', 'slow', null, { to: 'bob' }), asker.request('bounds', 'slow', null, { to: 'bob' })]
    await waitFor(() => running === 2, 3000, 'two slow handlers running')
    // the handler's concurrency (2) is full
    await expect(asker.request('bounds', 'slow', null, { to: 'bob' })).rejects.toMatchObject({ name: 'ReplyError', replyCode: ReplyCode.Rejected })
    // not addressed: no answer at all (another responder may take it), so it times out
    await expect(asker.request('bounds', 'slow', null, { timeout: 300 })).rejects.toMatchObject({ name: 'RequestError', code: 'ERR_TIMEOUT' })
    // another handler runs one more; then the channel's bound (replyCache.max 3) is full for every handler
    const other = asker.request('bounds', 'other', null, { to: 'bob' })
    await waitFor(() => running === 3, 3000, 'the third handler running')
    await expect(asker.request('bounds', 'other', null, { to: 'bob' })).rejects.toMatchObject({ name: 'ReplyError', replyCode: ReplyCode.Rejected })
    release()
    expect(await Promise.all([...slow, other])).toEqual(['done', 'done', 'other done'])
    // room again once they finished
    await sleep(20)
    expect(await asker.request('bounds', 'slow', null, { to: 'bob' })).toBe('done')
  })
})
