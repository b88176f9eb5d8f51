// The debug log (issue 17): `debug: true | (entry) => void` gives structured entries (time, channel, address, event
// and its figures) for connect, open, close, retry, send, queue, drop, probe, receive, error and giveup; console.debug
// when true; nothing when off; never the token, whatever its source. A debug function that throws is isolated.
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { DebugEntry } from '../src'
import { SockClient as CoreClient } from '../src/core'
import { debug } from '../src/debug'
import { client, closeAll, rawPeer, sleep, startServer, waitFor } from './helpers'

afterEach(closeAll)

const events = (log: DebugEntry[]) => log.map((e) => e.event)

describe('debug', () => {
  it('a function gets an entry per step, each with time, channel, address and the figures that matter', async () => {
    const s = await startServer()
    const log: DebugEntry[] = []
    const c = client({ debug: (e) => log.push(e), queue: { maxCount: 2 } })
    c.setup(s.address)
    const early = c.signal('room', 'message', 'before open') // queued: the channel is not open yet
    await c.join('room')
    await early
    const peer = await rawPeer(`${s.url}/channel/room?id=peer`)
    await c.signal('room', 'message', 'hello')
    await peer.next((f) => f.data === 'hello')
    peer.send({ type: 1, data: 'hi back' })
    await waitFor(() => log.some((e) => e.event === 'receive'), 3000, 'the receive entry')
    const before = Date.now()
    for (const e of log) {
      expect(e).toMatchObject({ channel: 'room', address: s.address })
      expect(e.time).toBeGreaterThan(before - 60_000)
      expect(e.time).toBeLessThanOrEqual(before)
    }
    expect(events(log).slice(0, 4)).toEqual(['queue', 'connect', 'probe', 'open']) // queued before the first attempt began
    expect(log.find((e) => e.event === 'queue')).toMatchObject({ length: expect.any(Number), queued: 1 })
    expect(log.find((e) => e.event === 'probe')).toMatchObject({ rtt: expect.any(Number) })
    expect(log.find((e) => e.event === 'open')).toMatchObject({ id: c.idOf('room') })
    // what we sent (the presence feature's announcement goes out too, as an envelope of its own)
    const sent = log.filter((e) => e.event === 'send').map((e) => e.length)
    expect(sent.filter((n) => n === `{"type":1,"data":"before open"}`.length || n === `{"type":1,"data":"hello"}`.length)).toEqual([
      `{"type":1,"data":"before open"}`.length,
      `{"type":1,"data":"hello"}`.length,
    ])
    expect(log.find((e) => e.event === 'receive')).toMatchObject({ type: 1, length: expect.any(Number) })
    peer.close()

    await s.close({ abrupt: true })
    await waitFor(() => log.some((e) => e.event === 'retry'), 3000, 'the retry entry')
    expect(log.find((e) => e.event === 'close')).toMatchObject({ code: expect.any(Number) })
    expect(log.find((e) => e.event === 'retry')).toMatchObject({ attempt: 1, delay: expect.any(Number), reason: expect.any(String) })
    // while it is away the queue (2 frames) fills; the third send is refused
    const queued = [c.signal('room', 'message', 'a'), c.signal('room', 'message', 'b')]
    for (const p of queued) p.catch(() => {})
    await expect(c.signal('room', 'message', 'c')).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL' })
    expect(log.find((e) => e.event === 'drop')).toMatchObject({ error: 'ERR_QUEUE_FULL', length: expect.any(Number) })
    c.close()
    expect(log.at(-1)).toMatchObject({ event: 'close', state: 'closed' })
  })

  it('error and giveup entries name the code; a server rejection (1008) too', async () => {
    const s = await startServer({ token: 'right' })
    const log: DebugEntry[] = []
    const c = client({ token: 'wrong', debug: (e) => log.push(e) })
    c.setup(s.address)
    await expect(c.join('room')).rejects.toMatchObject({ code: 'ERR_REJECTED' })
    expect(log.find((e) => e.event === 'error')).toMatchObject({ error: 'ERR_REJECTED', message: expect.stringContaining('invalid token') })
    expect(log.find((e) => e.event === 'close')).toMatchObject({ code: 1008 })
    const port = s.port
    await s.close({ abrupt: true })
    const g: DebugEntry[] = []
    const d = client({ debug: (e) => g.push(e), reconnect: { maxRetries: 1, minDelay: 10, maxDelay: 10 } })
    d.setup('127.0.0.1', port)
    await expect(d.join('room')).rejects.toMatchObject({ code: 'ERR_GAVE_UP' })
    expect(events(g)).toContain('giveup')
  })

  it('true prints each entry with console.debug, one line each', async () => {
    const s = await startServer()
    const spy = vi.spyOn(console, 'debug').mockImplementation(() => {})
    try {
      const c = client({ debug: true })
      c.setup(s.address)
      await c.join('room')
      await c.signal('room', 'message', 'x')
      const lines = spy.mock.calls.map((a) => a.join(' '))
      expect(lines.length).toBeGreaterThanOrEqual(4)
      for (const l of lines) {
        expect(l).toMatch(/^\[sock-client\] \d\d:\d\d:\d\d\.\d{3} room /)
        expect(l).not.toContain('\n')
      }
      expect(lines.some((l) => l.includes(' open ') && l.includes(s.address))).toBe(true)
      expect(lines.some((l) => / send \{"length":\d+\}$/.test(l))).toBe(true)
      c.close() // while console.debug is still the spy
    } finally {
      spy.mockRestore()
    }
  })

  it('never shows the token, from a string or from a function, through connect, loss, retry and rejection', async () => {
    const s = await startServer({ token: 'tokSECRETa' })
    const log: DebugEntry[] = []
    let token = 'tokSECRETa'
    const c = client({ token: async () => token, debug: (e) => log.push(e) })
    c.setup(s.address)
    await c.join('room')
    const port = s.port
    await s.close({ abrupt: true })
    await waitFor(() => log.some((e) => e.event === 'retry'), 3000, 'a retry')
    token = 'tokSECRETb' // the server that comes back wants another one: the attempt is rejected with 1008
    await startServer({ port, token: 'other' })
    await waitFor(() => c.stateOf('room') === 'closed', 5000, 'the rejection')
    const fixed = client({ token: 'tokSECRETc', debug: (e) => log.push(e) })
    fixed.setup(`127.0.0.1:${port}`)
    await fixed.join('room').catch(() => {})
    const text = JSON.stringify(log)
    expect(events(log)).toEqual(expect.arrayContaining(['connect', 'open', 'close', 'retry', 'error']))
    for (const t of ['tokSECRETa', 'tokSECRETb', 'tokSECRETc', 'SECRET']) expect(text).not.toContain(t)
  })

  it('off (the default), nothing is called; a debug function that throws is an ERR_LISTENER error and the channel goes on', async () => {
    const s = await startServer()
    const spy = vi.spyOn(console, 'debug').mockImplementation(() => {})
    try {
      const quiet = client()
      quiet.setup(s.address)
      await quiet.join('room')
      await quiet.signal('room', 'message', 'x')
      expect(spy).not.toHaveBeenCalled()
    } finally {
      spy.mockRestore()
    }
    const c = client({
      debug: () => {
        throw new Error('bad logger')
      },
    })
    const errors: string[] = []
    c.on('socket', 'error', (i) => errors.push(`${i.error!.code} ${i.error!.message}`))
    c.setup(s.address)
    await c.join('room')
    await c.signal('room', 'message', 'still works')
    await sleep(20)
    expect(errors.length).toBeGreaterThan(0)
    expect(errors[0]).toMatch(/^ERR_LISTENER .*bad logger/)
  })

  it('the kernel takes it with the debug feature, and says so without it; a bad value is a ValidationError', async () => {
    const opts = (o: object) => o as ConstructorParameters<typeof CoreClient>[0] // a feature's option, on the kernel
    expect(() => new CoreClient(opts({ features: [debug], debug: 'yes' }))).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'options.debug' }))
    expect(() => new CoreClient(opts({ debug: true }))).toThrow(/needs the debug feature.*'sock-client\/debug'/)
    expect(() => new CoreClient(opts({ debug: false }))).not.toThrow()
    const s = await startServer()
    const log: DebugEntry[] = []
    const c = new CoreClient(opts({ features: [debug], debug: (e: DebugEntry) => log.push(e) }))
    try {
      c.setup(s.address)
      await c.join('room')
      expect(events(log)).toEqual(['connect', 'probe', 'open']) // no presence feature: no announcement
    } finally {
      c.close()
    }
  })
})
