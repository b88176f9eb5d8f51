/**
 * SockClient: setup, join/leave, on/once/off/signal/send, lifecycle on the local `socket` channel, REST.
 * Knows nothing of frames beyond choosing their type.
 */
import EventEmitter from 'eventemitter3'
import { AddressBook, type Address, type SetupArgs } from './address'
import { DEFAULT_RECONNECT, type ReconnectOptions } from './backoff'
import { crc32, fromBase64, toBase64 } from './bytes'
import { Channel, listenerKey, type ChannelSink, type ConnectionInfo, type SendReport } from './channel'
import { chunkData, splitChunks, type AssemblyLimits } from './chunks'
import { json, registerCodec, type Codec } from './codec'
import { DEFAULT_QUEUE, type Connection, type ConnectionOptions, type ConnectionState, type QueueOptions, type WebSocketLike } from './connection'
import { decodeEnvelope, encodeEnvelope, MAX_EVENT, randomName, TYPE_CHUNK, TYPE_EVENT } from './envelope'
import { ConnectionError, FrameTooLargeError, ProtocolError, SockError, ValidationError } from './errors'
import { checkChannel, checkId, checkToken, DEFAULT_MAX_FRAME_BYTES, encodeFrame, fitFrame, TYPE_FILE, TYPE_TEXT, type Frame } from './protocol'
import { getInstance, listInstances, mergeAll, type Instance } from './rest'
import { defaultWebSocket } from './websocket'

/** A file as event `file` delivers it. */
export interface SockFile {
  name: string
  bytes: Uint8Array
  size: number
}

/** channel -> event -> payload. */
export type EventMap = { [channel: string]: { [event: string]: unknown } }

/** The map used when none is given: any channel, any event; `message` is text and `file` a file. */
export type AnyEvents = { [channel: string]: { message: string; file: SockFile; [event: string]: any } }

/** What a listener receives with every message. */
export interface SockMessage<T = unknown> {
  channel: string
  event: string
  /** The Sock frame type it arrived in. */
  type: number
  data: T
  /** The sender's instance id (set by the server). */
  from: string
  /** The address (`String(address)`) it arrived from. */
  address: string
}

/** Lifecycle events on the local `socket` channel (never sent on the wire). */
export interface LifecycleInfo {
  channel: string
  /** The address (`String(address)`) this is about. */
  address: string
  state: ConnectionState
  code?: number
  reason?: string
  error?: SockError
  /** `reconnect`: retry number (1-based) and the delay before it, in ms. */
  attempt?: number
  delay?: number
  /** `progress` of a chunked message (a large signal or file): which way, its id, and bytes done of total. */
  direction?: 'send' | 'receive'
  id?: string
  from?: string
  done?: number
  total?: number
}

export type LifecycleEvent = 'connecting' | 'open' | 'close' | 'reconnect' | 'error' | 'giveup' | 'progress'

/** What `sendFile` accepts. */
export type FileInput = Uint8Array | ArrayBuffer | ArrayBufferView | Blob

export interface SendFileOptions {
  /** Called as chunks are written: bytes done of total (of the transfer, base64 included). */
  onProgress?: (done: number, total: number) => void
}

/** The local lifecycle channel. It is never a Sock channel. */
export const SOCKET = 'socket'

const DEFAULT_REST: { timeout: number; fetch?: typeof fetch } = { timeout: 5000 }
const DEFAULT_LIMITS: AssemblyLimits = { maxMessageBytes: 16 << 20, maxPendingBytes: 64 << 20, timeout: 30_000 }

export type Unsubscribe = () => void

export interface SockClientOptions {
  /** Instance id to join with (`[A-Za-z0-9]+`). Absent: the server picks one; see `idOf()`. */
  id?: string
  /** Server token. Absent: the server's default (`demo`). Never logged or shown. */
  token?: string
  /** WebSocket constructor; defaults to the runtime's standard one (browsers, Node >= 22, Deno, Bun), or `ws` in Node 20. */
  WebSocket?: WebSocketLike
  /** Keep-alive and liveness probe interval in ms (default 15 000; keep it well inside the server's window). */
  pingInterval?: number
  /** How long the who-am-I reply may take before the connection counts as dead, in ms (default 10 000). */
  probeTimeout?: number
  /** How long a connection attempt may take, in ms (default 10 000). */
  connectTimeout?: number
  /** The server's read limit for a whole frame in UTF-8 bytes (default 1024, the reference server's). */
  maxFrameBytes?: number
  reconnect?: Partial<ReconnectOptions>
  queue?: Partial<QueueOptions>
  /** REST timeout in ms (default 5000). */
  restTimeout?: number
  /** fetch for REST; defaults to the global one. */
  fetch?: typeof fetch
  /** Codec for envelope payloads: JSON (default) or `msgpack()` from `sock-client/msgpack`. */
  codec?: Codec
  /** Largest message sent or reassembled, in bytes of its envelope (default 16 MiB). */
  maxMessageBytes?: number
  /** Most bytes all partial (chunked) messages of a channel may hold at once (default 64 MiB). */
  maxPendingBytes?: number
  /** A chunked message with no new chunk for this long is dropped, with an error event (default 30 000 ms). */
  assemblyTimeout?: number
  /**
   * Bytes a socket may hold unsent before sends wait in the queue (default 1 MiB): a peer that stops reading then
   * fills the bounded queue, whose overflow policy applies, instead of this process's memory.
   */
  highWaterMark?: number
  /**
   * The server's keep-alive window in ms (default 60 000, the reference server's): when this client's own timers
   * stalled for longer (a paused process, a machine asleep), its instance may be stale, and it rejoins at once.
   */
  serverPingWindow?: number
  /**
   * How long a close 1008 "duplicate id" soon after losing a connection is retried, in ms (default 120 000): the
   * server may still hold the dead connection. Other 1008s, and a duplicate id on a first join, are final at once.
   */
  duplicateIdTimeout?: number
  /**
   * Interval in ms of the registration check (default 60 000; 0 turns it off): REST tells whether the server still
   * lists this instance, which it may not while it still answers who-am-I (deregistered as a duplicate or as stale).
   * Turn it off for a server without REST routes, or behind a balancer whose nodes do not share their registry.
   */
  registrationCheck?: number
}

export interface MessagesOptions {
  /** Ends the iterator. */
  signal?: AbortSignal
  /** Most messages buffered while the consumer is busy (default 10 000); beyond it the iterator throws. */
  maxBuffered?: number
  /** Most bytes buffered (the text of the frames they came in; default 16 MiB); beyond it the iterator throws. */
  maxBufferedBytes?: number
}

type Channels<E> = keyof E & string
type Events<E, C extends keyof E> = keyof E[C] & string
type Payload<E, C extends keyof E, K> = K extends keyof E[C] ? E[C][K] : never
type ChannelListener<E, C extends keyof E> = (event: Events<E, C>, message: SockMessage<E[C][Events<E, C>]>) => void
type EventListener<E, C extends keyof E, K extends keyof E[C]> = (data: E[C][K], message: SockMessage<E[C][K]>) => void
type Listener = (...args: any[]) => void

/** Encodes a frame, or `undefined` when it exceeds the limit (the caller then chunks it). */
function tryFrame(type: number, data: string, max: number): string | undefined {
  const text = fitFrame(type, data, max)
  return typeof text === 'string' ? text : undefined
}

function positive(v: unknown, name: string, fallback: number, allowInfinity = false): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !(v >= 0) || (!allowInfinity && !Number.isFinite(v))) {
    throw new ValidationError(name, `invalid ${name} ${String(v)}: use a non-negative number`)
  }
  return v
}

/** The payload of a file envelope (event `file`): name, size, CRC-32 and the bytes in base64. */
interface FilePayload {
  name: string
  size: number
  crc32: string
  base64: string
}

function isFilePayload(v: unknown): v is FilePayload {
  const o = v as FilePayload | null
  return !!o && typeof o === 'object' && typeof o.name === 'string' && typeof o.size === 'number' && typeof o.crc32 === 'string' && typeof o.base64 === 'string'
}

function checkFileName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || /[:/\\\u0000]/.test(name) || name === '.' || name === '..') {
    throw new ValidationError('name', `invalid file name ${JSON.stringify(name) ?? String(name)}: give a base name without ':' or a path separator, as in 'photo.png'`)
  }
  return name
}

async function toBytes(input: FileInput): Promise<Uint8Array> {
  if (input instanceof Uint8Array) return input
  if (input instanceof ArrayBuffer) return new Uint8Array(input)
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  return new Uint8Array(await (input as Blob).arrayBuffer())
}

function isFileInput(v: unknown): v is FileInput {
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v) || (typeof Blob !== 'undefined' && v instanceof Blob)
}

/**
 * Application code runs isolated: every listener is called through a wrapper that catches what it throws and hands
 * it to the client whose dispatch is running, so a bug in a listener never stalls a socket, a parser or a promise
 * of ours. One wrapper per function, so registering a function twice still calls it once.
 */
const SAFE = new WeakMap<Listener, Listener>()
/** The client dispatching now, the event it dispatches, and the frame size of the message (for `messages()`). */
let dispatching: SockClient<any> | undefined
let dispatchEvent = ''
let dispatchBytes = 0

function safe(fn: Listener): Listener {
  let w = SAFE.get(fn)
  if (!w) {
    w = function (this: unknown, a: unknown, b: unknown) {
      try {
        fn.call(this, a, b)
      } catch (e) {
        const c = dispatching
        if (c) c.threw(e, dispatchEvent, b as { channel?: string; address?: string })
        else surface(e)
      }
    }
    SAFE.set(fn, w)
  }
  return w
}

/** Reports an application error the way the platform reports uncaught ones (Node: `uncaughtException`; a page: its `error` event). */
function surface(e: unknown): void {
  queueMicrotask(() => {
    throw e
  })
}

let lastWs: { maxPayload: number } | undefined
/** The options for a `ws` constructor: the largest inbound frame is the largest message. */
function wsOptions(WS: WebSocketLike, maxMessageBytes: number): { maxPayload: number } | undefined {
  if (typeof (WS as { prototype?: { terminate?: unknown } }).prototype?.terminate !== 'function') return undefined
  const maxPayload = maxMessageBytes + 1024 // the frame's own JSON around the largest message
  return lastWs?.maxPayload === maxPayload ? lastWs : (lastWs = { maxPayload })
}

let lastConn: ConnectionOptions | undefined
/** The connection options of the client built before, when equal: most clients keep the defaults and share one. */
function shared(c: ConnectionOptions): ConnectionOptions {
  const l = lastConn
  if (l && (Object.keys(c) as (keyof ConnectionOptions)[]).every((k) => l[k] === c[k])) return l
  return (lastConn = c)
}

/** The connection of a client: its addresses (pocketsocket's `connection`) and a chainable `on`. */
export class SockConnection<E extends EventMap = AnyEvents> extends AddressBook {
  /** Same as `client.on(...)`, so `setup(...).on('socket', fn)` chains. */
  declare readonly on: SockClient<E>['on']

  constructor(private readonly client: SockClient<E>) {
    super()
  }

  /** Forgets every address and leaves every channel. */
  empty(): this {
    this.client.close()
    this.clear()
    return this
  }
}

// On the prototype rather than a function bound per client.
;(SockConnection.prototype as { on: unknown }).on = function (this: { client: SockClient }, ...args: unknown[]) {
  return (this.client.on as (...a: unknown[]) => unknown)(...args)
}

export class SockClient<E extends EventMap = AnyEvents> {
  readonly connection: SockConnection<E>
  private readonly emitter = new EventEmitter()
  /** Every channel the client wants joined: its Channel once opened, `undefined` while there is no `setup()`. */
  private readonly channels = new Map<string, Channel | undefined>()
  private readonly conn: ConnectionOptions
  private readonly rest: { timeout: number; fetch?: typeof fetch }
  private readonly codec: Codec
  private readonly limits: AssemblyLimits
  private prefix: string | undefined
  private seq = 0
  private wake: (() => void) | undefined

  /** What every channel of every client reports, passed on to its client: one object, no closures per client. */
  private static readonly relay: ChannelSink = {
    state(ch, conn, state, d) {
      const info: LifecycleInfo = { channel: ch.name, address: String(conn.address), state, ...d }
      const ev: LifecycleEvent = state === 'open' ? 'open' : state === 'connecting' ? 'connecting' : state === 'giveup' ? 'giveup' : 'close'
      const self = ch.owner as SockClient
      if (d.error) self.lifecycle('error', info)
      self.lifecycle(ev, info)
    },
    frame: (ch, conn, f) => (ch.owner as SockClient).receive(ch, conn, f),
    error: (ch, conn, error) => (ch.owner as SockClient).fail(ch, conn, error),
    reconnect: (ch, conn, d) => (ch.owner as SockClient).lifecycle('reconnect', { channel: ch.name, address: String(conn.address), state: conn.state, ...d }),
  }

  constructor(options: SockClientOptions = {}) {
    if (options === null || typeof options !== 'object') throw new ValidationError('options', 'SockClient options must be an object')
    const o = options
    if (o.id !== undefined) checkId(o.id, 'options.id')
    checkToken(o.token, 'options.token')
    const WS = o.WebSocket ?? defaultWebSocket()
    if (typeof WS !== 'function') throw new ValidationError('options.WebSocket', 'no WebSocket in this runtime: pass options.WebSocket (in Node, the ws package)')
    const maxFrameBytes = positive(o.maxFrameBytes, 'options.maxFrameBytes', DEFAULT_MAX_FRAME_BYTES)
    if (maxFrameBytes < 64) throw new ValidationError('options.maxFrameBytes', `options.maxFrameBytes ${maxFrameBytes} is too small: a Sock frame needs at least 64 bytes`)
    // Clients that keep the defaults share one object of each (a client's memory is mostly its socket's).
    const r = o.reconnect ? { ...DEFAULT_RECONNECT, ...o.reconnect } : DEFAULT_RECONNECT
    for (const k of ['minDelay', 'maxDelay', 'factor', 'minUptime'] as const) positive(r[k], `options.reconnect.${k}`, 0)
    positive(r.maxRetries, 'options.reconnect.maxRetries', 0, true)
    const q = o.queue ? { ...DEFAULT_QUEUE, ...o.queue } : DEFAULT_QUEUE
    positive(q.maxCount, 'options.queue.maxCount', 0, true)
    positive(q.maxBytes, 'options.queue.maxBytes', 0, true)
    if (q.overflow !== 'reject' && q.overflow !== 'drop-oldest') throw new ValidationError('options.queue.overflow', `invalid options.queue.overflow ${String(q.overflow)}: use 'reject' or 'drop-oldest'`)
    this.rest = o.restTimeout === undefined && !o.fetch ? DEFAULT_REST : { timeout: positive(o.restTimeout, 'options.restTimeout', 5000) || 5000, fetch: o.fetch }
    this.limits =
      o.maxMessageBytes === undefined && o.maxPendingBytes === undefined && o.assemblyTimeout === undefined
        ? DEFAULT_LIMITS
        : {
            maxMessageBytes: positive(o.maxMessageBytes, 'options.maxMessageBytes', DEFAULT_LIMITS.maxMessageBytes) || DEFAULT_LIMITS.maxMessageBytes,
            maxPendingBytes: positive(o.maxPendingBytes, 'options.maxPendingBytes', DEFAULT_LIMITS.maxPendingBytes) || DEFAULT_LIMITS.maxPendingBytes,
            timeout: positive(o.assemblyTimeout, 'options.assemblyTimeout', DEFAULT_LIMITS.timeout) || DEFAULT_LIMITS.timeout,
          }
    const serverPingWindow = positive(o.serverPingWindow, 'options.serverPingWindow', 60_000) || 60_000
    this.conn = shared({
      WebSocket: WS,
      wsOptions: wsOptions(WS, this.limits.maxMessageBytes),
      id: o.id,
      token: o.token,
      pingInterval: positive(o.pingInterval, 'options.pingInterval', 15_000) || 15_000,
      probeTimeout: positive(o.probeTimeout, 'options.probeTimeout', 10_000) || 10_000,
      connectTimeout: positive(o.connectTimeout, 'options.connectTimeout', 10_000) || 10_000,
      maxFrameBytes,
      highWaterMark: positive(o.highWaterMark, 'options.highWaterMark', 1 << 20) || 1 << 20,
      serverPingWindow,
      duplicateIdTimeout: positive(o.duplicateIdTimeout, 'options.duplicateIdTimeout', 2 * serverPingWindow, true),
      registrationCheck: positive(o.registrationCheck, 'options.registrationCheck', 60_000),
      verify: getInstance,
      rest: this.rest,
      reconnect: r,
      queue: q,
    })
    const codec = o.codec ?? json
    if (!codec || typeof codec.name !== 'string' || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
      throw new ValidationError('options.codec', 'options.codec must be { name, encode, decode }, such as msgpack() from sock-client/msgpack')
    }
    this.codec = registerCodec(codec)
    this.connection = new SockConnection(this)
  }

  /**
   * Sets the addresses: `'host:port'`, `(host, port)`, a `ws://` / `wss://` URL, `(hosts[], ports[], 'mix' | 'flat',
   * mode)`, a list of addresses or URLs, or `{ name: [host, port] | { ip, port } | url }`; mode `'broadcast'`
   * (every address at once, the default) or `'failover'` (one at a time). Channels already joined move to the
   * new addresses. Returns `client.connection`, so `setup(...).on('socket', fn)` chains.
   */
  setup(...args: SetupArgs): SockConnection<E> {
    this.connection.set(...args)
    const names = [...this.channels.keys()]
    for (const ch of this.channels.values()) ch?.close()
    this.channels.clear()
    for (const name of names) this.open(name)
    return this.connection
  }

  /** Throws unless `setup()` gave addresses. Cheap: builds no list (it runs on every send). */
  private checkSetup(): void {
    if (!this.connection.isSetup()) throw new ValidationError('setup', 'no address: call client.setup(address) first')
  }

  private addresses(): readonly Address[] {
    this.checkSetup()
    return this.connection.list()
  }

  private open(name: string): Channel {
    let ch = this.channels.get(name)
    if (ch) return ch
    ch = new Channel(name, this.addresses(), this.connection.mode, this.conn, this.limits, SockClient.relay, this)
    this.channels.set(name, ch)
    this.watch()
    return ch
  }

  private lifecycle(event: LifecycleEvent, info: LifecycleInfo): void {
    this.dispatch(listenerKey(SOCKET, event), listenerKey(SOCKET, ''), event, info, info, 0)
  }

  /** Calls the listeners of `event` (under `key`) and the catch-all ones (under `any`), each isolated (`safe`). */
  private dispatch(key: string, any: string, event: string, data: unknown, message: unknown, bytes: number): void {
    const c = dispatching
    const e = dispatchEvent
    const n = dispatchBytes
    dispatching = this
    dispatchEvent = event
    dispatchBytes = bytes
    try {
      this.emitter.emit(key, data, message)
      this.emitter.emit(any, event, message)
    } finally {
      dispatching = c
      dispatchEvent = e
      dispatchBytes = n
    }
  }

  /**
   * A listener (or an option callback) threw: an `error` event with code `ERR_LISTENER` when the application listens
   * to errors, else an uncaught error as the platform reports it. An error listener's own throw is never re-emitted.
   * @internal
   */
  threw(e: unknown, event: string, about: { channel?: string; address?: string } | undefined): void {
    const listening = this.emitter.listenerCount(listenerKey(SOCKET, 'error')) + this.emitter.listenerCount(listenerKey(SOCKET, ''))
    if (event === 'error' || !listening) return surface(e)
    const channel = about?.channel ?? ''
    const error = new SockError('ERR_LISTENER', `a listener of '${event}' on '${channel}' threw (${(e as Error)?.message ?? String(e)}): caught, and the channel goes on`, { cause: e })
    const conn = this.channels.get(channel)?.connections[0]
    this.lifecycle('error', { channel, address: about?.address ?? String(conn?.address ?? ''), state: conn?.state ?? 'closed', error })
  }

  /** Calls an option callback of the application (`onProgress`), isolated as listeners are. */
  private callback(fn: ((...a: any[]) => void) | undefined, what: string, channel: string, ...args: unknown[]): void {
    if (!fn) return
    try {
      fn(...args)
    } catch (e) {
      this.threw(e, what, { channel })
    }
  }

  private fail(ch: Channel, conn: Connection, error: SockError): void {
    this.lifecycle('error', { channel: ch.name, address: String(conn.address), state: conn.state, error })
  }

  private receive(ch: Channel, conn: Connection, f: Frame): void {
    if (ch.isOwn(f.from)) return
    let event: string
    let data: unknown
    let bytes = f.data.length
    if (f.type === TYPE_TEXT) {
      event = 'message'
      data = f.data
    } else if (f.type === TYPE_FILE) {
      const i = f.data.indexOf(':')
      const bytes = i > 0 ? fromBase64(f.data.slice(i + 1)) : undefined
      if (!bytes) return this.fail(ch, conn, new ProtocolError('ERR_PROTOCOL', `received a type-2 file frame from '${f.from}' that is not <name>:<base64>`))
      event = 'file'
      data = { name: f.data.slice(0, i), bytes, size: bytes.length } satisfies SockFile
    } else if (f.type === TYPE_EVENT || f.type === TYPE_CHUNK) {
      let text = f.data
      if (f.type === TYPE_CHUNK) {
        const r = ch.assembler.add(f.data, f.from)
        if ('error' in r) return this.fail(ch, conn, r.error)
        if ('progress' in r) return this.lifecycle('progress', { channel: ch.name, address: String(conn.address), state: conn.state, direction: 'receive', ...r.progress })
        if (!('done' in r)) return
        text = r.done
        bytes = text.length
      }
      const env = decodeEnvelope(text)
      if (env instanceof ProtocolError) return this.fail(ch, conn, env)
      if (!ch.firstTime(env.id)) return
      event = env.event
      data = env.data
      if (event === 'file' && isFilePayload(data)) {
        const p = data
        const bytes = fromBase64(p.base64)
        if (!bytes || bytes.length !== p.size || crc32(bytes) !== p.crc32) {
          return this.fail(ch, conn, new ProtocolError('ERR_PROTOCOL', `dropped file '${p.name}' from '${f.from}': ${!bytes ? 'bad base64' : bytes.length !== p.size ? `${bytes.length} bytes instead of ${p.size}` : 'CRC-32 mismatch'}`))
        }
        data = { name: p.name, bytes, size: bytes.length } satisfies SockFile
      }
    } else {
      event = `type:${f.type}`
      data = f.data
    }
    const message: SockMessage = { channel: ch.name, event, type: f.type, data, from: f.from, address: String(conn.address) }
    this.dispatch(ch.key(event), ch.anyKey, event, data, message, bytes)
  }

  /**
   * Joins `channel` on the addresses of the mode; resolves once its connection is open (proven end to end).
   * Bad arguments (or no `setup()` yet) throw at once; connection failures reject.
   */
  join(channel: Channels<E>): Promise<void> {
    this.checkWire(channel)
    this.checkSetup()
    return this.open(channel).ready()
  }

  private checkWire(channel: string): void {
    checkChannel(channel)
    if (channel === SOCKET) throw new ValidationError('channel', `'socket' is the local lifecycle channel: it is never joined or sent on`)
  }

  /** Leaves `channel`: closes its connections; queued sends reject. Listeners stay registered. */
  leave(channel: Channels<E>): void {
    checkChannel(channel)
    this.channels.get(channel)?.close()
    this.channels.delete(channel)
  }

  /** Listens to lifecycle events on the local `socket` channel. */
  on(channel: typeof SOCKET, event: LifecycleEvent, fn: (info: LifecycleInfo, message: LifecycleInfo) => void): Unsubscribe
  on(channel: typeof SOCKET, fn: (event: LifecycleEvent, info: LifecycleInfo) => void): Unsubscribe
  /** Listens to `event` on `channel` (joining it): `fn(data, message)`. */
  on<C extends Channels<E>, K extends Events<E, C>>(channel: C, event: K, fn: EventListener<E, C, K>): Unsubscribe
  /** Listens to every event on `channel` (joining it): `fn(event, message)`. */
  on<C extends Channels<E>>(channel: C, fn: ChannelListener<E, C>): Unsubscribe
  on(channel: string, a: string | Listener, b?: Listener): Unsubscribe {
    return this.listen(channel, a, b, false)
  }

  /** Like `on`, for one call. */
  once(channel: typeof SOCKET, event: LifecycleEvent, fn: (info: LifecycleInfo, message: LifecycleInfo) => void): Unsubscribe
  once(channel: typeof SOCKET, fn: (event: LifecycleEvent, info: LifecycleInfo) => void): Unsubscribe
  once<C extends Channels<E>, K extends Events<E, C>>(channel: C, event: K, fn: EventListener<E, C, K>): Unsubscribe
  once<C extends Channels<E>>(channel: C, fn: ChannelListener<E, C>): Unsubscribe
  once(channel: string, a: string | Listener, b?: Listener): Unsubscribe {
    return this.listen(channel, a, b, true)
  }

  /** Removes a listener added with `on` / `once` (the same arguments). Stays joined. */
  off(channel: string, event: string, fn: Listener): void
  off(channel: string, fn: Listener): void
  off(channel: string, a: string | Listener, b?: Listener): void {
    const [key, fn] = this.key(channel, a, b)
    const w = SAFE.get(fn)
    if (w) this.emitter.off(key, w)
  }

  private key(channel: string, a: string | Listener, b?: Listener): [string, Listener] {
    if (channel !== SOCKET) checkChannel(channel)
    if (typeof a === 'function') return [listenerKey(channel, ''), a]
    if (typeof a !== 'string' || a === '') throw new ValidationError('event', `invalid event ${String(a)}: an event name is a non-empty string`)
    if (typeof b !== 'function') throw new ValidationError('listener', `missing listener for event '${a}': pass a function`)
    return [listenerKey(channel, a), b]
  }

  private listen(channel: string, a: string | Listener, b: Listener | undefined, once: boolean): Unsubscribe {
    const [key, fn] = this.key(channel, a, b)
    // Registering the same function twice is harmless: it is called once per message.
    const w = safe(fn)
    if (!this.emitter.listeners(key).includes(w)) this.emitter[once ? 'once' : 'on'](key, w)
    if (channel !== SOCKET && !this.channels.has(channel)) {
      if (this.connection.isSetup()) this.open(channel)
      else this.channels.set(channel, undefined)
    }
    return () => this.emitter.off(key, w)
  }

  /**
   * Sends `data` as `event` on `channel` (joining it). `message` with a string is a plain Sock text frame
   * (type 1); every other event travels in sock-client's envelope. Resolves once written to a socket; queued
   * while the channel is not open; rejects with the reason otherwise.
   */
  signal<C extends Channels<E>, K extends Events<E, C>>(channel: C, event: K, data: Payload<E, C, K>): Promise<SendReport> {
    const ch = this.channels.get(channel)
    if (!ch) this.checkWire(channel) // a joined channel's name was checked when it opened
    if (typeof event !== 'string' || event === '' || event.length > MAX_EVENT) {
      throw new ValidationError('event', typeof event === 'string' && event ? `invalid event name of ${event.length} characters: an event name is at most ${MAX_EVENT} characters` : `invalid event ${String(event)}: an event name is a non-empty string`)
    }
    const max = this.conn.maxFrameBytes
    const plain = event === 'message' && typeof data === 'string' ? tryFrame(TYPE_TEXT, data, max) : undefined
    if (plain !== undefined) return this.deliver(channel, plain, ch)
    this.checkSetup()
    const id = this.nextId()
    let text: string
    try {
      text = encodeEnvelope(id, event, data, this.codec)
    } catch (e) {
      return Promise.reject(new ValidationError('data', `cannot encode the payload of '${event}' with the ${this.codec.name} codec: ${(e as Error)?.message ?? e}`))
    }
    return this.sendEnvelope(channel, id, text)
  }

  /** Sends an envelope in one frame, or in chunks when it exceeds `maxFrameBytes`. */
  private sendEnvelope(channel: string, id: string, text: string, onProgress?: (done: number, total: number) => void): Promise<SendReport> {
    const max = this.conn.maxFrameBytes
    const total = text.length
    const single = tryFrame(TYPE_EVENT, text, max)
    if (single !== undefined) {
      const sent = this.deliver(channel, single)
      if (!onProgress) return sent // no extra promise per event when nobody follows progress
      return sent.then((r) => {
        this.callback(onProgress, 'onProgress', channel, total, total)
        return r
      })
    }
    if (total > this.limits.maxMessageBytes) {
      return Promise.reject(new FrameTooLargeError(total, this.limits.maxMessageBytes, `message of ${total} bytes exceeds maxMessageBytes (${this.limits.maxMessageBytes}); raise maxMessageBytes on both sides or send less`))
    }
    const ch = this.open(channel)
    const pieces = splitChunks(id, text, max)
    return (async () => {
      let done = 0
      let report!: SendReport
      for (let i = 0; i < pieces.length; i++) {
        // Each chunk waits for the previous one, so a connection that drops mid-message queues one chunk, not all.
        report = await ch.send(encodeFrame(TYPE_CHUNK, chunkData(id, i, pieces.length, total, pieces[i]!), max))
        done += pieces[i]!.length
        this.callback(onProgress, 'onProgress', channel, done, total)
        const conn = ch.connections[0]!
        this.lifecycle('progress', { channel, address: String(conn.address), state: conn.state, direction: 'send', id, from: ch.id ?? '', done, total })
      }
      return report
    })()
  }

  /**
   * Sends a file. Small ones go out as sockc's type 2 (`name:base64`); larger ones as a chunked `file` envelope
   * with length and CRC-32, checked by the receiver. Receivers get event `file` with `{ name, bytes, size }`.
   */
  sendFile(channel: Channels<E>, name: string, bytes: FileInput, options: SendFileOptions = {}): Promise<SendReport> {
    this.checkWire(channel)
    checkFileName(name)
    if (!isFileInput(bytes)) throw new ValidationError('bytes', 'sendFile() takes a Uint8Array, ArrayBuffer, Buffer or Blob')
    this.checkSetup()
    return toBytes(bytes).then((b) => {
      const base64 = toBase64(b)
      const small = tryFrame(TYPE_FILE, `${name}:${base64}`, this.conn.maxFrameBytes)
      if (small !== undefined) {
        return this.deliver(channel, small).then((r) => {
          this.callback(options.onProgress, 'onProgress', channel, b.length, b.length)
          return r
        })
      }
      const id = this.nextId()
      return this.sendEnvelope(channel, id, encodeEnvelope(id, 'file', { name, size: b.length, crc32: crc32(b), base64 } satisfies FilePayload), options.onProgress)
    })
  }

  /**
   * Messages of `channel` (one `event`, or all) as an async iterator, ended by `options.signal`:
   * `for await (const m of client.messages('chat', 'message', { signal })) ...`
   */
  messages<C extends Channels<E>, K extends Events<E, C>>(channel: C, event: K, options?: MessagesOptions): AsyncIterableIterator<SockMessage<E[C][K]>>
  messages<C extends Channels<E>>(channel: C, options?: MessagesOptions): AsyncIterableIterator<SockMessage<E[C][Events<E, C>]>>
  messages(channel: string, a?: string | MessagesOptions, b?: MessagesOptions): AsyncIterableIterator<SockMessage> {
    const event = typeof a === 'string' ? a : undefined
    const o = (typeof a === 'string' ? b : a) ?? {}
    const max = positive(o.maxBuffered, 'options.maxBuffered', 10_000) || 10_000
    const maxBytes = positive(o.maxBufferedBytes, 'options.maxBufferedBytes', 16 << 20) || 16 << 20
    const buffer: SockMessage[] = []
    const sizes: number[] = []
    let bytes = 0
    let wake: (() => void) | undefined
    let ended = false
    let failure: SockError | undefined
    const push = (m: SockMessage) => {
      if (ended) return
      const size = dispatchBytes
      if (buffer.length >= max || bytes + size > maxBytes) {
        const what = buffer.length >= max ? `${max} messages` : `${bytes + size} bytes (maxBufferedBytes ${maxBytes})`
        failure = new ConnectionError('ERR_QUEUE_FULL', `messages() iterator on '${channel}' would buffer ${what} without being read: raise maxBuffered / maxBufferedBytes or read faster`)
        return end()
      }
      buffer.push(m)
      sizes.push(size)
      bytes += size
      wake?.()
    }
    const off = event !== undefined ? this.on(channel as Channels<E>, event as never, ((_d: unknown, m: SockMessage) => push(m)) as never) : this.on(channel as Channels<E>, ((_e: string, m: SockMessage) => push(m)) as never)
    const end = () => {
      ended = true
      off()
      o.signal?.removeEventListener('abort', end)
      wake?.()
    }
    if (o.signal?.aborted) end()
    else o.signal?.addEventListener('abort', end)
    const it: AsyncIterableIterator<SockMessage> = {
      next: async () => {
        while (!buffer.length && !ended) await new Promise<void>((r) => (wake = r))
        wake = undefined
        if (failure) {
          const f = failure
          failure = undefined
          buffer.length = sizes.length = 0
          throw f
        }
        if (ended) {
          buffer.length = sizes.length = 0 // aborted: what was not read yet is not wanted
          return { value: undefined, done: true }
        }
        bytes -= sizes.shift()!
        return { value: buffer.shift()!, done: false }
      },
      return: async () => {
        end()
        return { value: undefined, done: true }
      },
      [Symbol.asyncIterator]: () => it,
    }
    return it
  }

  /** Sends a raw Sock frame `{type, data}` on `channel` (joining it). */
  send(channel: Channels<E>, type: number, data: string): Promise<SendReport> {
    this.checkWire(channel)
    if (!Number.isSafeInteger(type)) throw new ValidationError('type', `invalid type ${String(type)}: a Sock frame type is an integer (1 text, 2 file, > 2 for applications)`)
    if (typeof data !== 'string') throw new ValidationError('data', `invalid data of type ${data === null ? 'null' : typeof data}: a raw Sock frame carries a string; use signal() for other payloads`)
    this.checkSetup()
    let text: string
    try {
      text = encodeFrame(type, data, this.conn.maxFrameBytes)
    } catch (e) {
      return Promise.reject(e) // too large: an outcome, not a throw
    }
    return this.deliver(channel, text)
  }

  /** Sends an encoded frame on `channel`, joining it. */
  private deliver(channel: string, text: string, ch = this.channels.get(channel)): Promise<SendReport> {
    if (!ch) {
      this.checkSetup()
      ch = this.open(channel)
    }
    return ch.send(text)
  }

  private nextId(): string {
    return (this.prefix ??= randomName(8)) + (++this.seq).toString(36)
  }

  /** The instance id the server gave this client on `channel` (after `open`), or `undefined`. */
  idOf(channel: Channels<E>): string | undefined {
    return this.channels.get(channel)?.id
  }

  /**
   * The connections of `channel`: one per address in broadcast mode, one in failover mode, each with the address
   * in use, its state, the id the server gave it and how many frames wait in its queue. `[]` if not joined.
   */
  connectionsOf(channel: Channels<E>): ConnectionInfo[] {
    return this.channels.get(channel)?.describe() ?? []
  }

  /** The state of `channel`: `open` if any of its connections is, else that of its first connection. */
  stateOf(channel: Channels<E>): ConnectionState | undefined {
    const ch = this.channels.get(channel)
    if (!ch) return undefined
    return ch.isOpen ? 'open' : ch.connections[0]!.state
  }

  /** Every instance in `channel`, from every address, merged by id (`[]` when nobody is in it). */
  instances(channel: Channels<E>): Promise<Instance[]> {
    this.checkWire(channel)
    return mergeAll(this.addresses(), (a) => listInstances(a, channel, this.rest))
  }

  /** One instance of `channel`, or `null`. */
  instance(channel: Channels<E>, id: string): Promise<Instance | null> {
    this.checkWire(channel)
    checkId(id)
    return mergeAll(this.addresses(), (a) => getInstance(a, channel, id, this.rest)).then((all) => all[0] ?? null)
  }

  /** Reconnects every channel now (after a give-up, or to skip a pending retry delay). */
  reconnect(): void {
    for (const ch of this.channels.values()) ch?.reconnect()
  }

  /** Closes every channel; queued sends reject. Leaves no timer or socket behind. Listeners stay. */
  close(): void {
    for (const ch of this.channels.values()) ch?.close()
    this.channels.clear()
    this.watch()
  }

  /** In browsers: check liveness when the network comes back or a hidden page becomes visible. */
  private watch(): void {
    const g = globalThis as { addEventListener?: Window['addEventListener']; removeEventListener?: Window['removeEventListener']; document?: Document }
    if (!g.addEventListener || !g.document) return
    if (this.channels.size && !this.wake) {
      this.wake = () => {
        if (g.document!.visibilityState !== 'hidden') for (const ch of this.channels.values()) ch?.check()
      }
      g.addEventListener('online', this.wake)
      g.document.addEventListener('visibilitychange', this.wake)
    } else if (!this.channels.size && this.wake) {
      g.removeEventListener!('online', this.wake)
      g.document.removeEventListener('visibilitychange', this.wake)
      this.wake = undefined
    }
  }
}
