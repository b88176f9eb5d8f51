// Requests under hostile conditions: three servers in broadcast mode (handled once, delivered once, one server
// killed mid-request), a server process killed with 1,000 requests in flight (every promise settles within the
// disconnect detection), retries across a server restart (each request runs once), and 10,000 requests that time
// out (no heap growth).
import { spawn, type ChildProcess } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import type { SockClient } from '../src'
import { stateOf } from '../src/replies'
import { client, closeAll, heapAfterGc, sleep, startServer, waitFor } from './helpers'

const SERVER = JSON.stringify(new URL('../dist/server.js', import.meta.url).href)
const children = new Set<ChildProcess>()
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL')
  children.clear()
  await closeAll()
})

/** The embedded server in a process of its own (so that it can be killed), on `port` (0: any). */
async function serverProcess(port = 0): Promise<{ port: number; kill(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `const { createSockServer } = await import(${SERVER}); const s = await createSockServer({ port: ${port} }); console.log('port ' + s.port)`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  children.add(child)
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  const m = await waitFor(() => /port (\d+)/.exec(out), 10_000, 'the server process to listen')
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  return {
    port: Number(m[1]),
    kill: async () => {
      child.kill('SIGKILL')
      await exited
    },
  }
}

const all = (cs: SockClient[], channel: string) => waitFor(() => cs.every((c) => c.connectionsOf(channel).every((x) => x.state === 'open')), 8000, 'every connection open')

describe('three servers in broadcast mode', () => {
  it('a request is handled once and its reply delivered once; one server killed mid-request does not fail it', async () => {
    const servers = [await startServer(), await startServer(), await startServer()]
    const addresses = servers.map((s) => s.address)
    const a = client({ id: 'alice' })
    const b = client({ id: 'bob' })
    a.setup(addresses)
    b.setup(addresses)
    const runs = new Map<number, number>()
    b.handle('jobs', 'work', async (n: number) => {
      runs.set(n, (runs.get(n) ?? 0) + 1)
      await sleep(n === 99 ? 300 : 0)
      return n * 2
    })
    await Promise.all([a.join('jobs'), b.join('jobs')])
    await all([a, b], 'jobs')
    for (let i = 0; i < 20; i++) expect(await a.request('jobs', 'work', i)).toBe(i * 2)
    const replies = []
    for await (const r of a.requestAll('jobs', 'work', 50, { timeout: 400 })) replies.push(r)
    expect(replies.map((r) => [r.from, r.data])).toEqual([['bob', 100]]) // three copies on the wire, one reply yielded
    const p = a.request('jobs', 'work', 99, { to: 'bob' })
    await sleep(100)
    await servers[1]!.close({ abrupt: true })
    expect(await p).toBe(198)
    await sleep(100)
    expect([...runs.values()].every((n) => n === 1)).toBe(true) // each id ran once, though it arrived three times
    expect(runs.size).toBe(22)
  })
})

describe('chaos', () => {
  it('a server process killed with 1,000 requests in flight: every promise settles (ERR_DISCONNECTED) within the disconnect detection', async () => {
    const srv = await serverProcess()
    const opts = { pingInterval: 1000, probeTimeout: 1000, maxPendingRequests: 5000 }
    const a = client({ id: 'alice', ...opts })
    const b = client({ id: 'bob', ...opts })
    a.setup(`127.0.0.1:${srv.port}`)
    b.setup(`127.0.0.1:${srv.port}`)
    let started = 0
    b.handle('jobs', 'hang', () => (started++, new Promise(() => {})))
    await Promise.all([a.join('jobs'), b.join('jobs')])
    const codes: string[] = []
    const ps = Array.from({ length: 1000 }, (_, i) => a.request('jobs', 'hang', i, { timeout: 60_000 }).catch((e) => codes.push(e.code)))
    await waitFor(() => started === 1000, 10_000, 'all 1,000 running at the responder')
    const t0 = performance.now()
    await srv.kill()
    await Promise.all(ps)
    const ms = performance.now() - t0
    console.log(`1,000 requests in flight, server killed: all settled in ${ms.toFixed(0)} ms (bound: pingInterval + probeTimeout = 2000 ms)`)
    expect(ms).toBeLessThan(2000)
    expect(new Set(codes)).toEqual(new Set(['ERR_DISCONNECTED']))
    expect(codes).toHaveLength(1000)
    expect(stateOf((a as any).channelOf('jobs')).out.size).toBe(0)
  })

  it('retries across a server restart: every request resolves and each runs exactly once', async () => {
    const srv = await serverProcess()
    const port = srv.port
    const a = client({ id: 'alice' })
    const b = client({ id: 'bob' })
    a.setup(`127.0.0.1:${port}`)
    b.setup(`127.0.0.1:${port}`)
    const runs = new Map<number, number>()
    b.handle('jobs', 'once', async (n: number) => {
      runs.set(n, (runs.get(n) ?? 0) + 1)
      await sleep(150)
      return n
    })
    await Promise.all([a.join('jobs'), b.join('jobs')])
    const ps = Array.from({ length: 40 }, (_, i) => a.request('jobs', 'once', i, { timeout: 15_000, retries: 6 }))
    await waitFor(() => runs.size >= 10, 5000, 'some running')
    await srv.kill()
    await sleep(200)
    const again = await serverProcess(port)
    const got = await Promise.all(ps)
    expect(got).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect([...runs.entries()].filter(([, n]) => n !== 1)).toEqual([])
    expect(runs.size).toBe(40)
    await again.kill()
  }, 30_000)
})

describe('memory', () => {
  it('10,000 requests that time out leave no heap growth (no entry, timer or listener outlives its deadline)', async () => {
    const s = await startServer()
    const a = client({ id: 'alice', maxPendingRequests: 20_000, queue: { maxCount: 20_000, maxBytes: 64 << 20 } })
    a.setup(s.address)
    await a.join('void')
    const round = async (n: number) => {
      const ctrl = new AbortController()
      const ps = Array.from({ length: n }, (_, i) => a.request('void', 'nobody', { i, pad: 'x'.repeat(32) }, { timeout: 200, signal: ctrl.signal }).catch((e) => e.code))
      const codes = await Promise.all(ps)
      expect(new Set(codes)).toEqual(new Set(['ERR_TIMEOUT']))
    }
    await round(2000) // warm: the JIT's code and feedback are not what is measured
    const before = heapAfterGc()
    await round(10_000)
    await sleep(50)
    const after = heapAfterGc()
    const growth = after - before
    console.log(`10,000 timed-out requests: heap + external ${(before / 2 ** 20).toFixed(1)} MiB before, ${(after / 2 ** 20).toFixed(1)} MiB after (${(growth / 1024).toFixed(0)} KiB)`)
    expect(stateOf((a as any).channelOf('void')).out.size).toBe(0)
    expect(growth).toBeLessThan(1 << 20) // a pending request costs ~1 KiB: 10,000 kept would be ~10 MiB
  })
})
