/**
 * The embedded Sock server (Node only): the routes, frames and REST of PROTOCOL.md, without the reference
 * server's crashes. It rejects a wrong token, a bad channel, a bad or duplicate id (close 1008 with a reason),
 * survives any input, removes exactly the connection that left, fans out safely (a consumer that cannot keep up
 * is closed with 1013, never buffered without bound) and handles un-pinged instances as PROTOCOL.md §3 says.
 */
import { EventEmitter } from 'node:events'
import { createReadStream, statSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { extname, join, normalize, resolve as resolvePath, sep } from 'node:path'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { randomName } from './random'
import { isName } from '../protocol'
import type { ClaimResult, RedisBridge, RedisStateInfo } from './redis'
import { encode, Outbox } from './outbox'
import { checkRedisUrl, redactRedisUrl } from './redis-url'
import { clientErrorStatus, parseTarget, refuse, safeDecode, WS_KEY } from './request'

export interface SockServerOptions {
  /** TCP port; 0 (the default) picks a free one. */
  port?: number
  /** Interface to bind; loopback unless you say otherwise. */
  host?: string
  /** The token clients must present (absent `token=` means `demo`); `null` accepts any token. */
  token?: string | null
  /** Read limit for a whole frame, in bytes: a larger frame closes the connection with 1009. */
  limit?: number
  /** Keep-alive window in ms: an instance with no ping in a window goes stale (PROTOCOL.md §3). Monotonic time. */
  pingWindow?: number
  /**
   * How long (ms, default 2000) a connection has to answer a WebSocket ping before its socket counts as dead. The
   * server pings every connection four times per `pingWindow` and ends one whose ping stays unanswered for
   * `max(pongTimeout, pingWindow / 2)`; a join that asks for an id already held pings the holder, and takes the
   * id over if the holder is stale or does not answer within `pongTimeout` (event `replace`). A live holder keeps
   * its id: the newcomer is closed with 1008 "duplicate id".
   */
  pongTimeout?: number
  /**
   * WebSocket connections at most (default 10,000); an upgrade beyond it is answered 503 with `Retry-After`. With
   * `maxBuffered` it bounds the server's memory for connections, and with the 256-character bound on channel names
   * and ids (longer is refused with 1008) it bounds the maps keyed by them: channels and instances, in entries and
   * in bytes. HTTP requests are bounded by Node: `maxHeaderSize` for a request head, 431 beyond it.
   */
  maxConnections?: number
  /** Send `Access-Control-Allow-Origin: *` on the REST routes, so pages on other origins can list instances. */
  cors?: boolean
  /** A directory served over HTTP at `/` (the demo page). */
  static?: string
  /**
   * Bytes the server may hold for one connection, in real bytes (default 8 MiB): frames relayed to it and replies
   * to its own frames, bookkeeping included (see outbox.ts). Past it the connection is closed with 1013, whether it
   * is a slow receiver or a client that floods who-am-I without reading the replies: the server drops what is
   * queued, stops reading from it at once, and drops the socket at the latest 5 s later (if it never answers the close).
   */
  maxBuffered?: number
  /**
   * Scale-out: a Redis URL (`redis://[:password@]host:port[/db]`, `rediss://` for TLS). Every node given the
   * same Redis shares its channels: relay, REST listing and duplicate-id checks span all nodes. Absent, the
   * server is single-process and never loads a Redis client.
   */
  redis?: string
  /** Prefix of every Redis key and pub/sub channel (default `sock:`), so clusters can share one Redis. */
  redisPrefix?: string
}

export interface InstanceRecord {
  channel: string
  id: string
  created_at: string
}

export interface SockServerEvents {
  connect: [info: { channel: string; id: string }]
  disconnect: [info: { channel: string; id: string; code: number }]
  reject: [info: { channel: string; reason: string }]
  /**
   * A join took over the id of an instance that had died silently: `stale` (no keep-alive within `pingWindow`),
   * `dead` (its socket left a WebSocket ping unanswered), `node-gone` (with `redis`: its node left Redis). The old
   * connection is closed (`disconnect` follows when it is on this node).
   */
  replace: [info: { channel: string; id: string; why: ReplaceReason }]
  /** The Redis link (with `redis`): `reconnecting`, `ready` again, `error` (message free of credentials). */
  redis: [info: RedisStateInfo]
}

export type { RedisStateInfo }
export type ReplaceReason = 'stale' | 'dead' | 'node-gone'
export { redactRedisUrl }

interface Member {
  ws: WebSocket
  channel: string
  id: string
  createdAt: string
  /** `performance.now()` of the last keep-alive: deadlines run on the monotonic clock, wall time is only shown. */
  lastPing: number
  stale: boolean
  /** `performance.now()` when the server's outstanding WebSocket ping was sent; 0 when none is outstanding. */
  pingSentAt: number
  /** Everything queued to this connection, within `maxBuffered`. */
  out: Outbox
  /** The who-am-I reply, encoded once. */
  whoami: Buffer
}

const INVALID_JSON = Buffer.from('{"error":"Invalid json format"}')
const SLOW = 'slow consumer: too much data buffered'
const REPLACED = 'replaced: a new connection took this id after this one stopped answering'

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
}

/** RFC 3339 with nanoseconds, as the reference server writes `created_at`. */
function timestamp(): string {
  const ns = process.hrtime.bigint() % 1_000_000n
  return `${new Date().toISOString().slice(0, 23)}${String(ns).padStart(6, '0')}Z`
}

export class SockServer extends EventEmitter<SockServerEvents> {
  readonly host: string
  port = 0
  private readonly http: Server
  private readonly wss: WebSocketServer
  private readonly channels = new Map<string, Map<string, Member>>()
  /** REST requests waiting for Redis, per HTTP connection. */
  private readonly restPending = new WeakMap<object, number>()
  /** `channel:id` of the joins being admitted now (holder probed, Redis claim under way): one at a time per id. */
  private readonly joining = new Set<string>()
  private readonly ticker: ReturnType<typeof setInterval>
  private readonly o: Required<Omit<SockServerOptions, 'static' | 'token' | 'redis'>> & { token: string | null; static?: string; redis?: string }
  /** The Redis link, with the `redis` option, once `listen()` connected it. */
  private bridge: RedisBridge | undefined

  constructor(options: SockServerOptions = {}) {
    super()
    const o = {
      port: 0,
      host: '127.0.0.1',
      token: 'demo',
      limit: 1024,
      pingWindow: 60_000,
      pongTimeout: 2000,
      cors: true,
      maxBuffered: 8 << 20,
      maxConnections: 10_000,
      redisPrefix: 'sock:',
      ...options,
    }
    for (const k of ['port', 'limit', 'pingWindow', 'pongTimeout', 'maxBuffered'] as const) {
      if (typeof o[k] !== 'number' || !Number.isInteger(o[k]) || o[k] < 0) throw new TypeError(`createSockServer: invalid ${k} ${String(o[k])}: use a non-negative integer`)
    }
    if (typeof o.maxConnections !== 'number' || !Number.isInteger(o.maxConnections) || o.maxConnections < 1) {
      throw new TypeError(`createSockServer: invalid maxConnections ${String(o.maxConnections)}: use an integer of at least 1`)
    }
    if (o.port > 65535) throw new TypeError(`createSockServer: invalid port ${o.port}: use 0 to 65535`)
    if (o.token !== null && (typeof o.token !== 'string' || o.token === '')) throw new TypeError('createSockServer: token must be a non-empty string, or null to accept any token')
    if (o.redis !== undefined) checkRedisUrl(o.redis)
    if (typeof o.redisPrefix !== 'string') throw new TypeError('createSockServer: redisPrefix must be a string')
    if (o.redis !== undefined && o.pingWindow < 1) throw new TypeError('createSockServer: with redis, pingWindow must be at least 1 ms (it is the registry TTL)')
    this.o = o
    this.host = o.host
    // closeTimeout: a peer that does not answer our close frame (it stopped reading, it is gone) is dropped after 5 s.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.limit, perMessageDeflate: false, closeTimeout: 5000 } as ConstructorParameters<typeof WebSocketServer>[0])
    this.http = createServer((req, res) => this.onRequest(req, res))
    this.http.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head))
    // Unheard, Node closes a CONNECT request without a word: this is no proxy, say so.
    this.http.on('connect', (_req, socket: Duplex) => {
      socket.on('error', () => socket.destroy())
      refuse(socket, 405, { allow: API_METHODS })
    })
    this.http.on('clientError', (e: NodeJS.ErrnoException, socket) => {
      // Answer what Node could not parse (as its default handler would), unless a response is already under way.
      const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage
      if (e.code === 'ECONNRESET' || inFlight?.headersSent) return void socket.destroy()
      refuse(socket, clientErrorStatus(e.code))
    })
    this.ticker = setInterval(() => this.sweep(), Math.max(10, Math.floor(o.pingWindow / 4)))
    this.ticker.unref()
  }

  /** `ws://host:port` */
  get url(): string {
    return `ws://${this.hostPort}`
  }

  /** `http://host:port` */
  get httpUrl(): string {
    return `http://${this.hostPort}`
  }

  /** `host:port`, as `setup()` takes it. */
  get address(): string {
    return this.hostPort
  }

  private get hostPort(): string {
    return `${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`
  }

  async listen(): Promise<this> {
    if (this.o.redis !== undefined && !this.bridge) {
      const { RedisBridge } = await import('./redis')
      this.bridge = await RedisBridge.connect({
        url: this.o.redis,
        prefix: this.o.redisPrefix,
        ttl: this.o.pingWindow,
        deliver: (channel, text, binary) => this.fanout(channel, encode(text), binary),
        lost: (channel, id) => {
          // A join on another node took the id over (this one was stale or its node seemed gone), or Redis lost it.
          const m = this.channels.get(channel)?.get(id)
          if (m) closeMember(m, 1008, m.stale ? REPLACED : 'duplicate id: the id was claimed on another node')
        },
        state: (info) => this.emit('redis', info),
      })
    }
    try {
      return await this.bind()
    } catch (e) {
      await this.bridge?.close({ abrupt: true })
      this.bridge = undefined
      throw e
    }
  }

  private bind(): Promise<this> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException) => {
        reject(
          new Error(
            e.code === 'EADDRINUSE' ? `port ${this.o.port} on ${this.host} is in use: pick another port (or 0 for any free one)` : `cannot listen on ${this.host}:${this.o.port}: ${e.message}`,
          ),
        )
      }
      this.http.once('error', onError)
      this.http.listen(this.o.port, this.host, () => {
        this.http.off('error', onError)
        const a = this.http.address()
        this.port = typeof a === 'object' && a ? a.port : this.o.port
        resolve(this)
      })
    })
  }

  /** The instances of `channel`, as the REST route lists them. */
  instances(channel: string): InstanceRecord[] {
    return [...(this.channels.get(channel)?.values() ?? [])].map((m) => ({ channel: m.channel, id: m.id, created_at: m.createdAt }))
  }

  /** The instances of `channel` on every node (with `redis`; otherwise the same as `instances()`). */
  async allInstances(channel: string): Promise<InstanceRecord[]> {
    return this.bridge ? this.bridge.list(channel) : this.instances(channel)
  }

  /** Number of open WebSocket connections. */
  get connections(): number {
    return this.wss.clients.size
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch((e: unknown) => {
      if (res.headersSent) return void res.destroy()
      // The Redis registry failing (down, stalled) is a 503: say so rather than list one node's instances.
      const registry = e instanceof RegistryError
      res.writeHead(registry ? 503 : 500, { 'content-type': 'application/json', ...(this.o.cors ? { 'access-control-allow-origin': '*' } : {}) })
      res.end(registry ? '{"error":"Registry unavailable"}' : '{"error":"Internal error"}')
    })
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...(this.o.cors ? { 'access-control-allow-origin': '*' } : {}), ...headers })
      res.end(JSON.stringify(body))
    }
    const target = parseTarget(req.url)
    if (!target) return json(400, { error: 'Bad request target: use a path such as /api/channel/<channel>' })
    const path = target.path
    const method = req.method ?? ''
    if (path.startsWith('/api/')) {
      if (method === 'OPTIONS') {
        res.writeHead(204, {
          allow: API_METHODS,
          ...(this.o.cors ? { 'access-control-allow-origin': '*', 'access-control-allow-methods': API_METHODS, 'access-control-allow-headers': '*', 'access-control-max-age': '86400' } : {}),
        })
        return void res.end()
      }
      if (method !== 'GET' && method !== 'HEAD') return json(405, { error: 'Method not allowed' }, { allow: API_METHODS })
      const m = /^\/api\/channel\/([^/]+)(?:\/([^/]+))?\/?$/.exec(path)
      if (!m) return json(404, { error: 'Not found' })
      const channel = safeDecode(m[1]!)
      if (this.bridge) {
        // Every node's instances, from the registry (names only: anything else cannot be registered). A client
        // that pipelines requests gets MAX_PENDING_REST of them waiting for Redis at a time: the others are
        // answered at once, and Node stops reading a connection whose answers are not read.
        const socket = req.socket
        const waiting = this.restPending.get(socket) ?? 0
        if (waiting >= MAX_PENDING_REST) return json(503, { error: 'Too many requests pending on this connection: wait for the answers' }, { 'retry-after': '1' })
        this.restPending.set(socket, waiting + 1)
        try {
          const ok = channel !== undefined && isName(channel)
          const bridge = this.bridge
          if (m[2] === undefined) {
            const all = ok ? await registry(bridge.list(channel)) : []
            return all.length ? json(200, all) : json(404, { error: 'Channel not found' })
          }
          const id = safeDecode(m[2])
          const one = ok && id !== undefined && isName(id) ? await registry(bridge.get(channel, id)) : undefined
          return one ? json(200, one) : json(404, { error: 'Instance not found' })
        } finally {
          this.restPending.set(socket, (this.restPending.get(socket) ?? 1) - 1)
        }
      }
      const members = channel === undefined ? undefined : this.channels.get(channel)
      if (m[2] === undefined) {
        return members?.size ? json(200, this.instances(channel!)) : json(404, { error: 'Channel not found' })
      }
      const id = safeDecode(m[2])
      const member = id === undefined ? undefined : members?.get(id)
      return member ? json(200, { channel: member.channel, id: member.id, created_at: member.createdAt }) : json(404, { error: 'Instance not found' })
    }
    if (path.startsWith('/channel/')) {
      if (method !== 'GET' && method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET' })
        return void res.end('Method Not Allowed: connect with a WebSocket client (GET with Upgrade: websocket)')
      }
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'Upgrade' })
      return void res.end('Upgrade Required: connect with a WebSocket client')
    }
    if (this.o.static) {
      if (method === 'GET' || method === 'HEAD') return this.serveStatic(path, res, method === 'HEAD')
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' })
      return void res.end('Method Not Allowed')
    }
    json(404, { error: 'Not found' })
  }

  private serveStatic(path: string, res: ServerResponse, head: boolean): void {
    const root = resolvePath(this.o.static!)
    const rel = safeDecode(path) ?? ''
    const file = normalize(join(root, rel.endsWith('/') ? `${rel}index.html` : rel))
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403)
      return void res.end()
    }
    let size = -1
    try {
      const st = statSync(file)
      if (st.isFile()) size = st.size
    } catch {}
    if (size < 0) {
      res.writeHead(404, { 'content-type': 'text/plain' })
      return void res.end('Not found')
    }
    res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-cache' })
    if (head) return void res.end()
    // A file that fails while it is read (removed, unreadable, a device) cuts the response short: its length was
    // promised, so a clean close is the only honest end. An unhandled stream error would end the process.
    const stream = createReadStream(file)
    stream.on('error', () => res.destroy())
    res.on('close', () => stream.destroy())
    stream.pipe(res)
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy())
    // Everything `ws` would refuse is refused here first, with the answer RFC 6455 asks for, before anything
    // (an id, a Redis claim) is held for this request.
    const target = parseTarget(req.url)
    if (!target) return refuse(socket, 400)
    const m = /^\/channel\/([^/]*)\/?$/.exec(target.path)
    if (!m) return refuse(socket, 404)
    if (req.method !== 'GET') return refuse(socket, 405, { allow: 'GET' })
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') return refuse(socket, 400, {}, 'Bad Request: only Upgrade: websocket is served here')
    const version = req.headers['sec-websocket-version']
    if (version !== '13' && version !== '8') return refuse(socket, 426, { 'sec-websocket-version': '13, 8' })
    const key = req.headers['sec-websocket-key']
    if (key === undefined || !WS_KEY.test(key.trim())) return refuse(socket, 400, {}, 'Bad Request: missing or invalid Sec-WebSocket-Key')
    if (this.wss.clients.size >= this.o.maxConnections) return refuse(socket, 503, { 'retry-after': '1' }, 'Service Unavailable: too many connections, try again later')
    const channel = safeDecode(m[1]!) ?? ''
    const ids = target.query.getAll('id')
    const tokens = target.query.getAll('token')
    const token = tokens.length ? tokens[0]! : 'demo'
    const reason =
      !isName(channel) || channel.length > MAX_NAME
        ? `invalid channel: use ASCII letters and digits, at most ${MAX_NAME} characters`
        : tokens.length > 1
          ? 'token given more than once'
          : this.o.token !== null && token !== this.o.token
            ? 'invalid token'
            : ids.length > 1
              ? 'id given more than once'
              : ids.length && (!isName(ids[0]) || ids[0].length > MAX_NAME)
                ? `invalid id: use ASCII letters and digits, at most ${MAX_NAME} characters`
                : undefined
    // The handshake first, the id after: nothing (a holder probed, a Redis claim) is done for a request whose
    // handshake fails. Refusals go over the WebSocket (close 1008 with a reason), so clients can show why.
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {})
      if (reason) return this.refuseJoin(ws, channel, reason)
      ws.pause() // nothing is read from it until the id is settled
      this.admit(ws, channel, ids[0]).catch(() => this.refuseJoin(ws, channel, 'internal error: try again', 1011))
    })
  }

  /** Closes a join that cannot be let in (it reads again, so that the closing handshake completes). */
  private refuseJoin(ws: WebSocket, channel: string, reason: string, code = 1008): void {
    this.emit('reject', { channel, reason })
    ws.resume()
    ws.close(code, reason)
  }

  /**
   * Settles the id of a join whose handshake succeeded: a wanted id held by a live instance is refused (1008), one
   * held by a stale or dead instance is taken over; with Redis the id is then claimed on every node. One join per
   * id at a time, so a probe or a claim under way cannot be raced by another join for the same id.
   */
  private async admit(ws: WebSocket, channel: string, wanted: string | undefined): Promise<void> {
    if (wanted !== undefined && this.joining.has(`${channel}:${wanted}`)) return this.refuseJoin(ws, channel, DUPLICATE)
    let id = wanted ?? this.freeId(channel)
    let key = `${channel}:${id}`
    this.joining.add(key)
    try {
      const holder = this.channels.get(channel)?.get(id)
      if (holder) {
        const why: ReplaceReason | undefined = holder.stale ? 'stale' : (await this.answers(holder)) ? undefined : 'dead'
        if (!why) return this.refuseJoin(ws, channel, DUPLICATE)
        if (ws.readyState !== WebSocket.OPEN) return
        this.evict(holder, why)
      }
      let createdAt = timestamp()
      const bridge = this.bridge
      if (bridge) {
        // Scale-out: claim the id on every node (atomic in Redis) and subscribe before the client is let in.
        let claimed = false
        for (let attempt = 0; attempt < 5 && !claimed; attempt++) {
          if (attempt > 0) {
            if (wanted !== undefined) return this.refuseJoin(ws, channel, DUPLICATE)
            this.joining.delete(key)
            id = this.freeId(channel)
            key = `${channel}:${id}`
            this.joining.add(key)
            createdAt = timestamp()
          }
          let result: ClaimResult
          try {
            result = await bridge.claim(channel, id, createdAt)
          } catch {
            return this.refuseJoin(ws, channel, 'registry unavailable: try again later', 1013)
          }
          claimed = result.ok
          if (result.ok && result.replaced) this.emit('replace', { channel, id, why: result.replaced })
        }
        if (!claimed) return this.refuseJoin(ws, channel, wanted !== undefined ? DUPLICATE : 'could not pick a free id: try again', wanted !== undefined ? 1008 : 1013)
        if (ws.readyState !== WebSocket.OPEN || this.bridge !== bridge) return void bridge.release(channel, id) // it left, or the server is closing
      }
      if (ws.readyState !== WebSocket.OPEN) return
      this.accept(ws, channel, id, createdAt)
      ws.resume()
    } finally {
      this.joining.delete(key)
    }
  }

  /** A random id free in `channel` on this node (12 alphanumerics, as the reference server picks them). */
  private freeId(channel: string): string {
    let id = randomName(12)
    while (this.channels.get(channel)?.has(id) || this.joining.has(`${channel}:${id}`)) id = randomName(12)
    return id
  }

  /** Whether `m` answers a WebSocket ping within `pongTimeout`. */
  private answers(m: Member): Promise<boolean> {
    const ws = m.ws
    if (ws.readyState !== WebSocket.OPEN) return Promise.resolve(false)
    return new Promise((resolve) => {
      const done = (alive: boolean) => {
        clearTimeout(timer)
        ws.off('pong', onPong)
        ws.off('close', onClose)
        resolve(alive)
      }
      const onPong = () => done(true)
      const onClose = () => done(false)
      const timer = setTimeout(() => done(false), this.o.pongTimeout)
      ws.on('pong', onPong)
      ws.on('close', onClose)
      ws.ping()
    })
  }

  /** Takes `m` off its channel for a join that takes its id over, and closes it. */
  private evict(m: Member, why: ReplaceReason): void {
    const members = this.channels.get(m.channel)
    if (members?.get(m.id) === m) {
      members.delete(m.id)
      if (!members.size) this.channels.delete(m.channel)
    }
    this.bridge?.forget(m.channel, m.id) // the newcomer's claim takes over this one's registration
    this.emit('replace', { channel: m.channel, id: m.id, why })
    if (why === 'dead') m.ws.terminate()
    else closeMember(m, 1008, REPLACED)
  }

  private accept(ws: WebSocket, channel: string, id: string, createdAt: string): void {
    let members = this.channels.get(channel)
    if (!members) this.channels.set(channel, (members = new Map()))
    if (members.has(id)) {
      // Cannot happen (one join per id at a time): refuse rather than replace a live holder unasked.
      void this.bridge?.release(channel, id)
      return this.refuseJoin(ws, channel, DUPLICATE)
    }
    const fromJson = JSON.stringify(id)
    const over = () => {
      me.out.drop()
      ws.pause() // nothing more from it while it does not read what it has: no more replies to queue
      ws.close(1013, SLOW)
    }
    const whoami = encode(`{"type":0,"data":${fromJson},"from":${fromJson}}`)
    const me: Member = { ws, channel, id, createdAt, lastPing: performance.now(), stale: false, pingSentAt: 0, out: new Outbox(ws, this.o.maxBuffered, over), whoami }
    members.set(id, me)
    this.emit('connect', { channel, id })
    ws.on('pong', () => void (me.pingSentAt = 0))
    ws.on('message', (raw, isBinary) => {
      try {
        this.onMessage(me, fromJson, raw, isBinary)
      } catch {
        ws.terminate() // a bug must cost one connection, never the process
      }
    })
    ws.on('close', (code) => {
      // Remove exactly this connection: a later holder of the same id is not touched.
      if (members.get(id) === me) {
        members.delete(id)
        void this.bridge?.release(channel, id)
      }
      if (!members.size && this.channels.get(channel) === members) this.channels.delete(channel)
      this.emit('disconnect', { channel, id, code })
    })
  }

  private onMessage(me: Member, fromJson: string, raw: RawData, isBinary: boolean): void {
    if (me.ws.readyState !== WebSocket.OPEN) return // closing (1013, replaced): frames still parsed are ignored
    let v: unknown
    try {
      v = JSON.parse(Array.isArray(raw) ? Buffer.concat(raw).toString() : raw.toString())
    } catch {
      v = undefined
    }
    const o = (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined) as Record<string, unknown> | undefined
    const type = o && 'type' in o ? o.type : 0
    const data = o && 'data' in o ? o.data : ''
    if (!o || !Number.isSafeInteger(type) || typeof data !== 'string' || (o.from !== undefined && typeof o.from !== 'string')) {
      return me.out.send(INVALID_JSON, isBinary)
    }
    if ((type as number) < 0) {
      if (!me.stale) me.lastPing = performance.now()
      return
    }
    if (me.stale) {
      // PROTOCOL.md §3: a stale instance's next non-ping frame drops the connection (1006).
      me.ws.terminate()
      return
    }
    if (type === 0) return me.out.send(me.whoami, isBinary)
    const text = `{"type":${type},"data":${JSON.stringify(data)},"from":${fromJson}}`
    // Encoded once, shared by every receiver (each is charged for it in its own budget).
    this.fanout(me.channel, encode(text), isBinary, me)
    this.bridge?.publish(me.channel, text, isBinary)
  }

  /** Sends a relayed frame to every live local instance of `channel` but `except` (the sender). */
  private fanout(channel: string, out: Buffer, binary: boolean, except?: Member): void {
    const members = this.channels.get(channel)
    if (!members) return
    for (const peer of members.values()) if (peer !== except && !peer.stale) peer.out.send(out, binary)
  }

  /**
   * Marks instances that sent no ping within the window as stale, for good (PROTOCOL.md §3), and ends connections
   * whose WebSocket ping went unanswered (a black hole leaves a socket open for hours): their ids and their slots
   * are free again.
   */
  private sweep(): void {
    const now = performance.now() // a wall-clock step (NTP, a restored VM) must not mark anyone stale
    const deadAfter = Math.max(this.o.pongTimeout, this.o.pingWindow / 2)
    for (const members of this.channels.values()) {
      for (const m of members.values()) {
        if (!m.stale && now - m.lastPing > this.o.pingWindow) {
          m.stale = true
          this.bridge?.markStale(m.channel, m.id) // so that a join on another node may take its id over
        }
        if (m.ws.readyState !== WebSocket.OPEN) continue
        if (!m.pingSentAt) {
          m.pingSentAt = now
          m.ws.ping()
        } else if (now - m.pingSentAt > deadAfter) m.ws.terminate()
      }
    }
  }

  /**
   * Stops the server. Graceful by default (close 1001 to every client, then wait briefly); `abrupt: true`
   * drops every connection at once, as a crash would (clients see 1006).
   */
  async close(options: { abrupt?: boolean } = {}): Promise<void> {
    clearInterval(this.ticker)
    const clients = [...this.wss.clients]
    // Abrupt: drop Redis first, so nothing is deregistered (a crash would not): the registry expires it.
    const bridge = this.bridge
    this.bridge = undefined
    const bridgeClosed = bridge?.close(options.abrupt ? { abrupt: true } : {})
    if (options.abrupt) for (const ws of clients) ws.terminate()
    else {
      for (const members of this.channels.values()) for (const m of members.values()) m.out.end()
      for (const ws of clients) ws.close(1001, 'server shutting down')
      await Promise.race([Promise.all(clients.map((ws) => (ws.readyState === WebSocket.CLOSED ? null : new Promise((r) => ws.once('close', r))))), new Promise((r) => setTimeout(r, 500).unref())])
      for (const ws of clients) ws.terminate()
    }
    this.channels.clear()
    await bridgeClosed
    await new Promise<void>((resolve) => {
      this.wss.close()
      if (!this.http.listening) return resolve()
      this.http.close(() => resolve())
      this.http.closeAllConnections()
    })
  }
}

const DUPLICATE = 'duplicate id: an instance with this id is already in the channel'
/** Longest channel name or id: bounds what a peer makes the server keep per channel and per instance. */
const MAX_NAME = 256
const API_METHODS = 'GET, HEAD, OPTIONS'
/** REST requests of one connection that may wait for Redis at a time. */
const MAX_PENDING_REST = 16

/** Closes `m` after the frames still queued to it. */
function closeMember(m: Member, code: number, reason: string): void {
  m.out.end()
  m.ws.close(code, reason)
}

/** The registry (Redis) failed or missed its deadline: REST answers 503, a join closes with 1013. */
class RegistryError extends Error {}

function registry<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    throw new RegistryError((e as Error)?.message ?? String(e))
  })
}

/** Starts an embedded Sock server; resolves once it listens (`server.port`, `server.url`). */
export function createSockServer(options: SockServerOptions = {}): Promise<SockServer> {
  try {
    return new SockServer(options).listen()
  } catch (e) {
    return Promise.reject(e)
  }
}
