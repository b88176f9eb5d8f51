import { afterEach, describe, expect, it } from 'vitest'
import type { SockClient, LifecycleInfo, SendReport, SockMessage } from '../src'
import { createSockServer, type SockServer } from '../src/server'
import { client, closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

const extra: SockServer[] = []

afterEach(async () => {
  await Promise.all(extra.splice(0).map((s) => s.close({ abrupt: true })))
  await closeAll()
})

async function three() {
  return Promise.all([startServer(), startServer(), startServer()])
}

describe('broadcast mode', () => {
  it('delivers each signal exactly once to a client on all three servers and reports every address', async () => {
    const servers = await three()
    const addrs = servers.map((s) => s.address)
    const tx = client({ id: 'tx' })
    const rx = client({ id: 'rx' })
    tx.setup(addrs)
    rx.setup(addrs, 'broadcast')
    const got: SockMessage[] = []
    rx.on('chat', 'n', (_d, m) => got.push(m))
    await Promise.all([tx.join('chat'), rx.join('chat')])
    const allOpen = (c: SockClient) => c.connectionsOf('chat').length === 3 && c.connectionsOf('chat').every((x) => x.state === 'open')
    await waitFor(() => allOpen(tx) && allOpen(rx), 3000, 'both open on all servers')
    expect(rx.connectionsOf('chat').map((x) => [x.address, x.id])).toEqual(addrs.map((a) => [a, 'rx']))
    const reports = []
    for (let i = 0; i < 50; i++) reports.push(await tx.signal('chat', 'n', i))
    await waitFor(() => got.length >= 50)
    await sleep(150) // any duplicate would have arrived by now
    expect(got.map((m) => m.data)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    expect(reports[0]!.sent.sort()).toEqual([...addrs].sort())
    expect(reports[0]!.queued).toEqual([])
    expect(reports[0]!.failed).toEqual([])
  })

  it('keeps traffic flowing when one server dies mid-stream and rejoins it after restart', async () => {
    const servers = await three()
    const addrs = servers.map((s) => s.address)
    const tx = client({ id: 'tx' })
    const rx = client({ id: 'rx' })
    tx.setup(addrs)
    rx.setup(addrs)
    const got: number[] = []
    const opens: LifecycleInfo[] = []
    rx.on('chat', 'n', (d) => got.push(d))
    rx.on('socket', 'open', (i) => opens.push(i))
    await Promise.all([tx.join('chat'), rx.join('chat')])
    await waitFor(() => servers.every((s) => s.instances('chat').length === 2))
    const port = servers[1]!.port
    let i = 0
    const reports = []
    for (; i < 100; i++) {
      if (i === 30) await servers[1]!.close({ abrupt: true })
      reports.push(await tx.signal('chat', 'n', i))
      await sleep(2)
    }
    await waitFor(() => got.length === 100, 5000, 'all 100 messages')
    expect(got).toEqual(Array.from({ length: 100 }, (_, k) => k)) // once each, in order
    expect(reports[99]!.sent).not.toContain(addrs[1])
    expect(reports[99]!.sent.length).toBe(2)
    // the dead address takes the frame into its queue or refuses it, without blocking the others
    expect([...reports[99]!.queued, ...reports[99]!.failed.map((f) => f.address)]).toContain(addrs[1])
    const reopenedBefore = opens.filter((o) => o.address === addrs[1]).length
    const again = await createSockServer({ port })
    extra.push(again)
    await waitFor(() => again.instances('chat').length === 2, 5000, 'rejoin on the restarted server')
    // the server registers a connection before the client hears the who-am-I reply that makes it 'open'
    await waitFor(() => opens.filter((o) => o.address === addrs[1]).length === reopenedBefore + 1, 3000, 'reopen event')
    await sleep(50)
    expect(opens.filter((o) => o.address === addrs[1]).length).toBe(reopenedBefore + 1)
    const r = await tx.signal('chat', 'n', 100)
    expect(r.sent.sort()).toEqual([...addrs].sort())
    await waitFor(() => got.length === 101)
    await sleep(100)
    expect(got.length).toBe(101)
  })

  it('plain type-1 frames carry no id: a client on several servers gets one per server, each naming its address', async () => {
    const servers = await three()
    const addrs = servers.map((s) => s.address)
    const rx = client({ id: 'rx' })
    rx.setup(addrs)
    const got: SockMessage[] = []
    rx.on('chat', 'message', (_d, m) => got.push(m))
    await rx.join('chat')
    await waitFor(() => servers.every((s) => s.instances('chat').length === 1))
    const tx = client({ id: 'tx' })
    tx.setup(addrs)
    await tx.join('chat')
    await waitFor(() => servers.every((s) => s.instances('chat').length === 2))
    await tx.signal('chat', 'message', 'hello')
    await waitFor(() => got.length === 3)
    expect(got.map((m) => m.address).sort()).toEqual([...addrs].sort())
    expect(new Set(got.map((m) => m.data))).toEqual(new Set(['hello']))
  })

  it('instances() asks every address and merges by id, saying where each was seen', async () => {
    const servers = await three()
    const addrs = servers.map((s) => s.address)
    const everywhere = client({ id: 'all' })
    everywhere.setup(addrs)
    await everywhere.join('chat')
    await rawPeer(`${servers[2]!.url}/channel/chat?id=onlythird`)
    await waitFor(() => servers.every((s) => s.instances('chat').length >= 1))
    const list = await everywhere.instances('chat')
    const byId = Object.fromEntries(list.map((i) => [i.id, i.addresses.sort()]))
    expect(byId).toEqual({ all: [...addrs].sort(), onlythird: [addrs[2]] })
    expect((await everywhere.instance('chat', 'onlythird'))?.addresses).toEqual([addrs[2]])
    await servers[0]!.close({ abrupt: true }) // an address down does not fail the listing
    const after = await everywhere.instances('chat')
    expect(after.find((i) => i.id === 'all')!.addresses.sort()).toEqual([addrs[1], addrs[2]].sort())
  })
})

describe('failover mode', () => {
  it('uses one address, moves to the next when it dies, and messages keep flowing both ways', async () => {
    const servers = await three()
    const addrs = servers.map((s) => s.address)
    const fo = client({ id: 'fo' })
    const peer = client({ id: 'peer' }) // on all three, broadcast
    fo.setup(addrs, 'failover')
    peer.setup(addrs)
    const foGot: number[] = []
    const peerGot: number[] = []
    const events: [string, LifecycleInfo][] = []
    fo.on('chat', 'n', (d) => foGot.push(d))
    peer.on('chat', 'n', (d) => peerGot.push(d))
    fo.on('socket', (e, i) => events.push([e, i]))
    // sent in the same tick the connection is lost, so it is certainly queued, then follows the connection
    let queued: Promise<SendReport> | undefined
    fo.on('socket', 'close', () => (queued ??= fo.signal('chat', 'n', 2)))
    await Promise.all([fo.join('chat'), peer.join('chat')])
    await waitFor(() => peer.connectionsOf('chat').every((x) => x.state === 'open'), 3000, 'peer open everywhere')
    expect(servers.map((s) => s.instances('chat').length)).toEqual([2, 1, 1]) // one connection, on the first address
    await fo.signal('chat', 'n', 1)
    await peer.signal('chat', 'n', 1)
    await waitFor(() => foGot.length === 1 && peerGot.length === 1)
    await servers[0]!.close({ abrupt: true })
    await waitFor(() => events.some(([e, i]) => e === 'open' && i.address === addrs[1]), 3000, 'failover')
    const report = await queued!
    expect(report.sent).toEqual([addrs[1]])
    const open = events.filter(([e]) => e === 'open').map(([, i]) => i.address)
    expect(open).toEqual([addrs[0], addrs[1]])
    expect(events.some(([e, i]) => e === 'reconnect' && i.address === addrs[1])).toBe(true)
    await peer.signal('chat', 'n', 2)
    await waitFor(() => foGot.length === 2 && peerGot.length === 2)
    await sleep(100)
    expect(foGot).toEqual([1, 2])
    expect(peerGot).toEqual([1, 2]) // nothing twice
    // A send written at once names the address the channel moved to, not the one its first sends went to.
    expect((await fo.signal('chat', 'n', 3)).sent).toEqual([addrs[1]])
    expect(
      servers[1]!
        .instances('chat')
        .map((i) => i.id)
        .sort(),
    ).toEqual(['fo', 'peer'])
  })

  it('wraps around the list', async () => {
    const servers = await three()
    const addrs = servers.map((s) => s.address)
    const port0 = servers[0]!.port
    const fo = client({ id: 'fo' })
    const opens: string[] = []
    fo.on('socket', 'open', (i) => opens.push(i.address))
    fo.setup(addrs, 'failover')
    await fo.join('chat')
    await servers[0]!.close({ abrupt: true })
    await waitFor(() => opens.length === 2)
    const back = await createSockServer({ port: port0 })
    extra.push(back)
    await servers[1]!.close({ abrupt: true })
    await waitFor(() => opens.length === 3)
    await servers[2]!.close({ abrupt: true })
    await waitFor(() => opens.length === 4, 5000, 'wrap to the first address')
    expect(opens).toEqual([addrs[0], addrs[1], addrs[2], addrs[0]])
  })
})
