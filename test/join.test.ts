// Bounded joins (issue 17): join(channel, { timeout, signal }) rejects with a typed error on timeout or abort, while
// the connection attempts go on unless the channel is left. Before, a join() with no server never settled.
import { afterEach, describe, expect, it } from 'vitest'
import { SockClient as CoreClient } from '../src/core'
import type { SockError } from '../src/errors'
import { client, closeAll, heapAfterGc, sleep, startServer, waitFor } from './helpers'

afterEach(closeAll)

/** A loopback port with nothing listening on it (a server was there a moment ago). */
async function deadPort(): Promise<number> {
  const s = await startServer()
  const port = s.port
  await s.close({ abrupt: true })
  return port
}

const reason = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: SockError) => e,
  )

const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

describe('join(channel, { timeout, signal })', () => {
  it('with no server, rejects with ERR_TIMEOUT after the timeout; the attempts go on and the channel opens once a server is there', async () => {
    const port = await deadPort()
    const c = client()
    const reconnects: number[] = []
    c.on('socket', 'reconnect', (i) => reconnects.push(i.attempt!))
    c.setup('127.0.0.1', port)
    const started = performance.now()
    const err = await reason(c.join('room', { timeout: 300 }))
    const ms = performance.now() - started
    expect(err).toMatchObject({ name: 'ConnectionError', code: 'ERR_TIMEOUT' })
    expect(err!.message).toMatch(/join\('room'\) did not open within 300 ms/)
    expect(err!.message).toMatch(/leave\('room'\)/) // names the way to stop the attempts
    expect(ms).toBeGreaterThanOrEqual(290)
    expect(reconnects.length).toBeGreaterThan(0)
    await startServer({ port })
    await waitFor(() => c.stateOf('room') === 'open', 5000, 'the channel once a server listens')
    await c.join('room', { timeout: 100 }) // already open: resolves at once
    console.log(`join with no server: rejected after ${ms.toFixed(0)} ms (timeout 300), ${reconnects.length} retries meanwhile`)
  })

  it('an AbortSignal rejects it with ERR_ABORTED and the signal reason as cause; an aborted one rejects at once', async () => {
    const port = await deadPort()
    const c = client()
    c.setup('127.0.0.1', port)
    const ctrl = new AbortController()
    const joined = reason(c.join('room', { signal: ctrl.signal }))
    await sleep(50)
    ctrl.abort(new Error('user went away'))
    const err = await joined
    expect(err).toMatchObject({ name: 'ConnectionError', code: 'ERR_ABORTED' })
    expect(String((err as { cause?: Error }).cause?.message)).toBe('user went away')
    expect(c.stateOf('room')).not.toBe('closed') // attempts go on
    const again = await reason(c.join('room', { signal: AbortSignal.abort() }))
    expect(again?.code).toBe('ERR_ABORTED')
    // an aborted signal rejects even when the channel is open, as fetch() does
    const s = await startServer()
    const d = client()
    d.setup(s.address)
    await d.join('room')
    expect((await reason(d.join('room', { signal: AbortSignal.abort() })))?.code).toBe('ERR_ABORTED')
  })

  it('leave() after a timed-out join stops the attempts; a pending bounded join rejects with ERR_CLOSED when the channel is left', async () => {
    const port = await deadPort()
    const c = client()
    let reconnects = 0
    c.on('socket', 'reconnect', () => reconnects++)
    c.setup('127.0.0.1', port)
    await reason(c.join('room', { timeout: 150 }))
    const pending = reason(c.join('room', { timeout: 10_000 }))
    c.leave('room')
    expect((await pending)?.code).toBe('ERR_CLOSED')
    const n = reconnects
    await sleep(500)
    expect(reconnects).toBe(n)
    expect(c.stateOf('room')).toBeUndefined()
  })

  it('a join that opens in time resolves and leaves no timer behind', async () => {
    const s = await startServer()
    const c = client()
    c.setup(s.address)
    const base = timeouts()
    const ctrl = new AbortController()
    await c.join('room', { timeout: 60_000, signal: ctrl.signal })
    c.close()
    await sleep(50)
    expect(timeouts()).toBeLessThanOrEqual(base)
    ctrl.abort() // nothing listens any more: no late rejection anywhere
  })

  it('joins that time out or are aborted leave nothing behind: 20 000 of them on a channel that never opens (heap)', async () => {
    const port = await deadPort()
    const c = client({ reconnect: { minDelay: 5000, maxDelay: 5000 } })
    c.setup('127.0.0.1', port)
    c.join('room').catch(() => {})
    const run = async (n: number) => {
      const all: Promise<unknown>[] = []
      for (let i = 0; i < n; i++) all.push(reason(c.join('room', { signal: AbortSignal.abort() })))
      for (let i = 0; i < n / 10; i++) all.push(reason(c.join('room', { timeout: 1 })))
      await Promise.all(all)
    }
    await run(2000) // warm-up
    const before = heapAfterGc()
    await run(20_000)
    const grown = heapAfterGc() - before
    console.log(`heap after 22 000 aborted or timed-out joins of a channel that never opened: ${(grown / 1024).toFixed(0)} KiB more`)
    expect(grown).toBeLessThan(1 << 20) // a waiter left behind each would be several MiB
  })

  it('the largest timeouts are no limit (a timer past 2^31 - 1 ms would fire at once)', async () => {
    const port = await deadPort()
    const c = client()
    c.setup('127.0.0.1', port)
    let settled = false
    for (const timeout of [2 ** 31, 1e12, Number.MAX_VALUE, Infinity])
      void c
        .join('room', { timeout })
        .finally(() => (settled = true))
        .catch(() => {})
    await sleep(300)
    expect(settled).toBe(false)
  })

  it('bad options throw a ValidationError naming them', () => {
    const c = client()
    c.setup('127.0.0.1:1')
    expect(() => c.join('room', { timeout: -1 })).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'options.timeout' }))
    expect(() => c.join('room', { timeout: 'soon' as never })).toThrow(expect.objectContaining({ argument: 'options.timeout' }))
    expect(() => c.join('room', { signal: {} as never })).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'options.signal' }))
  })

  it('the kernel (sock-client/core) bounds its joins too', async () => {
    const port = await deadPort()
    const c = new CoreClient({ reconnect: { minDelay: 50, maxDelay: 200 } })
    try {
      c.setup('127.0.0.1', port)
      expect((await reason(c.join('room', { timeout: 100 })))?.code).toBe('ERR_TIMEOUT')
    } finally {
      c.close()
    }
  })
})
