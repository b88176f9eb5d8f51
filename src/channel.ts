/**
 * One channel and its message layer: the connection(s) that carry it, outbound framing (type 1 text, type 7
 * envelopes, and what features add), inbound decoding, dedupe and dispatch to the client's listeners. The core
 * channel has one connection, which rotates through the addresses in failover mode; the addresses feature makes a
 * channel with one connection per address (broadcast). Knows nothing of the WebSocket API.
 */
import type { Address } from './address'
import { Connection, SENT, type ConnectionOptions, type ConnectionOwner, type ConnectionState, type Offer, type StateDetail } from './connection'
import { DEV } from './dev'
import { decodeEnvelope, encodeEnvelope, PRESENCE, REPLY, TYPE_CHUNK, TYPE_CONTROL, TYPE_EVENT, type Codec } from './envelope'
import { ConnectionError, FrameTooLargeError, ProtocolError, ValidationError, type SockError } from './errors'
import { HANDLED, type Features } from './feature'
import { channelUrl, fitFrame, TYPE_FILE, TYPE_TEXT, type Frame } from './protocol'

/**
 * Where a frame went: written now, waiting in a connection's queue, or refused (with the reason). Read it, do not
 * change it: the report of a frame written at once is frozen and shared by every send written at once to the same
 * address (one object, not one per message).
 */
export interface SendReport {
  sent: string[]
  queued: string[]
  failed: { address: string; error: SockError }[]
}

/**
 * Follows the copies of one send (the replies feature's requests): told what each connection did with each frame,
 * so that a request knows which connections carried it and can take back what still waits in a queue.
 */
export interface Tracker {
  offered(conn: Connection, offer: Offer): void
  /** True once the send is abandoned: no further chunk of it is sent. */
  readonly done?: boolean
}

export interface ConnectionInfo {
  address: string
  state: ConnectionState
  id: string | undefined
  queued: number
}

/**
 * Gives the token for one connection attempt (`options.token` as a function): called before every attempt, with the
 * channel and the address it goes to. It may return a promise; `connectTimeout` bounds it. Throw an
 * `UnauthorizedError` to stop retrying.
 */
export type TokenFunction = (attempt: { channel: string; address: string }) => string | PromiseLike<string>

/** How long `join()` waits: `timeout` in ms, and a `signal` that stops the wait. */
export interface JoinOptions {
  /** Milliseconds until the join rejects with `ERR_TIMEOUT` (default: no limit). */
  timeout?: number
  /** Rejects the join with `ERR_ABORTED` (the signal's reason as `cause`) when it aborts. */
  signal?: AbortSignal
}

/** A client's configuration, shared by clients made with equal options; features keep theirs here too. */
export interface Kernel {
  conn: ConnectionOptions
  id?: string
  token?: string | TokenFunction
  maxFrameBytes: number
  maxMessageBytes: number
  codec: Codec
  features: Features
  [feature: string]: unknown
}

/** What a channel needs of its client. */
export interface ChannelHost {
  readonly k: Kernel
  /** Calls the listeners of `event` (its key) and the catch-all ones, each isolated. */
  dispatch(key: string, any: string, event: string, data: unknown, message: unknown, bytes: number): void
  /** A connection of `channel` changed state, reconnects, failed, or a large message made progress (lifecycle events). */
  report(ch: Channel, conn: Connection, event: 'state' | 'error' | 'reconnect' | 'progress', detail: object): void
  /** A message id, unique for this client. */
  nextId(): string
  /** Calls an application callback (`onProgress`), isolated as listeners are. */
  callback(fn: ((...a: any[]) => void) | undefined, what: string, channel: string, ...args: unknown[]): void
}

/** The client's emitter key for `event` on `channel`; `''` is the catch-all listener's. */
export const listenerKey = (channel: string, event: string): string => `${channel}\0${event}`

/** A frame of `type` around `data`, or `undefined` when it exceeds `max` (the caller splits or refuses it). */
export function tryFrame(type: number, data: string, max: number): string | undefined {
  const text = fitFrame(type, data, max)
  return typeof text === 'string' ? text : undefined
}

const RESOLVED = /* @__PURE__ */ Promise.resolve()
const NONE: never[] = /* @__PURE__ */ Object.freeze([]) as never[]

export class Channel implements ConnectionOwner {
  readonly connections: Connection[]
  /** The address in use, of `addresses`: failover rotates after each loss. */
  private index = 0
  private waiters: { resolve(): void; reject(e: SockError): void }[] | undefined
  // Created on first use: most channels see a handful of event names.
  private keys: Map<string, string> | undefined
  private any: string | undefined
  /** The settled outcome of a frame written at once to an address, shared by all such sends (see `SendReport`). */
  private written: [to: string, report: Promise<SendReport>] | undefined

  constructor(
    readonly name: string,
    readonly addresses: readonly Address[],
    readonly host: ChannelHost,
    connections = 1,
  ) {
    this.connections = Array.from({ length: connections }, (_, i) => {
      const c = new Connection(name, host.k.conn, this)
      c.address = addresses[i] ?? addresses[0]! // until its first attempt asks `next()`
      return c
    })
  }

  // ---------- what the connections ask and report (ConnectionOwner) ----------

  /** After a loss, the next address in turn (failover: wrapping around; one address stays put). */
  next(_conn: Connection): Address {
    return this.addresses[(this.index = (this.index + 1) % this.addresses.length)]!
  }

  url(conn: Connection): string | PromiseLike<string> {
    const { id, token } = this.host.k
    if (typeof token !== 'function') return channelUrl(conn.address.url, this.name, id, token)
    // A token per attempt: what the function gives is checked as an option would be (a throw fails the attempt).
    const t = token({ channel: this.name, address: String(conn.address) })
    const url = (t: unknown) => {
      if (typeof t !== 'string' || !t) throw new ValidationError('options.token', DEV ? `it gave ${t === '' ? 'an empty string' : typeof t}, not a non-empty string` : 'not a token')
      return channelUrl(conn.address.url, this.name, id, t)
    }
    // Promise.resolve: a thenable whose then() throws is a rejection, not a throw from here
    return typeof (t as PromiseLike<string>)?.then === 'function' ? Promise.resolve(t).then(url) : url(t)
  }

  onState(conn: Connection, state: ConnectionState, detail: StateDetail): void {
    // Waiters settle first: a listener that throws (isolated as it is) must not be what a join() waits on.
    if (state === 'open') this.settle()
    else if ((state === 'closed' || state === 'giveup') && this.connections.every((c) => c.state === 'closed' || c.state === 'giveup')) {
      this.settle(detail.error ?? new ConnectionError('ERR_CLOSED', DEV ? `channel '${this.name}' was closed before it opened` : 'closed'))
    }
    this.host.k.features.watch?.(this, conn, state, detail)
    this.host.report(this, conn, 'state', detail)
  }

  onFrame(conn: Connection, frame: Frame): void {
    this.receive(conn, frame)
  }

  onError(conn: Connection, error: SockError): void {
    this.host.report(this, conn, 'error', error)
  }

  onReconnect(conn: Connection, detail: { attempt: number; delay: number; reason: string }): void {
    this.host.report(this, conn, 'reconnect', detail)
  }

  onDue(conn: Connection): void {
    this.host.k.features.due?.(this, conn)
  }

  // ---------- sending ----------

  /**
   * Sends `data` as `event`: a plain type-1 frame for a `message` string that fits, else an envelope; `to`: an
   * envelope for that instance only (`t`), which other sock-client receivers drop.
   */
  signal(event: string, data: unknown, to?: string): Promise<SendReport> {
    const k = this.host.k
    if (event === 'message' && typeof data === 'string' && to === undefined) {
      const plain = tryFrame(TYPE_TEXT, data, k.maxFrameBytes)
      if (plain !== undefined) return this.send(plain)
    }
    const id = this.host.nextId()
    let text: string
    try {
      text = encodeEnvelope(id, event, data, k.codec, to === undefined ? '' : `,"t":"${to}"`)
    } catch (e) {
      return Promise.reject(new ValidationError('data', DEV ? `cannot encode the payload of '${event}' with the ${k.codec.name} codec: ${(e as Error)?.message ?? e}` : 'cannot encode'))
    }
    return this.envelope(id, text)
  }

  /** Sends an envelope in one frame, or through the chunks feature (as message `id`) when it exceeds `maxFrameBytes`. */
  envelope(id: string, text: string, onProgress?: (done: number, total: number) => void, track?: Tracker): Promise<SendReport> {
    const k = this.host.k
    const single = tryFrame(TYPE_EVENT, text, k.maxFrameBytes)
    if (single !== undefined) {
      const sent = this.send(single, track)
      return onProgress ? sent.then((r) => (this.host.callback(onProgress, 'onProgress', this.name, text.length, text.length), r)) : sent // no extra promise per event
    }
    if (text.length > k.maxMessageBytes) {
      return Promise.reject(
        new FrameTooLargeError(
          text.length,
          k.maxMessageBytes,
          DEV ? `message of ${text.length} bytes exceeds maxMessageBytes (${k.maxMessageBytes}); raise maxMessageBytes on both sides or send less` : undefined,
        ),
      )
    }
    const split = k.features.split
    if (!split)
      return Promise.reject(
        new FrameTooLargeError(
          text.length,
          k.maxFrameBytes,
          DEV
            ? `message of ${text.length} bytes exceeds maxFrameBytes (${k.maxFrameBytes}): add the chunks feature from 'sock-client/chunks' to split it, or raise maxFrameBytes to the server's -limit`
            : undefined,
        ),
      )
    return split(this, id, text, onProgress, track)
  }

  /**
   * Sends an encoded frame on the channel's connection. Resolves once it is written, with the outcome; waits while
   * it is queued; rejects when it cannot be sent (the reason). `track` is told what the connection did with it.
   */
  send(text: string, track?: Tracker): Promise<SendReport> {
    const c = this.connections[0]!
    const r = c.offer(text)
    if (track) track.offered(c, r)
    const address = String(c.address)
    if (r === SENT) {
      // The common case: no promise, report or array made per message (a burst of sends is mostly garbage else).
      const w = this.written
      return w?.[0] === address ? w[1] : (this.written = [address, Promise.resolve(Object.freeze({ sent: Object.freeze([address]) as string[], queued: NONE, failed: NONE }))])[1]
    }
    if (r.status === 'failed') return Promise.reject(r.error)
    return (r as { written: Promise<string> }).written.then((to) => ({ sent: [to], queued: [], failed: [] }))
  }

  // ---------- receiving ----------

  /** A frame from one of our own instances (several servers sharing a channel relay it back to us). */
  isOwn(_from: string): boolean {
    return false
  }

  /** Whether `id` is ours: the id we join with, or one a server gave a connection of this channel. */
  isMe(id: unknown): boolean {
    return id === this.host.k.id || this.connections.some((c) => c.id === id)
  }

  /** True the first time message `id` is seen: one connection never sees a message twice. */
  firstTime(_id: string): boolean {
    return true
  }

  /** Decodes an inbound frame and dispatches it: type 1 and 7 here, the types features read, else `type:<n>`. */
  receive(conn: Connection, f: Frame): void {
    if (this.isOwn(f.from)) return
    if (f.type === TYPE_TEXT) return this.deliver(conn, f.from, f.type, 'message', f.data, f.data.length)
    if (f.type === TYPE_EVENT) return this.event(conn, f.from, f.type, f.data)
    const read = this.host.k.features.read[f.type]
    if (read) return read(this, conn, f)
    if (f.type === TYPE_CHUNK || f.type === TYPE_FILE) {
      return this.fail(
        conn,
        new ProtocolError(
          'ERR_PROTOCOL',
          DEV
            ? `received a ${f.type === TYPE_FILE ? "file (type 2): add the files feature from 'sock-client/files'" : "chunk of a large message (type 8): add the chunks feature from 'sock-client/chunks'"} to read it`
            : `type ${f.type} needs a feature`,
        ),
      )
    }
    if (f.type === TYPE_CONTROL) return // replies and stream pieces between other instances: for the replies feature only
    this.deliver(conn, f.from, f.type, `type:${f.type}`, f.data, f.data.length)
  }

  /** An envelope (a type-7 frame, or one reassembled from chunks): decoded, delivered once, read by its feature. */
  event(conn: Connection, from: string, type: number, text: string): void {
    const features = this.host.k.features
    const env = decodeEnvelope(text, features.codecs)
    if (env instanceof ProtocolError) return this.fail(conn, env)
    // Replies (their `t` only says whom the responder saw ask) and requests go to the replies feature, never to
    // listeners, and are deduped there (a retry repeats an id); an envelope addressed to another instance is dropped.
    if (env.event === REPLY) return features.requests?.(this, conn, from, type, env, text.length)
    if (env.t !== undefined && !this.isMe(env.t)) return
    if (env.q !== undefined) return features.requests?.(this, conn, from, type, env, text.length)
    if (!this.firstTime(env.id)) return
    let data = env.data
    const read = features.events.get(env.event)
    if (read) {
      data = read(data, from, this, conn)
      if (data === HANDLED) return
      if (data instanceof ProtocolError) return this.fail(conn, data)
    } else if (env.event === 'file') {
      return this.fail(conn, new ProtocolError('ERR_PROTOCOL', DEV ? `received a file envelope from '${from}': add the files feature from 'sock-client/files' to read it` : 'file needs a feature'))
    } else if (env.event === PRESENCE) return // another sock-client's announcement: the presence feature's, else nobody's
    this.deliver(conn, from, type, env.event, data, text.length)
  }

  /** Hands a message to the listeners of `event` and the catch-all ones. */
  deliver(conn: Connection, from: string, type: number, event: string, data: unknown, bytes: number): void {
    this.host.dispatch(this.key(event), (this.any ??= listenerKey(this.name, '')), event, data, { channel: this.name, event, type, data, from, address: String(conn.address) }, bytes)
  }

  /** Reports a problem with what arrived: an `error` event, nothing delivered. */
  fail(conn: Connection, error: SockError): void {
    this.host.report(this, conn, 'error', error)
  }

  /** The listener key of `event` on this channel, kept for the first 64 event names (one string per name, not per message). */
  key(event: string): string {
    const keys = (this.keys ??= new Map())
    let k = keys.get(event)
    if (k === undefined) {
      k = listenerKey(this.name, event)
      if (keys.size < 64) keys.set(event, k)
    }
    return k
  }

  // ---------- state ----------

  get isOpen(): boolean {
    return this.connections.some((c) => c.isOpen)
  }

  /**
   * Resolves once any connection of the channel is open; rejects if every one is closed for good, or (`bound`) when
   * its timeout passes or its signal aborts. The connections go on either way: only leaving the channel stops them.
   */
  ready(bound?: JoinOptions): Promise<void> {
    if (this.isOpen && !bound?.signal?.aborted) return RESOLVED
    const ended = this.connections.find((c) => c.state === 'closed' || c.state === 'giveup')
    if (ended && this.connections.every((c) => c.state === 'closed' || c.state === 'giveup')) {
      return Promise.reject(
        new ConnectionError(
          ended.state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED',
          DEV ? `channel '${this.name}' is ${ended.state === 'giveup' ? 'given up (call reconnect())' : 'closed'}` : ended.state,
        ),
      )
    }
    return new Promise((resolve, reject) => {
      const w = { resolve, reject }
      ;(this.waiters ??= []).push(w)
      if (bound) this.bound(w, bound)
    })
  }

  /** Ends waiter `w` early on `timeout` or on `signal`; settled first, it clears both. No waiter is left behind. */
  private bound(w: { resolve(): void; reject(e: SockError): void }, { timeout, signal }: JoinOptions): void {
    const { resolve, reject } = w
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', abort)
    }
    const give = (e: SockError) => {
      const list = this.waiters
      if (list?.includes(w)) list.splice(list.indexOf(w), 1)
      w.reject(e)
    }
    const abort = () =>
      give(
        new ConnectionError('ERR_ABORTED', DEV ? `join('${this.name}') was aborted; its connection attempts go on: leave('${this.name}') stops them` : 'aborted', undefined, { cause: signal!.reason }),
      )
    w.resolve = () => (done(), resolve())
    w.reject = (e) => (done(), reject(e))
    // Past 2^31 - 1 ms a timer fires at once: a wait that long is no limit.
    const timer =
      timeout! < 2 ** 31
        ? setTimeout(
            () =>
              give(
                new ConnectionError(
                  'ERR_TIMEOUT',
                  DEV
                    ? `join('${this.name}') did not open within ${timeout} ms (${this.connections[0]!.state} on ${this.connections[0]!.address}); its connection attempts go on: leave('${this.name}') stops them`
                    : 'join timeout',
                ),
              ),
            timeout,
          )
        : undefined
    if (signal?.aborted) abort()
    else signal?.addEventListener('abort', abort)
  }

  private settle(error?: SockError): void {
    const w = this.waiters
    this.waiters = undefined
    if (w) for (const x of w) error ? x.reject(error) : x.resolve()
  }

  /** Each connection: its address in use, state, the id the server gave it and frames waiting in its queue. */
  describe(): ConnectionInfo[] {
    return this.connections.map((c) => ({ address: String(c.address), state: c.state, id: c.id, queued: c.queued }))
  }

  /** The instance id the server gave us, on the first connection that has one. */
  get id(): string | undefined {
    for (const c of this.connections) if (c.id) return c.id
    return undefined
  }

  check(): void {
    for (const c of this.connections) c.check()
  }

  reconnect(): void {
    for (const c of this.connections) c.reconnect()
  }

  close(): void {
    this.host.k.features.closing?.(this) // a feature's last word goes out before the sockets close
    for (const c of this.connections) c.close()
    this.settle(new ConnectionError('ERR_CLOSED', DEV ? `channel '${this.name}' was closed before it opened` : 'closed'))
  }
}
