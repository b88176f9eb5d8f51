// A token per attempt (issue 17): `token` may be a function, sync or async, called before every connection attempt
// (first connect, each reconnect, each failover move), against embedded servers whose token changes between attempts.
// A throw or rejection is an ERR_TOKEN error and a failed attempt (backoff applies); an UnauthorizedError is final;
// the function has a deadline (connectTimeout). The token never shows: not in an error, an event or a log entry.
import { afterEach, describe, expect, it } from 'vitest'
import { SockClient } from '../src'
import { SockClient as CoreClient } from '../src/core'
import { isUnauthorizedError, UnauthorizedError, type SockError } from '../src/errors'
import type { LifecycleInfo } from '../src/client'
import { client, closeAll, sleep, startServer, waitFor } from './helpers'

afterEach(closeAll)

/** Everything a client tells its application, as text: every lifecycle event with its error's message, code and cause. */
function record(c: SockClient | CoreClient) {
  const events: string[] = []
  const errors: SockError[] = []
  c.on('socket', (event, info: LifecycleInfo) => {
    if (info.error) errors.push(info.error)
    events.push(JSON.stringify({ event, ...info, error: info.error && { message: info.error.message, code: info.error.code, cause: String((info.error as { cause?: unknown }).cause ?? '') } }))
  })
  return { events, errors }
}

describe('token as a function', () => {
  it('is called before every attempt: a server restarted with another token is rejoined with the fresh one', async () => {
    const a = await startServer({ token: 'first1' })
    const port = a.port
    let current = 'first1'
    const asked: { channel: string; address: string }[] = []
    const c = client({ token: async (ctx) => (asked.push(ctx), current) })
    const seen = record(c)
    c.setup(a.address)
    await c.join('room')
    expect(asked).toEqual([{ channel: 'room', address: a.address }])
    await a.close({ abrupt: true })
    await waitFor(() => c.stateOf('room') !== 'open', 3000, 'the loss')
    current = 'second2'
    const b = await startServer({ port, token: 'second2' }) // the same address, another token
    await waitFor(() => c.stateOf('room') === 'open', 8000, 'the rejoin with the new token')
    expect(asked.length).toBeGreaterThanOrEqual(2) // once per attempt, the first one included
    expect((await c.instances('room')).map((i) => i.addresses)).toEqual([[b.address]])
    const text = seen.events.join('\n')
    for (const t of ['first1', 'second2']) expect(text).not.toContain(t)
  })

  it('a synchronous function works the same, and failover asks it for each address it moves to', async () => {
    const a = await startServer({ token: 'tokA' })
    const b = await startServer({ token: 'tokB' })
    const tokens: Record<string, string> = { [a.address]: 'tokA', [b.address]: 'tokB' }
    const asked: string[] = []
    const c = client({ token: ({ address }) => (asked.push(address), tokens[address]!) })
    c.setup([a.address, b.address], 'failover')
    await c.join('room')
    expect(c.connectionsOf('room')[0]!.address).toBe(a.address)
    await a.close({ abrupt: true })
    await waitFor(() => c.stateOf('room') !== 'open', 3000, 'the loss')
    await waitFor(() => c.stateOf('room') === 'open' && c.connectionsOf('room')[0]!.address === b.address, 8000, 'the move to b')
    expect(asked[0]).toBe(a.address)
    expect(asked).toContain(b.address) // b got b's token: a's would have been rejected with 1008
  })

  it('a throw or a rejection is an ERR_TOKEN error and a failed attempt: it retries with backoff and opens once the function gives a token', async () => {
    const s = await startServer({ token: 'good' })
    let calls = 0
    const c = client({
      token: async () => {
        calls++
        if (calls === 1) throw new Error('auth service down')
        if (calls === 2) return Promise.reject(new Error('still down'))
        return 'good'
      },
    })
    const seen = record(c)
    c.setup(s.address)
    await c.join('room') // resolves in the end: the failures were retried
    expect(calls).toBe(3)
    const tokenErrors = seen.errors.filter((e) => e.code === 'ERR_TOKEN')
    expect(tokenErrors.map((e) => e.message)).toEqual([expect.stringContaining('auth service down'), expect.stringContaining('still down')])
    expect(tokenErrors.every((e) => e.name === 'ConnectionError')).toBe(true)
    const retries = seen.events.map((e) => JSON.parse(e)).filter((e) => e.event === 'reconnect')
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]) // backoff applied: one retry per failed attempt
  })

  it('an UnauthorizedError from the function is final: one error, no retry, join() rejects; reconnect() asks again', async () => {
    const s = await startServer({ token: 'good' })
    let refuse = true
    let calls = 0
    const c = client({
      token: () => {
        calls++
        if (refuse) throw new UnauthorizedError('session expired, log in again')
        return 'good'
      },
    })
    const seen = record(c)
    c.setup(s.address)
    const err = await c.join('room').then(
      () => undefined,
      (e: SockError) => e,
    )
    expect(err?.code).toBe('ERR_UNAUTHORIZED')
    expect(isUnauthorizedError((err as { cause?: unknown }).cause)).toBe(true)
    await sleep(400) // several backoff windows (50-200 ms): nothing more happens
    expect(calls).toBe(1)
    expect(c.stateOf('room')).toBe('closed')
    expect(seen.events.map((e) => JSON.parse(e).event).filter((e) => e === 'reconnect')).toEqual([])
    refuse = false
    c.reconnect()
    await waitFor(() => c.stateOf('room') === 'open', 5000, 'the channel after reconnect()')
    expect(calls).toBe(2)
  })

  it('a function that never settles fails the attempt at connectTimeout, and the next attempt asks again', async () => {
    const s = await startServer({ token: 'good' })
    let calls = 0
    const c = client({ connectTimeout: 300, token: () => (++calls === 1 ? new Promise<string>(() => {}) : 'good') })
    const seen = record(c)
    c.setup(s.address)
    const started = performance.now()
    await c.join('room')
    const ms = performance.now() - started
    expect(calls).toBe(2)
    expect(seen.errors.filter((e) => e.code === 'ERR_TOKEN').map((e) => e.message)).toEqual([expect.stringMatching(/connectTimeout \(300 ms\)/)])
    expect(ms).toBeGreaterThanOrEqual(290)
    console.log(`a token function that never settles: attempt failed and the next one opened after ${ms.toFixed(0)} ms (connectTimeout 300)`)
  })

  it('a bad value from the function (not a non-empty string) is an ERR_TOKEN that names the problem, never the value', async () => {
    const s = await startServer({ token: 'good' })
    let calls = 0
    const c = client({ token: (() => (++calls === 1 ? '' : calls === 2 ? 42 : 'good')) as never })
    const seen = record(c)
    c.setup(s.address)
    await c.join('room')
    const messages = seen.errors.filter((e) => e.code === 'ERR_TOKEN').map((e) => e.message)
    expect(messages).toHaveLength(2)
    for (const m of messages) expect(m).toMatch(/non-empty string/)
  })

  it('close() while the function is pending: the late token opens nothing', async () => {
    const s = await startServer({ token: 'good' })
    let give!: (t: string) => void
    const c = client({ token: () => new Promise<string>((r) => (give = r)) })
    c.setup(s.address)
    const joined = c.join('room')
    await waitFor(() => give, 2000, 'the token call')
    c.close()
    await expect(joined).rejects.toMatchObject({ code: 'ERR_CLOSED' })
    give('good')
    await sleep(200)
    expect(s.instances('room')).toEqual([])
  })

  it('a function that closes the client while it is asked opens nothing; a thenable whose then() throws is one failed attempt', async () => {
    const s = await startServer({ token: 'good' })
    const c = client({ token: () => (c.close(), 'good') })
    c.setup(s.address)
    const joined = c.join('room')
    await expect(joined).rejects.toMatchObject({ code: 'ERR_CLOSED' })
    await sleep(200)
    expect(s.instances('room')).toEqual([])
    expect(c.stateOf('room')).toBeUndefined()

    let calls = 0
    const weird = {
      // biome-ignore lint/suspicious/noThenProperty: a broken thenable is what this test gives the client
      then() {
        throw new Error('broken thenable')
      },
    }
    const d = client({ token: (() => (++calls === 1 ? weird : 'good')) as never })
    const seen = record(d)
    d.setup(s.address)
    await d.join('room')
    expect(seen.errors.filter((e) => e.code === 'ERR_TOKEN').map((e) => e.message)).toEqual([expect.stringContaining('broken thenable')])
  })

  it('the kernel (sock-client/core) takes a token function too', async () => {
    const s = await startServer({ token: 'core' })
    const c = new CoreClient({ token: async () => 'core', reconnect: { minDelay: 50, maxDelay: 200 } })
    try {
      c.setup(s.address)
      await c.join('room')
      expect(c.stateOf('room')).toBe('open')
    } finally {
      c.close()
    }
  })

  it('a wrong token from the function is still a final 1008, and the rejection shows no token', async () => {
    const s = await startServer({ token: 'right' })
    const c = client({ token: async () => 'wrongSECRET' })
    const seen = record(c)
    c.setup(s.address)
    await expect(c.join('room')).rejects.toMatchObject({ code: 'ERR_REJECTED' })
    expect(seen.events.join('\n')).not.toContain('wrongSECRET')
  })

  it('a URL with a token from the function is redacted where it could show: a WebSocket that fails naming its URL', async () => {
    // A runtime whose WebSocket refuses the URL, saying which (as Node's and browsers' do for a bad URL).
    class Refusing {
      constructor(url: string) {
        throw new SyntaxError(`Failed to construct 'WebSocket': the URL '${url}' is invalid`)
      }
    }
    const c = client({ WebSocket: Refusing as never, token: async () => 'fnSECRETtoken', reconnect: { maxRetries: 2, minDelay: 10, maxDelay: 20 } })
    const seen = record(c)
    c.setup('127.0.0.1:1')
    const err = await c.join('room').then(
      () => undefined,
      (e: SockError) => e,
    )
    expect(err?.code).toBe('ERR_GAVE_UP')
    const network = seen.errors.filter((e) => e.code === 'ERR_NETWORK').map((e) => e.message)
    expect(network.length).toBeGreaterThan(0)
    expect(network[0]).toContain('token=***') // the URL is there, its token is not
    expect(JSON.stringify([seen.events, err?.message, network])).not.toContain('fnSECRETtoken')
  })

  it('options.token of another kind is a ValidationError at once', () => {
    expect(() => new SockClient({ token: 42 as never })).toThrow(expect.objectContaining({ name: 'ValidationError', argument: 'options.token' }))
  })
})

/** A WebSocket that opens at once and answers who-am-I, with no server: thousands of idle clients in one process. */
class InstantSocket extends EventTarget {
  readyState = 0
  bufferedAmount = 0
  binaryType = 'blob'
  constructor(readonly url: string) {
    super()
    setTimeout(() => {
      this.readyState = 1
      this.dispatchEvent(new Event('open'))
    }, 0)
  }
  send(text: string): void {
    if (text.startsWith('{"type":0')) setTimeout(() => this.dispatchEvent(Object.assign(new Event('message'), { data: '{"type":0,"data":"me","from":"me"}' })), 0)
  }
  close(): void {
    this.readyState = 3
  }
}

describe('at rest', () => {
  it('a client with a token function costs what one with a string costs once open: no timer or closure per connection (heap)', async () => {
    const { heapAfterGc } = await import('./helpers')
    const N = 1500
    const fn = async () => 'secret'
    async function perClient(token: string | (() => Promise<string>)): Promise<number> {
      const before = heapAfterGc()
      const list: CoreClient[] = []
      for (let i = 0; i < N; i++) {
        const c = new CoreClient({ WebSocket: InstantSocket as never, token })
        c.setup('127.0.0.1:1')
        list.push(c)
      }
      await Promise.all(list.map((c) => c.join('idle')))
      const bytes = (heapAfterGc() - before) / N
      for (const c of list) c.close()
      return bytes
    }
    await perClient('warmup') // code compiled once is not charged to either
    await perClient(fn)
    const withString = await perClient('secret')
    const withFunction = await perClient(fn)
    console.log(`heap per open idle client: ${withString.toFixed(0)} B with a string token, ${withFunction.toFixed(0)} B with an async token function (${N} clients)`)
    expect(withFunction - withString).toBeLessThan(150)
  }, 30_000)
})
