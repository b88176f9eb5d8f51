/**
 * The kernel's SockClient (`sock-client/core`): one address, join/leave, on/once/off/signal/send, lifecycle events
 * on the local `socket` channel, listeners isolated from the library, and the features it is given. A facade over
 * channels: it knows no frame type. The full client (`sock-client`) is this class with every feature composed in.
 */
import { AddressBook, type SetupArgs } from './address'
import { DEFAULT_RECONNECT, type ReconnectOptions } from './backoff'
import { Channel, listenerKey, type ChannelHost, type ConnectionInfo, type JoinOptions, type Kernel, type SendReport, type TokenFunction } from './channel'
import { DEFAULT_QUEUE, type Connection, type ConnectionOptions, type ConnectionState, type QueueOptions, type WebSocketLike } from './connection'
import { DEV } from './dev'
import { json, MAX_EVENT, REPLY } from './envelope'
import { SockError, ValidationError } from './errors'
import { compose, type Feature } from './feature'
import { checkChannel, checkFrame, checkId, checkToken, DEFAULT_MAX_FRAME_BYTES, encodeFrame } from './protocol'
import { defaultWebSocket } from './websocket'

/** A file as event `file` delivers it (the files feature). */
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

/** The local lifecycle channel. It is never a Sock channel. */
export const SOCKET = 'socket'

export type Unsubscribe = () => void

/** The options of the kernel; the full client adds those of its features (`SockClientOptions` in `sock-client`). */
export interface CoreOptions {
  /** Instance id to join with (`[A-Za-z0-9]+`). Absent: the server picks one; see `idOf()`. */
  id?: string
  /**
   * Server token, or a function that gives one for each connection attempt (first connect, every reconnect, every
   * failover move), sync or async, so an expiring credential is fresh where it is used. A throw or rejection fails
   * the attempt (error `ERR_TOKEN`, then backoff); an `UnauthorizedError` stops retrying (`ERR_UNAUTHORIZED`); it has
   * `connectTimeout` to settle. Absent: the server's default (`demo`). Never logged or shown.
   */
  token?: string | TokenFunction
  /**
   * WebSocket constructor. Default: the runtime's standard one (browsers, Deno, Bun, Node >= 22), else `ws` (Node
   * 20). Pass `ws` on Node >= 22 to keep WebSocket ping frames and write batching.
   */
  WebSocket?: WebSocketLike
  /** Keep-alive and liveness probe interval in ms (default 15 000; keep it well inside the server's window). */
  pingInterval?: number
  /** How long the who-am-I reply may take before the connection counts as dead, in ms (default 10 000). */
  probeTimeout?: number
  /** How long a connection attempt may take, in ms (default 10 000). */
  connectTimeout?: number
  /** The server's read limit for a whole frame in UTF-8 bytes (default 1024, the reference server's). */
  maxFrameBytes?: number
  /** Largest message sent or received, in characters of its envelope (default 16 MiB); in Node also the largest inbound frame. */
  maxMessageBytes?: number
  reconnect?: Partial<ReconnectOptions>
  queue?: Partial<QueueOptions>
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
   * Features composed onto the kernel (`sock-client/core`): addresses, chunks, files, rest, codecs, replies, streams,
   * presence, debug, each from its subpath (`sock-client` has them all). A feature given twice counts once.
   */
  features?: readonly Feature[]
}

// The channels of a map, the events of a channel and an event's payload. The public signatures spell the first two
// out (`C extends keyof E & string`, `K extends keyof E[C] & string`) instead of naming these aliases: tsc prints an
// alias imported from another file (as every .d.ts of the package is) by its name, so a wrong name read
// `not assignable to parameter of type 'Events<AppEvents, "chat">'`; spelled out, it names the valid ones,
// `'"message" | "typing"'` (test/type-errors.test.ts).
export type Channels<E> = keyof E & string
export type Events<E, C extends keyof E> = keyof E[C] & string
export type Payload<E, C extends keyof E, K> = K extends keyof E[C] ? E[C][K] : never
type ChannelListener<E, C extends keyof E> = (event: keyof E[C] & string, message: SockMessage<E[C][keyof E[C] & string]>) => void
type EventListener<E, C extends keyof E, K extends keyof E[C]> = (data: E[C][K], message: SockMessage<E[C][K]>) => void
type Listener = (...args: any[]) => void

/** A non-negative number option, or its default; `allowInfinity` for counts that may be unbounded. */
export function positive(v: unknown, name: string, fallback: number, allowInfinity = false): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !(v >= 0) || (!allowInfinity && !Number.isFinite(v))) {
    throw new ValidationError(name, DEV ? `invalid ${name} ${String(v)}: use a non-negative number` : `invalid ${name}`)
  }
  return v
}

/** The options of `signal()`. */
export interface SignalOptions {
  /** The one instance meant (its id): other sock-client receivers drop the event; plain Sock peers still see it. */
  to?: string
}

/** Throws unless `event` can name an event on the wire: a non-empty string of at most 256 characters, not the reserved `$r`. */
export function checkEvent(event: unknown): string {
  if (typeof event !== 'string' || event === '' || event.length > MAX_EVENT || event === REPLY) {
    throw new ValidationError(
      'event',
      DEV
        ? event === REPLY
          ? `'$r' is reserved for replies: name the event otherwise`
          : typeof event === 'string' && event
            ? `invalid event name of ${event.length} characters: an event name is at most ${MAX_EVENT} characters`
            : `invalid event ${String(event)}: an event name is a non-empty string`
        : 'invalid event',
    )
  }
  return event
}

/** A listener registered with `once`: removed before its one call. */
type Entry = Listener | { once: Listener }
const fnOf = (e: Entry): Listener => (typeof e === 'function' ? e : e.once)

/** The frame size of the message being dispatched now (read by a listener, as `messages()` does). */
let dispatchBytes = 0

/** The frame size of the message being dispatched now (read by a listener, as `messages()` does). @internal */
export const currentBytes = (): number => dispatchBytes

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

/** The configuration of the client made before, when equal: most clients keep the defaults and share one. */
const last = /* @__PURE__ */ new WeakMap<object, object>()
function shared<T extends object>(kind: object, c: T): T {
  const l = last.get(kind) as T | undefined
  if (l && (Object.keys(c) as (keyof T)[]).every((k) => l[k] === c[k]) && Object.keys(l).length === Object.keys(c).length) return l
  last.set(kind, c)
  return c
}
const CONN = {}
const KERNEL = {}
/**
 * Message ids: a random prefix and a counter, both of the process, so that every client of the process draws
 * unique ids from them (a prefix and a counter per client took 40 bytes of each).
 */
let idPrefix: string | undefined
let idSeq = 0

/** The connection of a client: its addresses (pocketsocket's `connection`) and a chainable `on`. */
export class SockConnection<E extends EventMap = AnyEvents> extends AddressBook {
  constructor(private readonly client: SockClient<E>) {
    super(client.k.features.setup)
  }

  /** Same as `client.on(...)`, so `setup(...).on('socket', fn)` chains. */
  on(channel: typeof SOCKET, event: LifecycleEvent, fn: (info: LifecycleInfo, message: LifecycleInfo) => void): Unsubscribe
  on(channel: typeof SOCKET, fn: (event: LifecycleEvent, info: LifecycleInfo) => void): Unsubscribe
  on<C extends keyof E & string, K extends keyof E[C] & string>(channel: C, event: K, fn: EventListener<E, C, K>): Unsubscribe
  on<C extends keyof E & string>(channel: C, fn: ChannelListener<E, C>): Unsubscribe
  on(channel: string, a: any, b?: any): Unsubscribe {
    return (this.client.on as (c: string, a: unknown, b?: unknown) => Unsubscribe)(channel, a, b)
  }

  /** Forgets every address and leaves every channel. */
  empty(): this {
    this.client.close()
    this.clear()
    return this
  }
}

export class SockClient<E extends EventMap = AnyEvents> implements ChannelHost {
  readonly connection: SockConnection<E>
  /** The configuration (shared by clients made with equal options). @internal */
  readonly k: Kernel
  /**
   * Listeners by key (`listenerKey(channel, event)`), in registration order. Each list is replaced, never changed in
   * place, so a dispatch under way calls exactly the listeners registered when it began. A plain object, not a Map:
   * it takes 56 bytes where a Map takes 184, and clients with the same keys share its shape, key strings included
   * (a property's name is interned). A key always holds a `\0`, so no key is a name of `Object.prototype`.
   */
  private readonly listeners: { [key: string]: Entry[] | undefined } = {}
  /** Every channel the client wants joined: its Channel once opened, `undefined` while there is no `setup()`. */
  private readonly channels = new Map<string, Channel | undefined>()
  // Set here though it starts undefined, so it lives inside the object (see Connection).
  private wake: (() => void) | undefined = undefined

  constructor(options: CoreOptions = {}) {
    if (options === null || typeof options !== 'object') throw new ValidationError('options', DEV ? 'SockClient options must be an object' : 'invalid options')
    const o = options
    if (o.id !== undefined) checkId(o.id, 'options.id')
    if (typeof o.token !== 'function') checkToken(o.token, 'options.token')
    const WS = o.WebSocket ?? defaultWebSocket()
    if (typeof WS !== 'function') throw new ValidationError('options.WebSocket', DEV ? 'no WebSocket in this runtime: pass options.WebSocket (in Node 20, the ws package)' : 'no WebSocket')
    const maxFrameBytes = positive(o.maxFrameBytes, 'options.maxFrameBytes', DEFAULT_MAX_FRAME_BYTES)
    // A chunk carries its header (up to 31 characters), the frame's JSON (20) and the message id (up to 19): 128 leaves room.
    if (maxFrameBytes < 128)
      throw new ValidationError(
        'options.maxFrameBytes',
        DEV ? `options.maxFrameBytes ${maxFrameBytes} is too small: sock-client's envelopes and chunks need frames of at least 128 bytes` : 'maxFrameBytes < 128',
      )
    const maxMessageBytes = positive(o.maxMessageBytes, 'options.maxMessageBytes', 16 << 20) || 16 << 20
    // Clients that keep the defaults share one object of each (a client's memory is mostly its socket's).
    const r = o.reconnect ? { ...DEFAULT_RECONNECT, ...o.reconnect } : DEFAULT_RECONNECT
    for (const k of ['minDelay', 'maxDelay', 'factor', 'minUptime'] as const) positive(r[k], `options.reconnect.${k}`, 0)
    positive(r.maxRetries, 'options.reconnect.maxRetries', 0, true)
    const q = o.queue ? { ...DEFAULT_QUEUE, ...o.queue } : DEFAULT_QUEUE
    positive(q.maxCount, 'options.queue.maxCount', 0, true)
    positive(q.maxBytes, 'options.queue.maxBytes', 0, true)
    if (q.overflow !== 'reject' && q.overflow !== 'drop-oldest')
      throw new ValidationError('options.queue.overflow', DEV ? `invalid options.queue.overflow ${String(q.overflow)}: use 'reject' or 'drop-oldest'` : 'invalid overflow')
    const serverPingWindow = positive(o.serverPingWindow, 'options.serverPingWindow', 60_000) || 60_000
    const conn = shared<ConnectionOptions>(CONN, {
      WebSocket: WS,
      wsOptions: wsOptions(WS, maxMessageBytes),
      pingInterval: positive(o.pingInterval, 'options.pingInterval', 15_000) || 15_000,
      probeTimeout: positive(o.probeTimeout, 'options.probeTimeout', 10_000) || 10_000,
      connectTimeout: positive(o.connectTimeout, 'options.connectTimeout', 10_000) || 10_000,
      highWaterMark: positive(o.highWaterMark, 'options.highWaterMark', 1 << 20) || 1 << 20,
      serverPingWindow,
      duplicateIdTimeout: positive(o.duplicateIdTimeout, 'options.duplicateIdTimeout', 2 * serverPingWindow, true),
      reconnect: r,
      queue: q,
      log: undefined, // the debug feature's, when it is on
    })
    if (o.features !== undefined && (!Array.isArray(o.features) || o.features.some((x) => typeof (x as Feature | null)?.name !== 'string')))
      throw new ValidationError('options.features', DEV ? `options.features must be an array of features, as in [chunks, files] from 'sock-client/chunks' and 'sock-client/files'` : 'invalid features')
    const features = compose(o.features)
    const k: Kernel = { conn, id: o.id, token: o.token, maxFrameBytes, maxMessageBytes, codec: json, features }
    for (const init of features.init) init(o, k)
    if ((o as { debug?: unknown }).debug && !k.conn.log)
      throw new ValidationError(
        'options.debug',
        DEV ? `options.debug needs the debug feature: new SockClient({ features: [debug], debug }) with debug from 'sock-client/debug' (sock-client has it)` : 'no debug feature',
      )
    this.k = shared(KERNEL, k)
    this.connection = new SockConnection(this)
  }

  /**
   * Sets the addresses: `'host:port'`, `(host, port)` or a `ws://` / `wss://` URL; with the addresses feature (in
   * `sock-client`) also `(hosts[], ports[], 'mix' | 'flat', mode)`, a list of addresses or URLs, or `{ name: [host,
   * port] | { ip, port } | url }`, in mode `'broadcast'` (every address at once, the default) or `'failover'` (one at
   * a time). Channels already joined move to the new addresses. Returns `client.connection`, so
   * `setup(...).on('socket', fn)` chains.
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
    if (!this.connection.isSetup()) throw new ValidationError('setup', DEV ? 'no address: call client.setup(address) first' : 'no setup()')
  }

  /** The channel `name`, opened on the addresses of the mode (a feature may make it, for several connections). */
  protected open(name: string): Channel {
    let ch = this.channels.get(name)
    if (ch) return ch
    this.checkSetup()
    const addresses = this.connection.addresses
    const mode = this.connection.mode
    // One address: its list is shared (by every client set up with it), not copied per channel.
    ch = this.k.features.channel?.(name, addresses, mode, this) ?? new Channel(name, mode === 'failover' || addresses.length === 1 ? addresses : addresses.slice(0, 1), this)
    this.channels.set(name, ch)
    this.watch()
    return ch
  }

  /** The channel `name` if it is open, for features. @internal */
  channelOf(name: string): Channel | undefined {
    return this.channels.get(name)
  }

  // ---------- what channels report (ChannelHost) ----------

  /** @internal */
  report(ch: Channel, conn: Connection, kind: 'state' | 'error' | 'reconnect' | 'progress', detail: object): void {
    this.k.conn.log?.(conn, kind, detail)
    const info: LifecycleInfo = { channel: ch.name, address: String(conn.address), state: conn.state }
    if (kind === 'error') {
      info.error = detail as SockError
      return this.lifecycle('error', info)
    }
    Object.assign(info, detail)
    if (kind !== 'state') return this.lifecycle(kind, info)
    const s = conn.state
    if (info.error) this.lifecycle('error', info)
    this.lifecycle(s === 'open' ? 'open' : s === 'connecting' ? 'connecting' : s === 'giveup' ? 'giveup' : 'close', info)
  }

  /** @internal */
  nextId(): string {
    return (idPrefix ??= Math.random().toString(36).slice(2, 10)) + (++idSeq).toString(36)
  }

  private lifecycle(event: LifecycleEvent, info: LifecycleInfo): void {
    this.dispatch(listenerKey(SOCKET, event), listenerKey(SOCKET, ''), event, info, info, 0)
  }

  /**
   * Calls the listeners of `event` (under `key`), then the catch-all ones (under `any`). Application code runs
   * isolated: what a listener throws goes to `threw()`, so a bug in a listener never stalls a socket, a parser or a
   * promise of ours, and the listeners after it still run. @internal
   */
  dispatch(key: string, any: string, event: string, data: unknown, message: unknown, bytes: number): void {
    const n = dispatchBytes
    dispatchBytes = bytes
    this.call(key, event, data, message)
    this.call(any, event, event, message)
    dispatchBytes = n
  }

  private call(key: string, event: string, a: unknown, b: unknown): void {
    const list = this.listeners[key]
    if (!list) return
    for (const e of list) {
      if (typeof e !== 'function') this.remove(key, e.once)
      try {
        fnOf(e)(a, b)
      } catch (err) {
        this.threw(err, event, b as { channel?: string; address?: string })
      }
    }
  }

  /** Removes `fn` from the listeners under `key` (a new list, so a dispatch under way is not disturbed). */
  private remove(key: string, fn: Listener): void {
    const list = this.listeners[key]
    if (!list) return
    const rest = list.filter((e) => fnOf(e) !== fn)
    if (rest.length)
      this.listeners[key] = rest.slice() // exactly its size: filter() leaves room for 17
    else delete this.listeners[key]
  }

  /**
   * A listener (or an option callback) threw: an `error` event with code `ERR_LISTENER` when the application listens
   * to errors, else an uncaught error as the platform reports it. An error listener's own throw is never re-emitted.
   * @internal
   */
  threw(e: unknown, event: string, about: { channel?: string; address?: string } | undefined): void {
    const listening = this.listeners[listenerKey(SOCKET, 'error')] || this.listeners[listenerKey(SOCKET, '')]
    if (event === 'error' || !listening) return surface(e)
    const channel = about?.channel ?? ''
    const error = new SockError('ERR_LISTENER', DEV ? `a listener of '${event}' on '${channel}' threw (${(e as Error)?.message ?? String(e)}): caught, and the channel goes on` : 'listener threw', {
      cause: e,
    })
    const conn = this.channels.get(channel)?.connections[0]
    this.lifecycle('error', { channel, address: about?.address ?? String(conn?.address ?? ''), state: conn?.state ?? 'closed', error })
  }

  /** Calls an option callback of the application (`onProgress`), isolated as listeners are. @internal */
  callback(fn: ((...a: any[]) => void) | undefined, what: string, channel: string, ...args: unknown[]): void {
    if (!fn) return
    try {
      fn(...args)
    } catch (e) {
      this.threw(e, what, { channel })
    }
  }

  // ---------- the API ----------

  /**
   * Joins `channel` on the addresses of the mode; resolves once its connection is open (proven end to end).
   * Bad arguments (or no `setup()` yet) throw at once; connection failures reject. With `timeout` (ms) or `signal`,
   * it rejects with `ERR_TIMEOUT` or `ERR_ABORTED` once either comes first; the connection attempts go on until
   * `leave(channel)`.
   */
  join(channel: keyof E & string, options?: JoinOptions): Promise<void> {
    this.checkWire(channel)
    if (options !== undefined) {
      positive(options?.timeout, 'options.timeout', 0, true)
      const s = options?.signal
      if (s !== undefined && (typeof s?.addEventListener !== 'function' || typeof s.aborted !== 'boolean'))
        throw new ValidationError('options.signal', DEV ? 'options.signal must be an AbortSignal' : 'invalid signal')
    }
    return this.open(channel).ready(options && { timeout: options.timeout ?? Infinity, signal: options.signal })
  }

  /** @internal */
  checkWire(channel: string): void {
    checkChannel(channel)
    if (channel === SOCKET) throw new ValidationError('channel', DEV ? `'socket' is the local lifecycle channel: it is never joined or sent on` : 'socket is local')
  }

  /** Leaves `channel`: closes its connections; queued sends reject. Listeners stay registered. */
  leave(channel: keyof E & string): void {
    checkChannel(channel)
    this.channels.get(channel)?.close()
    this.channels.delete(channel)
  }

  /** Listens to lifecycle events on the local `socket` channel. */
  on(channel: typeof SOCKET, event: LifecycleEvent, fn: (info: LifecycleInfo, message: LifecycleInfo) => void): Unsubscribe
  on(channel: typeof SOCKET, fn: (event: LifecycleEvent, info: LifecycleInfo) => void): Unsubscribe
  /** Listens to `event` on `channel` (joining it): `fn(data, message)`. */
  on<C extends keyof E & string, K extends keyof E[C] & string>(channel: C, event: K, fn: EventListener<E, C, K>): Unsubscribe
  /** Listens to every event on `channel` (joining it): `fn(event, message)`. */
  on<C extends keyof E & string>(channel: C, fn: ChannelListener<E, C>): Unsubscribe
  on(channel: string, a: string | Listener, b?: Listener): Unsubscribe {
    return this.listen(channel, a, b, false)
  }

  /** Like `on`, for one call. */
  once(channel: typeof SOCKET, event: LifecycleEvent, fn: (info: LifecycleInfo, message: LifecycleInfo) => void): Unsubscribe
  once(channel: typeof SOCKET, fn: (event: LifecycleEvent, info: LifecycleInfo) => void): Unsubscribe
  once<C extends keyof E & string, K extends keyof E[C] & string>(channel: C, event: K, fn: EventListener<E, C, K>): Unsubscribe
  once<C extends keyof E & string>(channel: C, fn: ChannelListener<E, C>): Unsubscribe
  once(channel: string, a: string | Listener, b?: Listener): Unsubscribe {
    return this.listen(channel, a, b, true)
  }

  /** Removes a listener added with `on` / `once` (the same arguments). Stays joined. */
  off(channel: string, event: string, fn: Listener): void
  off(channel: string, fn: Listener): void
  off(channel: string, a: string | Listener, b?: Listener): void {
    const [key, fn] = this.key(channel, a, b)
    this.remove(key, fn)
  }

  private key(channel: string, a: string | Listener, b?: Listener): [string, Listener] {
    if (channel !== SOCKET) checkChannel(channel)
    if (typeof a === 'function') return [listenerKey(channel, ''), a]
    if (typeof a !== 'string' || a === '') throw new ValidationError('event', DEV ? `invalid event ${String(a)}: an event name is a non-empty string` : 'invalid event')
    if (a === REPLY) checkEvent(a) // replies are never a listener's
    if (typeof b !== 'function') throw new ValidationError('listener', DEV ? `missing listener for event '${a}': pass a function` : 'missing listener')
    return [listenerKey(channel, a), b]
  }

  private listen(channel: string, a: string | Listener, b: Listener | undefined, once: boolean): Unsubscribe {
    const [key, fn] = this.key(channel, a, b)
    // Registering the same function twice is harmless: it is called once per message.
    const list = this.listeners[key] ?? []
    // concat, not a spread: an array built by spreading has room for 17 entries (152 bytes), this one for its own.
    if (!list.some((e) => fnOf(e) === fn)) this.listeners[key] = list.concat([once ? { once: fn } : fn])
    if (channel !== SOCKET) this.want(channel)
    return () => this.remove(key, fn)
  }

  /** Joins `channel` now if `setup()` gave addresses, else once it does (a listener's or a handler's channel). @internal */
  want(channel: string): void {
    if (this.channels.has(channel)) return
    if (this.connection.isSetup()) this.open(channel)
    else this.channels.set(channel, undefined)
  }

  /**
   * Sends `data` as `event` on `channel` (joining it). `message` with a string is a plain Sock text frame
   * (type 1); every other event travels in sock-client's envelope. Resolves once written to a socket; queued
   * while the channel is not open or its socket is full; rejects with the reason otherwise. `{ to: id }`: for that
   * instance only; other sock-client receivers drop it, but plain Sock peers (and sock-client 0.1) still see it.
   */
  signal<C extends keyof E & string, K extends keyof E[C] & string>(channel: C, event: K, data: Payload<E, C, K>, options?: SignalOptions): Promise<SendReport> {
    const ch = this.channels.get(channel) ?? this.joined(channel) // a joined channel's name was checked when it opened
    checkEvent(event)
    const to = options?.to
    if (to !== undefined) checkId(to, 'options.to')
    return ch.signal(event, data, to)
  }

  /** The channel to send on, joined now if it is not yet: checks the name and `setup()`. @internal */
  joined(channel: string): Channel {
    this.checkWire(channel)
    return this.open(channel)
  }

  /** Sends a raw Sock frame `{type, data}` on `channel` (joining it). */
  send(channel: keyof E & string, type: number, data: string): Promise<SendReport> {
    this.checkWire(channel)
    checkFrame(type, data)
    const ch = this.open(channel)
    let text: string
    try {
      text = encodeFrame(type, data, this.k.maxFrameBytes)
    } catch (e) {
      return Promise.reject(e) // too large: an outcome, not a throw
    }
    return ch.send(text)
  }

  /** The instance id the server gave this client on `channel` (after `open`), or `undefined`. */
  idOf(channel: keyof E & string): string | undefined {
    return this.channels.get(channel)?.id
  }

  /**
   * The connections of `channel`: one per address in broadcast mode, one in failover mode, each with the address
   * in use, its state, the id the server gave it and how many frames wait in its queue. `[]` if not joined.
   */
  connectionsOf(channel: keyof E & string): ConnectionInfo[] {
    return this.channels.get(channel)?.describe() ?? []
  }

  /** The state of `channel`: `open` if any of its connections is, else that of its first connection. */
  stateOf(channel: keyof E & string): ConnectionState | undefined {
    const ch = this.channels.get(channel)
    if (!ch) return undefined
    return ch.isOpen ? 'open' : ch.connections[0]!.state
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
