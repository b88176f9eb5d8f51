import { spawn } from 'node:child_process'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import WebSocket, { WebSocketServer } from 'ws'
import { SockClient, type LifecycleInfo } from '../src'
import { createSockServer, type SockServer, type SockServerOptions } from '../src/server'

const servers = new Set<SockServer>()
const clients = new Set<SockClient<any>>()
const scriptedServers = new Set<WebSocketServer>()

/** A client with short retry delays for tests, closed by `closeAll()`. */
export function client(options: ConstructorParameters<typeof SockClient>[0] = {}): SockClient {
  const c = new SockClient({ reconnect: { minDelay: 50, maxDelay: 200 }, ...options })
  clients.add(c)
  return c
}

/** An embedded server on a free loopback port, closed by `closeAll()`. */
export async function startServer(options: SockServerOptions = {}): Promise<SockServer> {
  const s = await createSockServer({ port: 0, ...options })
  servers.add(s)
  return s
}

/** Closes every client from `client()`, then every server from `startServer()`. */
export async function closeAll(): Promise<void> {
  for (const c of clients) c.close()
  clients.clear()
  await Promise.all([...servers].map((s) => s.close({ abrupt: true })))
  servers.clear()
  await Promise.all(
    [...scriptedServers].map(
      (wss) =>
        new Promise((r) => {
          for (const c of wss.clients) c.terminate()
          wss.close(r)
        }),
    ),
  )
  scriptedServers.clear()
}

/**
 * A ws server on loopback whose behaviour a test scripts (`n`: the connection's number, from 1), closed by
 * `closeAll()`. It answers nothing by itself: `answerWhoami(ws)` makes it answer who-am-I.
 */
export async function scripted(onConnection: (ws: WebSocket, n: number) => void, options: { maxPayload?: number } = {}): Promise<{ address: string; port: number; wss: WebSocketServer }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options })
  await new Promise((r) => wss.once('listening', r))
  scriptedServers.add(wss)
  let n = 0
  wss.on('connection', (ws) => {
    ws.on('error', () => {})
    onConnection(ws, ++n)
  })
  const port = (wss.address() as { port: number }).port
  return { address: `127.0.0.1:${port}`, port, wss }
}

/** Makes a scripted server's connection answer who-am-I with `id`. */
export function answerWhoami(ws: WebSocket, id = 'me'): void {
  ws.on('message', (d) => {
    try {
      if ((JSON.parse(d.toString()).type ?? 0) === 0) ws.send(JSON.stringify({ type: 0, data: id, from: id }))
    } catch {}
  })
}

/** Records `c`'s lifecycle events (all, or those named) with their time on the monotonic clock. */
export function record(c: SockClient<any>, ...events: string[]): [string, LifecycleInfo, number][] {
  const out: [string, LifecycleInfo, number][] = []
  c.on('socket', (e, info) => (events.length === 0 || events.includes(e)) && out.push([e, info, performance.now()]))
  return out
}

/** Polls `fn` until it returns a truthy value or `timeout` ms pass. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeout = 5000, what = 'condition'): Promise<NonNullable<T>> {
  const end = performance.now() + timeout
  for (;;) {
    const v = await fn()
    if (v) return v as NonNullable<T>
    if (performance.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await sleep(10)
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** A plain Sock peer over raw `ws`: what sockc or any other Sock client would be. */
export interface RawPeer {
  ws: WebSocket
  frames: any[]
  texts: string[]
  closed: Promise<{ code: number; reason: string }>
  send(obj: unknown): void
  next(pred?: (f: any) => boolean, timeout?: number): Promise<any>
  close(): void
}

export function rawPeer(url: string, opts: { binary?: boolean } = {}): Promise<RawPeer> {
  const ws = new WebSocket(url)
  const frames: any[] = []
  const texts: string[] = []
  ws.on('error', () => {})
  ws.on('message', (d) => {
    texts.push(d.toString())
    try {
      frames.push(JSON.parse(d.toString()))
    } catch {
      frames.push(undefined)
    }
  })
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })))
  const peer: RawPeer = {
    ws,
    frames,
    texts,
    closed,
    send: (obj) => ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj), { binary: !!opts.binary }),
    next: async (pred = () => true, timeout = 3000) => {
      const f = await waitFor(() => frames.find(pred), timeout, 'a frame')
      frames.splice(frames.indexOf(f), 1)
      return f
    },
    close: () => ws.close(),
  }
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(peer))
    ws.once('close', (_code, _reason) => resolve(peer)) // rejected at once (1008): the caller reads `closed`
    ws.once('unexpected-response', () => reject(new Error('unexpected HTTP response')))
  })
}

/** The built package's entry, as a string literal to put in a `runScript` module. */
export const DIST = JSON.stringify(new URL('../dist/index.js', import.meta.url).href)

/** Runs an ES module in a fresh Node process; resolves with its exit code (null if killed at `timeout`) and output. */
export function runScript(script: string, timeout = 8000): Promise<{ code: number | null; out: string; ms: number }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const started = Date.now()
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeout)
    child.on('exit', (code) => {
      clearTimeout(t)
      resolve({ code, out, ms: Date.now() - started })
    })
  })
}

/** A full garbage collection (the flag is set at run time, so no `--expose-gc` is needed), then heap + external bytes. */
export function heapAfterGc(): number {
  gcNow()
  gcNow()
  const m = process.memoryUsage()
  return m.heapUsed + m.external
}
let gcFn: (() => void) | undefined
function gcNow(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc')
    gcFn = runInNewContext('gc') as () => void
  }
  gcFn()
}
