/**
 * One reconnecting socket to one channel. Owns the socket, the retry policy, keep-alive, end-to-end liveness, its
 * own id, the bounded send queue with flow control, and the state, which changes in one place (`setState`). Which
 * address (and URL) each attempt uses is its owner's decision (`ConnectionOwner.next`, `url`): failover rotation and
 * a token per attempt live there; an attempt waits for a URL that comes as a promise (a token function), on its own
 * timer. It drives the WebSocket itself: a place on one shared timer, no closure per connection at rest. Knows
 * nothing of events, channels' other connections or addresses' forms.
 */
import type { Address } from './address'
import { backoffDelay, type ReconnectOptions } from './backoff'
import { batch } from './cork'
import { DEV } from './dev'
import { ConnectionError, isUnauthorizedError, ProtocolError, type SockError } from './errors'
import { decodeFrame, encodeFrame, isName, redact, TYPE_PING, TYPE_WHOAMI, type Frame } from './protocol'
import { sleep, unsleep } from './timers'

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
  pingInterval: number
  probeTimeout: number
  connectTimeout: number
  /** Bytes the socket may have buffered before sends wait in the queue. */
  highWaterMark: number
  /** The server's keep-alive window: timers stalled longer than this may have left the instance stale. */
  serverPingWindow: number
  /** How long a 'duplicate id' rejection after losing our own connection is retried before it is final. */
  duplicateIdTimeout: number
  reconnect: ReconnectOptions
  queue: QueueOptions
  random?: () => number
  /** The debug feature's log (`options.debug`): absent when off, and then each place that would log costs one test. */
  log?: Log
}

/**
 * What the debug log hears: from a connection, a frame `send`, `queue`d, `drop`ped or `receive`d and a `probe`
 * answered; from the client, what a channel reports (`state`, `error`, `reconnect`, `progress`). Never a URL, so
 * never a token.
 */
export type Log = (conn: Connection, step: string, figures?: object) => void

export type StateDetail = { code?: number; reason?: string; error?: SockError }

/** What a connection asks of and reports to its owner (the channel). */
export interface ConnectionOwner {
  /** The address of the next attempt, asked when a retry is scheduled: the owner rotates addresses (failover). */
  next(conn: Connection): Address
  /**
   * The URL of an attempt on `conn.address`, asked as it starts: the owner builds it (id, token). A promise when the
   * token comes from an asynchronous function; a throw or a rejection fails the attempt.
   */
  url(conn: Connection): string | PromiseLike<string>
  onState(conn: Connection, state: ConnectionState, detail: StateDetail): void
  onFrame(conn: Connection, frame: Frame): void
  onError(conn: Connection, error: SockError): void
  onReconnect(conn: Connection, detail: { attempt: number; delay: number; reason: string }): void
  /** The deadline a feature asked for with `wakeAt()` came. */
  onDue(conn: Connection): void
}

interface Pending {
  text: string
  /** What it costs in memory, charged against `queue.maxBytes`. */
  cost: number
  /** Called with the address it was written to (failover may have moved since it was queued). */
  resolve(address: string): void
  reject(e: SockError): void
}

/**
 * The immediate outcome of a send on one connection. A queued frame's `pending` is its place in the queue, which
 * `withdraw()` takes back (a request that timed out or was aborted before it could be written).
 */
export type Offer = { status: 'sent' } | { status: 'queued'; written: Promise<string>; pending: object } | { status: 'failed'; error: SockError }

const RESOLVED = /* @__PURE__ */ Promise.resolve()
/** `pending` while the owner is asked for the URL: a close from inside (a token function) clears it. */
const ASKING: PromiseLike<string> = /* @__PURE__ */ Promise.resolve('')
/** The one `offer()` result for a frame written at once. */
export const SENT: Offer = { status: 'sent' }

/** The socket's link back to its connection; cleared when the socket is replaced or dropped. */
const OWNER = /* @__PURE__ */ Symbol('sock-client')
/** The timer that ends a closing `ws` socket whose peer does not answer; cleared once it closed. */
const KILL = /* @__PURE__ */ Symbol()
type Socket = WebSocket & { [OWNER]?: Connection | undefined; [KILL]?: ReturnType<typeof setTimeout> }
interface NodeSocket {
  on(event: string, fn: (...args: any[]) => void): void
  ping(): void
  terminate(): void
}
/** A `ws` socket (Node; Bun's has the same API): EventEmitter listeners, ping frames and `terminate()`. */
const isNode = (ws: object): ws is NodeSocket => typeof (ws as Partial<NodeSocket>).on === 'function' && typeof (ws as Partial<NodeSocket>).terminate === 'function'

// Listeners shared by every socket, so a connection costs no closures: `this` is the socket and its OWNER the
// connection. A socket that was replaced or dropped has no owner, and its late events are ignored; its error
// listener stays for its whole life, so a late error never becomes an unhandled 'error' that kills Node.
function nodeOpen(this: Socket): void {
  this[OWNER]?.opened()
}
function nodeMessage(this: Socket, data: Uint8Array, isBinary: boolean): void {
  this[OWNER]?.received(isBinary ? data : String(data))
  // ws's receiver queues the chunks it reads in an array; once its parser runs optimized (after a burst) it no longer
  // shrinks it when emptied, and every idle socket kept room for 17 chunks (152 bytes). Emptied, it is replaced.
  const r = (this as { _receiver?: { _buffers?: unknown[] } })._receiver
  if (r?._buffers?.length === 0) r._buffers = []
}
function nodeClose(this: Socket, code: number, reason: Uint8Array): void {
  clearTimeout(this[KILL]) // closed: that timer no longer holds the socket for its second
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
const EPOCH = /* @__PURE__ */ performance.now()
/** Now, as connections keep time (what `wakeAt()` takes and `openedTime` gives). */
export const clock = (): number => Math.floor(performance.now() - EPOCH) + 1
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

// Every field is set in the constructor, including those that start undefined: a field first set later (TypeScript
// emits no initializer for `x: T | undefined`) lands outside the object, in a properties array of its own (64 bytes
// per connection, measured in a heap snapshot).
export class Connection {
  state: ConnectionState = 'connecting'
  /** The address in use, being tried, or tried next; the owner's choice (`ConnectionOwner.next`), set before the first attempt. */
  address: Address = undefined!
  /** The id the server gave this instance (type-0 reply), once known. */
  id: string | undefined = undefined
  /** When the unanswered WebSocket ping (Node) went out; 0 when none is pending. */
  pingSentAt = 0
  /** A feature's state for this connection (the rest feature's registration check); no field per feature. */
  ext: unknown = undefined
  /** A feature's next deadline on this connection (0: none), kept on the connection's one timer with its own. */
  private extAt = 0
  private raw: Socket | undefined = undefined
  private retries = 0
  private openedAt = 0
  private failure: string | undefined = undefined
  private queue: Pending[] | undefined = undefined
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
  /** The URL this attempt waits for (an asynchronous token function), until it settles or connectTimeout. */
  private pending: PromiseLike<string> | undefined = undefined

  constructor(
    readonly channel: string,
    private readonly o: ConnectionOptions,
    /** Its channel. */
    readonly owner: ConnectionOwner,
  ) {
    // The first attempt starts after the caller has registered the connection (and heard nothing yet).
    RESOLVED.then(() => this.state === 'connecting' && !this.raw && this.connect())
  }

  get isOpen(): boolean {
    return this.state === 'open'
  }

  /** The address as shown: its string, or its base URL (a token is never part of it). */
  toString(): string {
    return String(this.address)
  }

  /** Every state change goes through here, and so does every report of one to the owner. */
  private setState(state: ConnectionState, detail: StateDetail): void {
    this.state = state
    this.owner.onState(this, state, detail)
  }

  private connect(): void {
    this.waiting = false
    let url: string | PromiseLike<string> | undefined
    let failure: unknown
    this.pending = ASKING
    try {
      url = this.owner.url(this)
    } catch (e) {
      failure = e
    }
    if (this.pending !== ASKING) return // the token function closed or restarted this connection
    if (url === undefined || typeof url === 'string') return this.start(url, failure)
    // A token still to come: the attempt waits for it on the connection's one timer (connectTimeout), with no socket.
    const p = (this.pending = url)
    sleep(this, this.o.connectTimeout)
    this.setState('connecting', {})
    p.then(
      (u) => this.pending === p && this.start(u, undefined, true),
      (e) => this.pending === p && this.start(undefined, e, true),
    )
  }

  /** Opens the attempt's socket on `url`, or fails the attempt with what the token function threw (`failure`). */
  private start(url: string | undefined, failure: unknown, announced = false): void {
    this.pending = undefined
    // The socket is under way before anyone hears of it, so a listener that throws cannot strand the connection.
    let ws: Socket | undefined
    let error: string | undefined
    if (url !== undefined) {
      try {
        const W = this.o.WebSocket as unknown as new (url: string, protocols?: string[], options?: object) => Socket
        ws = this.o.wsOptions ? new W(url, undefined, this.o.wsOptions) : new W(url)
      } catch (e) {
        error = redact((e as Error).message) // a URL the runtime refuses: retried like a network error
      }
    }
    if (ws) {
      ws[OWNER] = this
      this.raw = ws
      if (isNode(ws)) {
        const n = ws as unknown as NodeSocket
        n.on('open', nodeOpen)
        n.on('message', nodeMessage)
        n.on('close', nodeClose)
        n.on('error', nodeError)
        n.on('pong', nodePong)
      } else {
        ws.binaryType = 'arraybuffer'
        for (const t of DOM_EVENTS) ws.addEventListener(t, domEvent)
      }
      sleep(this, this.o.connectTimeout)
    }
    if (!announced) this.setState('connecting', {})
    if (this.state !== 'connecting' || this.raw) return // a listener closed it, or the socket is under way
    if (url === undefined) return this.tokenFailed(failure)
    if (error !== undefined) {
      this.failed(error)
      this.lost(1006, '')
    }
  }

  /**
   * The token function threw, rejected, gave no string or missed its deadline: a failed attempt (`ERR_TOKEN`, then
   * backoff), or the end (`ERR_UNAUTHORIZED`) when it threw an `UnauthorizedError`. Its message is redacted like any
   * URL; the token itself was never had.
   */
  private tokenFailed(e: unknown): void {
    const why = redact(String((e as Error)?.message ?? e))
    if (isUnauthorizedError(e)) {
      return this.reject(
        new ConnectionError(
          'ERR_UNAUTHORIZED',
          DEV ? `the token function refused channel '${this.channel}' on ${this.address} (${why}): not retrying; call reconnect() once it can give a token` : 'unauthorized',
          undefined,
          { cause: e },
        ),
        {},
      )
    }
    this.failure = DEV ? `the token function failed: ${why}` : 'token failed'
    this.owner.onError(
      this,
      new ConnectionError('ERR_TOKEN', DEV ? `the token function for channel '${this.channel}' on ${this.address} failed (${why}): retrying with backoff` : why, undefined, { cause: e }),
    )
    this.lost(1006, '')
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
    if (this.pending) {
      this.pending = undefined
      return this.tokenFailed(new Error(DEV ? `it did not settle within connectTimeout (${this.o.connectTimeout} ms)` : 'token timeout'))
    }
    const raw = this.raw
    if (!raw || this.state === 'closed' || this.state === 'giveup') return
    const now = clock()
    if (!this.openedAt) {
      const why = DEV ? `no answer within connectTimeout (${this.o.connectTimeout} ms)` : 'connect timeout'
      this.failed(why)
      if (this.raw === raw) this.drop(why) // unless a listener already closed or replaced it
      return
    }
    if (this.stalled(now)) return
    // Deadlines come from the clock, not from timer cadence (background tabs throttle timers).
    const late = (t: number) => t && now - t >= this.o.probeTimeout
    if (late(this.probeSentAt) || late(this.pingSentAt)) {
      const what = late(this.probeSentAt) ? 'the who-am-I probe' : 'a WebSocket ping'
      this.owner.onError(this, new ConnectionError('ERR_TIMEOUT', DEV ? `no reply from ${this.address} to ${what} within ${this.o.probeTimeout} ms: reconnecting` : 'probe timeout'))
      if (this.raw === raw) this.drop('liveness probe timed out')
      return
    }
    if (this.extAt && now >= this.extAt) {
      this.extAt = 0
      this.owner.onDue(this)
      if (this.raw !== raw) return // it dropped the socket
    }
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
    if (quiet <= Math.max(this.o.serverPingWindow, 2 * this.o.pingInterval)) return false
    this.drop(DEV ? `timers stalled for ${quiet} ms, longer than the server's ping window (${this.o.serverPingWindow} ms): the instance may be stale, rejoining` : 'timers stalled', true)
    return true
  }

  /** Sets the timer for the next keep-alive or the earliest reply deadline. */
  private schedule(now: number): void {
    let at = this.nextPingAt
    const t = this.o.probeTimeout
    if (this.probeSentAt) at = Math.min(at, this.probeSentAt + t)
    if (this.pingSentAt) at = Math.min(at, this.pingSentAt + t)
    if (this.extAt) at = Math.min(at, this.extAt)
    sleep(this, Math.min(at - now, this.o.pingInterval)) // never longer than an interval, whatever the clock did
  }

  /** When this connection's socket opened (`clock()` time), or 0: tells one open from the next. */
  get openedTime(): number {
    return this.openedAt
  }

  /** Calls `owner.onDue(this)` at `at` (`clock()` time) while this socket is open; the next socket starts without. */
  wakeAt(at: number): void {
    this.extAt = at
    if (this.openedAt) this.schedule(clock())
  }

  private probe(now: number): void {
    this.probeSentAt = now
    this.write(encodeFrame(TYPE_WHOAMI, ''))
    this.schedule(now)
  }

  /** The who-am-I reply arrived: adopt the id; on the first one after a (re)connect, flush the queue and open. */
  private onWhoami(id: string): void {
    if (this.probeSentAt) this.o.log?.(this, 'probe', { rtt: clock() - this.probeSentAt })
    this.probeSentAt = 0
    if (isName(id)) this.id = id
    else this.owner.onError(this, new ProtocolError('ERR_PROTOCOL', DEV ? `the server's who-am-I reply is not a valid id` : 'bad id'))
    if (this.state !== 'connecting') return
    this.lostAt = 0
    this.setState('open', {})
    this.flush() // queued frames first, then what 'open' listeners sent (it queued behind them)
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
    if (d.error) return this.owner.onError(this, d.error)
    const f = d.frame
    if (f.type === TYPE_WHOAMI) return this.onWhoami(f.data) // logged as 'probe'
    const log = this.o.log
    if (log) log(this, 'receive', { type: f.type, length: (data as string).length ?? (data as ArrayBuffer).byteLength })
    this.owner.onFrame(this, f)
  }

  /** The socket reported an error; its close follows (or `drop()` ends it). */
  failed(message: string): void {
    if (this.state === 'closed' || this.state === 'giveup') return
    this.failure = redact(message || 'network error')
    this.owner.onError(this, new ConnectionError('ERR_NETWORK', DEV ? `${this.openedAt ? 'lost' : 'cannot reach'} ${this.address} for channel '${this.channel}': ${this.failure}` : this.failure))
  }

  /** The socket refused an inbound frame over `maxMessageBytes` (ws closes it with 1009): say so, then reconnect. */
  refused(): void {
    this.refusedInbound = true
    const max = this.o.wsOptions?.maxPayload
    this.failure = DEV ? `refused a frame larger than maxMessageBytes (${max} bytes)` : 'frame too large'
    this.owner.onError(
      this,
      new ConnectionError(
        'ERR_FRAME_TOO_LARGE',
        DEV
          ? `${this.address} sent a frame on channel '${this.channel}' larger than maxMessageBytes allows (${max} bytes): refused unread, reconnecting; raise maxMessageBytes if such frames are expected`
          : 'inbound frame too large',
        1009,
      ),
    )
  }

  closed(code: number, reason: string): void {
    this.detach()
    this.lost(code, reason)
  }

  /**
   * Abandons the socket as dead (it may never report its close) and lets the retry policy reconnect; `now`: at
   * once (the server may hold a stale instance of ours), not after a backoff delay.
   */
  drop(reason: string, now = false): void {
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
    this.extAt = 0
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
      if (!(/duplicate id/i.test(reason) && this.lostAt && t - this.lostAt < this.o.duplicateIdTimeout)) {
        return this.reject(new ConnectionError('ERR_REJECTED', DEV ? `${this.address} rejected channel '${this.channel}': ${reason || 'policy violation'} (close 1008)` : reason || 'rejected', 1008), {
          code,
          reason,
        })
      }
      this.failure = DEV ? `${reason} (close 1008): the server may still hold our previous connection, retrying for up to duplicateIdTimeout (${this.o.duplicateIdTimeout} ms)` : reason
    }
    const last = this.failure ?? `closed with ${code}${reason ? ` (${reason})` : ''}`
    this.failure = undefined
    // The next attempt is armed before anyone hears of the loss, so a listener that throws, closes or reconnects
    // can neither strand the connection nor schedule a second attempt, and what it sends is queued.
    const attempt = ++this.retries
    const giveUp = attempt > this.o.reconnect.maxRetries
    const delay = giveUp || now ? 0 : backoffDelay(attempt, this.o.reconnect, this.o.random)
    if (!giveUp) {
      this.waiting = true
      sleep(this, delay)
    }
    const error =
      code === 1009 && !refused
        ? new ConnectionError(
            'ERR_FRAME_TOO_LARGE',
            DEV ? `${this.address} closed the connection because a frame exceeded its read limit (close 1009): set maxFrameBytes to the server's -limit` : 'frame over the server limit',
            1009,
          )
        : undefined
    this.setState('reconnecting', { code, reason, error }) // 'close' names the address lost
    if (this.state !== 'reconnecting') return
    if (giveUp)
      return this.reject(
        new ConnectionError('ERR_GAVE_UP', DEV ? `gave up on channel '${this.channel}' after ${this.o.reconnect.maxRetries} retries (last: ${last}); call reconnect() to try again` : 'gave up'),
        {},
        'giveup',
      )
    this.address = this.owner.next(this) // and 'reconnect' the one the retry goes to
    this.owner.onReconnect(this, { attempt, delay, reason: last })
  }

  /** Ends the connection for good with `error`: a rejection (close 1008), a give-up, or (no error) `close()`. */
  reject(error: SockError | undefined, detail: { code?: number; reason?: string }, state: 'closed' | 'giveup' = 'closed'): void {
    this.stopTimers()
    this.openedAt = this.lostAt = 0
    this.id = this.failure = undefined
    const raw = this.detach()
    if (raw) {
      raw.close(1000)
      // ws waits up to 30 s for the peer's close frame and keeps Node running meanwhile: a peer that stopped
      // reading gets one second.
      if (isNode(raw)) ((raw[KILL] = setTimeout(terminate, 1000, raw)) as { unref?: () => void }).unref?.()
    }
    this.rejectQueue(error ?? new ConnectionError('ERR_CLOSED', DEV ? `channel '${this.channel}' was closed before the frame could be sent` : 'closed'))
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
    if (this.state !== 'closed') this.reject(undefined, { code: 1000 })
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
    const log = this.o.log
    if (this.state === 'open' && raw?.readyState === 1 && !this.queue && !(raw.bufferedAmount >= this.o.highWaterMark)) {
      this.write(text)
      if (log) log(this, 'send', { length: text.length })
      return SENT
    }
    if (this.state === 'closed' || this.state === 'giveup') {
      log?.(this, 'drop', { length: text.length, error: this.state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED' })
      return {
        status: 'failed',
        error: new ConnectionError(
          this.state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED',
          DEV ? `channel '${this.channel}' on ${this.address} is ${this.state === 'giveup' ? 'given up (call reconnect())' : 'closed'}: nothing was sent` : this.state,
        ),
      }
    }
    const q = this.o.queue
    const queue = (this.queue ??= [])
    const cost = frameCost(text)
    const full = () => queue.length >= q.maxCount || this.queuedBytes + cost > q.maxBytes
    if (full() && q.overflow === 'drop-oldest') {
      while (queue.length && full()) {
        const old = queue.shift()!
        this.queuedBytes -= old.cost
        log?.(this, 'drop', { length: old.text.length, error: 'ERR_QUEUE_FULL', oldest: true })
        old.reject(
          new ConnectionError(
            'ERR_QUEUE_FULL',
            DEV ? `dropped from the send queue of channel '${this.channel}' on ${this.address} to make room for newer frames (overflow: 'drop-oldest')` : 'dropped',
          ),
        )
      }
    }
    if (full()) {
      if (!queue.length) this.queue = undefined
      const why = this.state === 'open' ? `while its socket holds more than highWaterMark (${this.o.highWaterMark} bytes) the peer has not read` : 'while it is not open'
      log?.(this, 'drop', { length: text.length, error: 'ERR_QUEUE_FULL' })
      return {
        status: 'failed',
        error: new ConnectionError(
          'ERR_QUEUE_FULL',
          DEV
            ? `send queue of channel '${this.channel}' on ${this.address} is full (${queue.length} frames, ${this.queuedBytes} bytes; limits ${q.maxCount} / ${q.maxBytes}) ${why}: await your sends, or raise the queue limits`
            : 'queue full',
        ),
      }
    }
    let pending!: Pending
    const written = new Promise<string>((resolve, reject) => queue.push((pending = { text, cost, resolve, reject })))
    this.queuedBytes += cost
    log?.(this, 'queue', { length: text.length, queued: queue.length, queuedBytes: this.queuedBytes })
    if (this.state === 'open') this.awaitDrain()
    return { status: 'queued', written, pending }
  }

  /**
   * Takes a frame still waiting in the queue back out, so that it is never written: its `written` rejects with
   * `error`. False when it is no longer queued (written, dropped, or rejected with the queue).
   */
  withdraw(pending: object, error: SockError): boolean {
    const q = this.queue
    const i = q ? q.indexOf(pending as Pending) : -1
    if (i < 0) return false
    q!.splice(i, 1)
    this.queuedBytes -= (pending as Pending).cost
    if (!q!.length) this.queue = undefined
    ;(pending as Pending).reject(error)
    return true
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
      this.o.log?.(this, 'send', { length: p.text.length })
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
    if (this.draining || !this.raw) return
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
    this.pending = undefined
    this.probeSentAt = this.pingSentAt = 0
  }
}
