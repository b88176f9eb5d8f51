/**
 * One reconnecting socket to one channel, over one address (broadcast) or rotating through several (failover).
 * Owns the socket, the retry policy, keep-alive, end-to-end liveness, its own id, the bounded send queue and the state.
 * It drives the WebSocket itself (see README, Dependencies): a place on one shared timer, no closure per connection.
 */
import type { Address } from './address'
import { backoffDelay, type ReconnectOptions } from './backoff'
import { batch } from './cork'
import { sleep, unsleep } from './timers'
import { ConnectionError, ProtocolError, type SockError } from './errors'
import { channelUrl, decodeFrame, encodeFrame, isName, redact, TYPE_PING, TYPE_WHOAMI, type Frame } from './protocol'
import type { Instance, RestOptions } from './rest'

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'giveup'

/** A WebSocket constructor: the browser's, `ws`, or anything with the same shape. */
export type WebSocketLike = new (url: string, protocols?: string | string[]) => WebSocket

export interface QueueOptions {
  /** Most frames waiting while the channel is not open, or while its socket is past the high-water mark. */
  maxCount: number
  /** Most memory the waiting frames may take: their text at 1 or 2 bytes a character, plus about 300 bytes each. */
  maxBytes: number
  /** What a full queue does: reject the new send, or drop (and reject) the oldest waiting one. */
  overflow: 'reject' | 'drop-oldest'
}

export const DEFAULT_QUEUE: QueueOptions = { maxCount: 1000, maxBytes: 1 << 20, overflow: 'reject' }

export interface ConnectionOptions {
  WebSocket: WebSocketLike
  /** Options for a `ws` constructor (Node): the largest inbound frame. Absent for other WebSockets. */
  wsOptions?: { maxPayload: number }
  id?: string
  token?: string
  pingInterval: number
  probeTimeout: number
  connectTimeout: number
  maxFrameBytes: number
  /** Bytes the socket may have buffered before sends wait in the queue. */
  highWaterMark: number
  /** The server's keep-alive window: timers stalled longer than this may have left the instance stale. */
  serverPingWindow: number
  /** How long a 'duplicate id' rejection after losing our own connection is retried before it is final. */
  duplicateIdTimeout: number
  /** Interval of the registration check (0: none), and the REST call it makes. */
  registrationCheck: number
  verify?: (address: Address, channel: string, id: string, o: RestOptions) => Promise<Instance | null>
  rest: RestOptions
  reconnect: ReconnectOptions
  queue: QueueOptions
  random?: () => number
}

/** What a connection reports to its owner. */
export interface ConnectionSink {
  onState(conn: Connection, state: ConnectionState, detail: { code?: number; reason?: string; error?: SockError }): void
  onFrame(conn: Connection, frame: Frame): void
  onError(conn: Connection, error: SockError): void
  onReconnect(conn: Connection, detail: { attempt: number; delay: number; reason: string }): void
}

interface Pending {
  text: string
  /** What it costs in memory, charged against `queue.maxBytes`. */
  cost: number
  /** Called with the address it was written to (failover may have moved since it was queued). */
  resolve(address: string): void
  reject(e: SockError): void
}

/** The immediate outcome of a send on one connection. */
export type Offer = { status: 'sent' } | { status: 'queued'; written: Promise<string> } | { status: 'failed'; error: SockError }

const RESOLVED = Promise.resolve()
/** The one `offer()` result for a frame written at once. */
export const SENT: Offer = { status: 'sent' }

/** The socket's link back to its connection; cleared when the socket is replaced or dropped. */
const OWNER = Symbol('sock-client')
type Socket = WebSocket & { [OWNER]?: Connection | undefined }
interface NodeSocket {
  on(event: string, fn: (...args: any[]) => void): void
  ping(): void
  terminate(): void
}
const isNode = (ws: object): ws is NodeSocket => typeof (ws as Partial<NodeSocket>).on === 'function'

// Listeners shared by every socket, so a connection costs no closures: `this` is the socket and its OWNER the
// connection. A socket that was replaced or dropped has no owner, and its late events are ignored; its error
// listener stays for its whole life, so a late error never becomes an unhandled 'error' that kills Node.
function nodeOpen(this: Socket): void {
  this[OWNER]?.opened()
}
function nodeMessage(this: Socket, data: Uint8Array, isBinary: boolean): void {
  this[OWNER]?.received(isBinary ? data : String(data))
}
function nodeClose(this: Socket, code: number, reason: Uint8Array): void {
  this[OWNER]?.closed(code, String(reason))
}
function nodeError(this: Socket, e: Error): void {
  const c = this[OWNER]
  if (!c) return
  if ((e as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') c.refused()
  else c.failed(e.message)
}
function nodePong(this: Socket): void {
  const c = this[OWNER]
  if (c) c.pingSentAt = 0
}
const DOM_EVENTS = ['open', 'message', 'close', 'error'] as const
function domEvent(this: Socket, e: Event): void {
  const c = this[OWNER]
  if (!c) return
  if (e.type === 'message') c.received((e as MessageEvent).data)
  else if (e.type === 'open') c.opened()
  else if (e.type === 'close') c.closed((e as CloseEvent).code, (e as CloseEvent).reason)
  else c.failed('network error')
}

/**
 * Milliseconds on the monotonic clock since this module loaded, from 1 (0 means "not set" in the fields below):
 * the wall clock may step either way (NTP, a restored VM) and must move no deadline. Small integers live unboxed
 * in a field, where a double costs a 16-byte box per field per connection; `Math.floor` makes V8 tag them so.
 */
const EPOCH = performance.now()
const clock = (): number => Math.floor(performance.now() - EPOCH) + 1
/** A string of characters above U+00FF takes two bytes a character in memory. */
const TWO_BYTE = /[^\x00-\xff]/
/** What a queued frame costs beyond its text (its record, promise and callbacks, and the channel's report), measured. */
const QUEUED_COST = 320
/** How often a connection past its high-water mark looks whether its socket drained (a browser has no drain event). */
const DRAIN_POLL = 20
const frameCost = (text: string): number => text.length * (TWO_BYTE.test(text) ? 2 : 1) + QUEUED_COST
function terminate(ws: NodeSocket): void {
  ws.terminate()
}

export class Connection {
  state: ConnectionState = 'connecting'
  /** The id the server gave this instance (type-0 reply), once known. */
  id: string | undefined
  /** When the unanswered WebSocket ping (Node) went out; 0 when none is pending. */
  pingSentAt = 0
  private raw: Socket | undefined
  private index = 0
  private retries = 0
  private openedAt = 0
  private lastReason = 'connect'
  private failure: string | undefined
  private queue: Pending[] | undefined
  private queuedBytes = 0
  /** The one wake-up (connect timeout, keep-alive and probe deadlines, or the backoff wait), on the shared timer. */
  due = 0
  slot = -1
  private waiting = false
  private nextPingAt = 0
  private probeSentAt = 0
  /** When an open connection was last lost: a 'duplicate id' soon after may be our own previous connection. */
  private lostAt = 0
  /** Waiting for the socket to drain below the high-water mark. */
  private draining = false
  /** The socket was closed because it refused an inbound frame over `maxMessageBytes` (not the server's limit). */
  private refusedInbound = false
  /** Next registration check (0: none), and the instance's `created_at` seen by the first one. */
  private verifyAt = 0
  private createdAt = 0
  private verifyFailed = false

  constructor(
    readonly channel: string,
    readonly addresses: readonly Address[],
    private readonly o: ConnectionOptions,
    private readonly sink: ConnectionSink,
  ) {
    // The first attempt starts after the caller has registered the connection (and heard nothing yet).
    RESOLVED.then(() => this.state === 'connecting' && !this.raw && this.connect())
  }

  /** The address in use (or being tried). */
  get address(): Address {
    return this.addresses[this.index]!
  }

  get isOpen(): boolean {
    return this.state === 'open'
  }

  /** The channel URL of the current address, with the token redacted. */
  toString(): string {
    return redact(this.url())
  }

  private url(): string {
    return channelUrl(this.address.url, this.channel, this.o.id, this.o.token)
  }

  private connect(): void {
    this.waiting = false
    this.state = 'connecting'
    // The socket is under way before anyone hears of it, so a listener that throws cannot strand the connection.
    let ws: Socket | undefined
    let error: string | undefined
    try {
      const W = this.o.WebSocket as unknown as new (url: string, protocols?: string[], options?: object) => Socket
      ws = this.o.wsOptions ? new W(this.url(), undefined, this.o.wsOptions) : new W(this.url())
    } catch (e) {
      error = (e as Error).message // a URL the runtime refuses: retried like a network error
    }
    if (ws) {
      ws[OWNER] = this
      this.raw = ws
      if (isNode(ws)) {
        ws.on('open', nodeOpen)
        ws.on('message', nodeMessage)
        ws.on('close', nodeClose)
        ws.on('error', nodeError)
        ws.on('pong', nodePong)
      } else {
        ws.binaryType = 'arraybuffer'
        for (const t of DOM_EVENTS) ws.addEventListener(t, domEvent)
      }
      sleep(this, this.o.connectTimeout)
    }
    this.sink.onState(this, 'connecting', {})
    if (error !== undefined && this.state === 'connecting' && !this.raw) {
      this.failed(error)
      this.lost(1006, '')
    }
  }

  /** The socket opened: keep-alive at once, then ask who we are. */
  opened(): void {
    const now = (this.openedAt = clock())
    this.failure = undefined
    // The first ping must land inside the server's first window. The channel counts as open once the server has
    // answered the who-am-I probe: the connection is then proven end to end.
    this.write(encodeFrame(TYPE_PING, ''))
    this.nextPingAt = now + this.o.pingInterval
    this.probe(now)
  }

  /** The timer fired: connect timeout, end of the backoff wait, or a keep-alive or probe deadline. */
  wake(): void {
    if (this.waiting) return this.connect()
    const raw = this.raw
    if (!raw || this.state === 'closed' || this.state === 'giveup') return
    const now = clock()
    if (!this.openedAt) {
      const why = `no answer within connectTimeout (${this.o.connectTimeout} ms)`
      this.failed(why)
      if (this.raw === raw) this.drop(why) // unless a listener already closed or replaced it
      return
    }
    if (this.stalled(now)) return
    // Deadlines come from the clock, not from timer cadence (background tabs throttle timers).
    const late = (t: number) => t && now - t >= this.o.probeTimeout
    if (late(this.probeSentAt) || late(this.pingSentAt)) {
      const what = late(this.probeSentAt) ? 'the who-am-I probe' : 'a WebSocket ping'
      this.sink.onError(this, new ConnectionError('ERR_TIMEOUT', `no reply from ${this.address} to ${what} within ${this.o.probeTimeout} ms: reconnecting`))
      if (this.raw === raw) this.drop('liveness probe timed out')
      return
    }
    if (this.verifyAt && now >= this.verifyAt) this.verify()
    if (now >= this.nextPingAt) {
      this.nextPingAt = now + this.o.pingInterval
      this.write(encodeFrame(TYPE_PING, ''))
      if (isNode(raw) && !this.pingSentAt) {
        this.pingSentAt = now
        raw.ping()
      }
      if (!this.probeSentAt) return this.probe(now)
    }
    this.schedule(now)
  }

  /**
   * Our own timers stalled (a paused process, a machine asleep) past the server's ping window: the server may hold
   * this instance as stale, deaf yet answering who-am-I, so rejoin now instead of waiting for a probe to fail.
   */
  private stalled(now: number): boolean {
    const quiet = now - (this.nextPingAt - this.o.pingInterval) // since our last keep-alive ping
    const limit = Math.max(this.o.serverPingWindow, 2 * this.o.pingInterval)
    if (quiet <= limit) return false
    this.drop(`timers stalled for ${quiet} ms, longer than the server's ping window (${this.o.serverPingWindow} ms): the instance may be stale, rejoining`, true)
    return true
  }

  /** Sets the timer for the next keep-alive, registration check or the earliest reply deadline. */
  private schedule(now: number): void {
    let at = this.nextPingAt
    const t = this.o.probeTimeout
    if (this.probeSentAt) at = Math.min(at, this.probeSentAt + t)
    if (this.pingSentAt) at = Math.min(at, this.pingSentAt + t)
    if (this.verifyAt) at = Math.min(at, this.verifyAt)
    sleep(this, Math.min(at - now, this.o.pingInterval)) // never longer than an interval, whatever the clock did
  }

  private probe(now: number): void {
    this.probeSentAt = now
    this.write(encodeFrame(TYPE_WHOAMI, ''))
    this.schedule(now)
  }

  /** The who-am-I reply arrived: adopt the id; on the first one after a (re)connect, flush the queue and open. */
  private onWhoami(id: string): void {
    this.probeSentAt = 0
    if (isName(id)) this.id = id
    else this.sink.onError(this, new ProtocolError('ERR_PROTOCOL', `the server's who-am-I reply is not a valid id`))
    if (this.state !== 'connecting') return
    this.state = 'open'
    this.lostAt = 0
    if (this.o.verify && this.o.registrationCheck > 0 && this.id) {
      this.createdAt = 0
      this.verifyAt = clock() + this.o.registrationCheck
      this.schedule(clock())
    }
    this.flush()
    this.sink.onState(this, 'open', {})
  }

  /**
   * The registration check: the reference server answers who-am-I even for an instance it no longer lists
   * (deregistered as a duplicate, or stale), which then stays open and deaf. REST says whether the server still
   * lists this instance, and with the `created_at` seen the first time, whether it is still ours.
   */
  private verify(): void {
    this.verifyAt = 0 // none other while this one is under way
    const raw = this.raw
    const id = this.id!
    this.o.verify!(this.address, this.channel, id, this.o.rest).then(
      (instance) => this.verified(raw, id, instance),
      (error: SockError) => this.verified(raw, id, error),
    )
  }

  private verified(raw: Socket | undefined, id: string, r: Instance | null | SockError): void {
    if (raw !== this.raw || this.state !== 'open') return // this connection is gone: its check says nothing
    if (r === null) return this.drop(`not registered: ${this.address} no longer lists instance '${id}' in channel '${this.channel}' though it still answers (deregistered as a duplicate or as stale), rejoining`, true)
    if (r instanceof Error) {
      if (!this.verifyFailed) {
        this.verifyFailed = true // once per connection: a server without REST routes would say so every interval
        this.sink.onError(this, new ConnectionError(r.code, `registration check of '${id}' in channel '${this.channel}' failed: ${r.message} (checks go on; set registrationCheck: 0 for a server without REST routes)`, undefined, { cause: r }))
      }
    } else {
      const created = r.createdAt.getTime()
      if (this.createdAt && created !== this.createdAt) {
        const error = new ConnectionError('ERR_REJECTED', `${this.address} lists instance '${id}' in channel '${this.channel}' as created at ${r.createdAt.toISOString()}, not when we joined: another instance took the id and this connection no longer receives; give every client its own id`)
        return this.shutdown('closed', error, { code: 1008, reason: 'id taken by another instance' })
      }
      this.createdAt = created
    }
    const now = clock()
    this.verifyAt = now + this.o.registrationCheck
    this.schedule(now)
  }

  /** Checks liveness now (page visible again, network back): reconnect at once if waiting, else probe. */
  check(): void {
    if (this.openedAt) {
      const now = clock()
      if (!this.stalled(now) && !this.probeSentAt) this.probe(now)
    } else if (this.waiting) this.connect()
  }

  received(data: unknown): void {
    const d = decodeFrame(data)
    if (d.error) return this.sink.onError(this, d.error)
    const f = d.frame
    if (f.type === TYPE_WHOAMI) return this.onWhoami(f.data)
    this.sink.onFrame(this, f)
  }

  /** The socket reported an error; its close follows (or `drop()` ends it). */
  failed(message: string): void {
    if (this.state === 'closed' || this.state === 'giveup') return
    this.failure = redact(message || 'network error')
    const what = this.openedAt ? `lost ${this.address}` : `cannot reach ${this.address}`
    this.sink.onError(this, new ConnectionError('ERR_NETWORK', `${what} for channel '${this.channel}': ${this.failure}`))
  }

  /** The socket refused an inbound frame over `maxMessageBytes` (ws closes it with 1009): say so, then reconnect. */
  refused(): void {
    this.refusedInbound = true
    this.failure = `refused a frame larger than maxMessageBytes (${this.o.wsOptions?.maxPayload} bytes)`
    this.sink.onError(this, new ConnectionError('ERR_FRAME_TOO_LARGE', `${this.address} sent a frame on channel '${this.channel}' larger than maxMessageBytes allows (${this.o.wsOptions?.maxPayload} bytes): refused unread, reconnecting; raise maxMessageBytes if such frames are expected`, 1009))
  }

  closed(code: number, reason: string): void {
    this.detach()
    this.lost(code, reason)
  }

  /**
   * Abandons the socket as dead (it may never report its close) and lets the retry policy reconnect; `now`: at
   * once (the server may hold a stale instance of ours), not after a backoff delay.
   */
  private drop(reason: string, now = false): void {
    const raw = this.detach()
    if (!raw) return // already gone: its loss is handled
    this.failure = reason
    isNode(raw) ? raw.terminate() : raw.close()
    this.lost(1006, reason, now)
  }

  private detach(): Socket | undefined {
    const raw = this.raw
    if (raw) raw[OWNER] = this.raw = undefined
    this.draining = false
    this.verifyAt = 0
    this.verifyFailed = false
    return raw
  }

  /** The socket is gone: a fatal rejection, or the retry policy's next attempt (`now`: without a delay). */
  private lost(code: number, reason: string, now = false): void {
    this.stopTimers()
    if (this.state === 'closed' || this.state === 'giveup') return
    const t = clock()
    if (this.openedAt && t - this.openedAt >= this.o.reconnect.minUptime) this.retries = 0
    if (this.state === 'open') this.lostAt = t // an instance the server had registered and answered for
    this.openedAt = 0
    this.id = undefined
    const refused = this.refusedInbound
    this.refusedInbound = false
    if (code === 1008) {
      // Policy violation: wrong token, bad channel, duplicate id. Retrying cannot help, with one exception: a
      // duplicate id soon after we lost a connection of our own may be that connection, which the server has not
      // seen die yet (a network that swallowed it without a FIN). That one is retried, for a bounded time.
      const ours = /duplicate id/i.test(reason) && this.lostAt > 0 && t - this.lostAt < this.o.duplicateIdTimeout
      if (!ours) {
        const error = new ConnectionError('ERR_REJECTED', `${this.address} rejected channel '${this.channel}': ${reason || 'policy violation'} (close 1008)`, 1008)
        return this.shutdown('closed', error, { code, reason })
      }
      this.failure = `${reason} (close 1008): the server may still hold our previous connection, retrying for up to duplicateIdTimeout (${this.o.duplicateIdTimeout} ms)`
    }
    this.lastReason = this.failure ?? `closed with ${code}${reason ? ` (${reason})` : ''}`
    this.failure = undefined
    // The next attempt is armed before anyone hears of the loss, so a listener that throws, closes or reconnects
    // can neither strand the connection nor schedule a second attempt, and what it sends is queued.
    this.state = 'reconnecting'
    const attempt = ++this.retries
    const giveUp = attempt > this.o.reconnect.maxRetries
    const delay = giveUp || now ? 0 : backoffDelay(attempt, this.o.reconnect, this.o.random)
    if (!giveUp) {
      this.waiting = true
      sleep(this, delay)
    }
    try {
      if (code === 1009 && !refused) {
        this.sink.onError(this, new ConnectionError('ERR_FRAME_TOO_LARGE', `${this.address} closed the connection because a frame exceeded its read limit (close 1009): set maxFrameBytes to the server's -limit`, 1009))
      }
      if (this.state === 'reconnecting') this.sink.onState(this, 'reconnecting', { code, reason })
    } finally {
      // Failover: the next attempt goes to the next address (the close above still named the lost one).
      if (this.waiting && this.addresses.length > 1) this.index = (this.index + 1) % this.addresses.length
    }
    if (this.state !== 'reconnecting') return
    if (giveUp) return this.giveUp()
    this.sink.onReconnect(this, { attempt, delay, reason: this.lastReason })
  }

  private giveUp(): void {
    const error = new ConnectionError('ERR_GAVE_UP', `gave up on channel '${this.channel}' after ${this.o.reconnect.maxRetries} retries (last: ${this.lastReason}); call reconnect() to try again`)
    this.shutdown('giveup', error, {})
  }

  private shutdown(state: 'closed' | 'giveup', error: SockError | undefined, detail: { code?: number; reason?: string }): void {
    this.stopTimers()
    this.openedAt = this.lostAt = 0
    this.id = this.failure = undefined
    const raw = this.detach()
    if (raw) {
      raw.close(1000)
      // ws waits up to 30 s for the peer's close frame and keeps Node running meanwhile: a peer that stopped
      // reading gets one second.
      if (isNode(raw)) (setTimeout(terminate, 1000, raw) as { unref?: () => void }).unref?.()
    }
    this.rejectQueue(error ?? new ConnectionError('ERR_CLOSED', `channel '${this.channel}' was closed before the frame could be sent`))
    this.setState(state, { ...detail, error })
  }

  /** Tries again now: after a give-up or a rejection with a fresh retry budget; while open, on a new socket. */
  reconnect(): void {
    if (this.state === 'open') return this.drop('reconnect()')
    if (this.state === 'closed' || this.state === 'giveup') {
      this.retries = 0
      return this.connect()
    }
    this.check()
  }

  close(): void {
    if (this.state === 'closed') return
    this.shutdown('closed', undefined, { code: 1000 })
  }

  /**
   * Writes a frame now if open and the socket has room (`sent`); otherwise queues it, bounded by count and bytes
   * (`queued`, with a promise that settles when it is written or dropped); or says why it cannot (`failed`).
   * The queue takes what the socket cannot: while not open, and while open past the high-water mark of buffered
   * bytes, so that a producer that awaits its sends runs at the speed of the link in bounded memory. (A
   * WebSocket-like without `bufferedAmount` counts as empty: hence `!(x >= mark)`, which `undefined` passes.)
   */
  offer(text: string): Offer {
    // A socket already closing (its close event not yet here) takes nothing: the frame waits for the next one.
    const raw = this.raw
    if (this.state === 'open' && raw?.readyState === 1 && !this.queue && !(raw.bufferedAmount >= this.o.highWaterMark)) {
      this.write(text)
      return SENT
    }
    if (this.state === 'closed' || this.state === 'giveup') {
      return { status: 'failed', error: new ConnectionError(this.state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED', `channel '${this.channel}' on ${this.address} is ${this.state === 'giveup' ? 'given up (call reconnect())' : 'closed'}: nothing was sent`) }
    }
    const q = this.o.queue
    const queue = (this.queue ??= [])
    const cost = frameCost(text)
    const full = () => queue.length >= q.maxCount || this.queuedBytes + cost > q.maxBytes
    if (full() && q.overflow === 'drop-oldest') {
      while (queue.length && full()) {
        const old = queue.shift()!
        this.queuedBytes -= old.cost
        old.reject(new ConnectionError('ERR_QUEUE_FULL', `dropped from the send queue of channel '${this.channel}' on ${this.address} to make room for newer frames (overflow: 'drop-oldest')`))
      }
    }
    if (full()) {
      if (!queue.length) this.queue = undefined
      const why = this.state === 'open' ? `while its socket holds more than highWaterMark (${this.o.highWaterMark} bytes) the peer has not read` : 'while it is not open'
      return { status: 'failed', error: new ConnectionError('ERR_QUEUE_FULL', `send queue of channel '${this.channel}' on ${this.address} is full (${queue.length} frames, ${this.queuedBytes} bytes; limits ${q.maxCount} / ${q.maxBytes}) ${why}: await your sends, or raise the queue limits`) }
    }
    const written = new Promise<string>((resolve, reject) => queue.push({ text, cost, resolve, reject }))
    this.queuedBytes += cost
    if (this.state === 'open') this.awaitDrain()
    return { status: 'queued', written }
  }

  /** Frames waiting for the connection to open, or for its socket to drain. */
  get queued(): number {
    return this.queue?.length ?? 0
  }

  /** Writes queued frames while the socket is open and below its high-water mark; waits for a drain for the rest. */
  private flush(): void {
    const q = this.queue
    const raw = this.raw
    if (!q || this.state !== 'open' || raw?.readyState !== 1) return
    const address = String(this.address)
    let i = 0
    while (i < q.length && !(raw.bufferedAmount >= this.o.highWaterMark)) {
      const p = q[i++]!
      this.queuedBytes -= p.cost
      this.write(p.text)
      p.resolve(address)
    }
    if (i < q.length) {
      q.splice(0, i)
      this.awaitDrain()
    } else {
      this.queue = undefined
      this.queuedBytes = 0
    }
  }

  /** Flushes again once the socket drained: on Node's 'drain', or by polling `bufferedAmount` (browsers have no event). */
  private awaitDrain(): void {
    if (this.draining) return
    this.draining = true
    const raw = this.raw!
    const tcp = (raw as { _socket?: { once?(e: string, f: () => void): void; off?(e: string, f: () => void): void } })._socket
    const drained = (): void => {
      tcp?.off?.('drain', drained)
      if (this.raw !== raw || !this.draining) return // replaced, or flushed already: a new socket flushes on open
      this.draining = false
      this.flush()
    }
    // Node's 'drain' only comes after a refused write: the poll is the fallback, and a browser's only way.
    const poll = (): void => {
      if (this.raw !== raw || !this.draining) return
      if (raw.readyState !== 1 || !(raw.bufferedAmount >= this.o.highWaterMark)) drained()
      else setTimeout(poll, DRAIN_POLL)
    }
    if (typeof tcp?.once === 'function') tcp.once('drain', drained)
    setTimeout(poll, DRAIN_POLL)
  }

  /** Every frame leaves through here, batched with the others written in the same tick (`./cork`). */
  private write(text: string): void {
    batch(this.raw!, text.length)
    this.raw!.send(text)
  }

  private rejectQueue(e: SockError): void {
    const q = this.queue
    this.queue = undefined
    this.queuedBytes = 0
    if (q) for (const p of q) p.reject(e)
  }

  private stopTimers(): void {
    unsleep(this)
    this.waiting = false
    this.probeSentAt = this.pingSentAt = 0
  }

  private setState(state: ConnectionState, detail: { code?: number; reason?: string; error?: SockError }): void {
    if (this.state === state && !detail.error) return
    this.state = state
    this.sink.onState(this, state, detail)
  }
}
