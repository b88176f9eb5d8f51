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

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'giveup'

/** A WebSocket constructor: the browser's, `ws`, or anything with the same shape. */
export type WebSocketLike = new (url: string, protocols?: string | string[]) => WebSocket

export interface QueueOptions {
  /** Most frames waiting while the channel is not open. */
  maxCount: number
  /** Most bytes (UTF-16 units of the encoded frames) waiting. */
  maxBytes: number
  /** What a full queue does: reject the new send, or drop (and reject) the oldest waiting one. */
  overflow: 'reject' | 'drop-oldest'
}

export const DEFAULT_QUEUE: QueueOptions = { maxCount: 1000, maxBytes: 1 << 20, overflow: 'reject' }

export interface ConnectionOptions {
  WebSocket: WebSocketLike
  id?: string
  token?: string
  pingInterval: number
  probeTimeout: number
  connectTimeout: number
  maxFrameBytes: number
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
  this[OWNER]?.failed(e.message)
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
 * Wall-clock milliseconds since this module loaded (never 0, which means "not set" in the fields below). Small
 * integers live unboxed in a field, where `Date.now()` costs a 16-byte number per field per connection; the
 * `Math.floor` is what makes V8 tag the difference of two doubles as a small integer.
 */
const EPOCH = Date.now()
const clock = (): number => Math.floor(Date.now() - EPOCH) || 1
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
      ws = new this.o.WebSocket(this.url())
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
    // The wall clock can step back (NTP, a restored VM): times recorded in its future are pulled back to now.
    if (this.nextPingAt > now + this.o.pingInterval) this.nextPingAt = now
    if (this.probeSentAt > now) this.probeSentAt = now
    if (this.pingSentAt > now) this.pingSentAt = now
    // Deadlines come from the clock, not from timer cadence (background tabs throttle timers).
    const late = (t: number) => t && now - t >= this.o.probeTimeout
    if (late(this.probeSentAt) || late(this.pingSentAt)) {
      const what = late(this.probeSentAt) ? 'the who-am-I probe' : 'a WebSocket ping'
      this.sink.onError(this, new ConnectionError('ERR_TIMEOUT', `no reply from ${this.address} to ${what} within ${this.o.probeTimeout} ms: reconnecting`))
      if (this.raw === raw) this.drop('liveness probe timed out')
      return
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

  /** Sets the timer for the next keep-alive or the earliest reply deadline. */
  private schedule(now: number): void {
    let at = this.nextPingAt
    const t = this.o.probeTimeout
    if (this.probeSentAt) at = Math.min(at, this.probeSentAt + t)
    if (this.pingSentAt) at = Math.min(at, this.pingSentAt + t)
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
    const queued = this.queue
    this.queue = undefined
    this.queuedBytes = 0
    if (queued) {
      const address = String(this.address)
      for (const p of queued) {
        this.write(p.text)
        p.resolve(address)
      }
    }
    this.sink.onState(this, 'open', {})
  }

  /** Checks liveness now (page visible again, network back): reconnect at once if waiting, else probe. */
  check(): void {
    if (this.openedAt) {
      if (!this.probeSentAt) this.probe(clock())
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

  closed(code: number, reason: string): void {
    this.detach()
    this.lost(code, reason)
  }

  /** Abandons the socket as dead (it may never report its close) and lets the retry policy reconnect. */
  private drop(reason: string): void {
    const raw = this.detach()
    if (!raw) return // already gone: its loss is handled
    this.failure = reason
    isNode(raw) ? raw.terminate() : raw.close()
    this.lost(1006, '')
  }

  private detach(): Socket | undefined {
    const raw = this.raw
    if (raw) raw[OWNER] = this.raw = undefined
    return raw
  }

  /** The socket is gone: a fatal rejection, or the retry policy's next attempt. */
  private lost(code: number, reason: string): void {
    this.stopTimers()
    if (this.state === 'closed' || this.state === 'giveup') return
    if (this.openedAt && clock() - this.openedAt >= this.o.reconnect.minUptime) this.retries = 0
    this.openedAt = 0
    this.id = undefined
    if (code === 1008) {
      // Policy violation: wrong token, bad channel, duplicate id. Retrying cannot help.
      const error = new ConnectionError('ERR_REJECTED', `${this.address} rejected channel '${this.channel}': ${reason || 'policy violation'} (close 1008)`, 1008)
      return this.shutdown('closed', error, { code, reason })
    }
    this.lastReason = this.failure ?? `closed with ${code}${reason ? ` (${reason})` : ''}`
    this.failure = undefined
    // The next attempt is armed before anyone hears of the loss, so a listener that throws, closes or reconnects
    // can neither strand the connection nor schedule a second attempt, and what it sends is queued.
    this.state = 'reconnecting'
    const attempt = ++this.retries
    const giveUp = attempt > this.o.reconnect.maxRetries
    const delay = giveUp ? 0 : backoffDelay(attempt, this.o.reconnect, this.o.random)
    if (!giveUp) {
      this.waiting = true
      sleep(this, delay)
    }
    try {
      if (code === 1009) {
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
    this.openedAt = 0
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
   * Writes a frame now if open (`sent`); otherwise queues it, bounded by count and bytes (`queued`, with a promise
   * that settles when it is written or dropped); or says why it cannot (`failed`).
   */
  offer(text: string): Offer {
    // A socket already closing (its close event not yet here) takes nothing: the frame waits for the next one.
    const raw = this.raw
    if (this.state === 'open' && raw?.readyState === 1) {
      this.write(text)
      return SENT
    }
    if (this.state === 'closed' || this.state === 'giveup') {
      return { status: 'failed', error: new ConnectionError(this.state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED', `channel '${this.channel}' on ${this.address} is ${this.state === 'giveup' ? 'given up (call reconnect())' : 'closed'}: nothing was sent`) }
    }
    const q = this.o.queue
    const queue = (this.queue ??= [])
    const full = () => queue.length >= q.maxCount || this.queuedBytes + text.length > q.maxBytes
    if (full() && q.overflow === 'drop-oldest') {
      while (queue.length && full()) {
        const old = queue.shift()!
        this.queuedBytes -= old.text.length
        old.reject(new ConnectionError('ERR_QUEUE_FULL', `dropped from the send queue of channel '${this.channel}' on ${this.address} to make room for newer frames (overflow: 'drop-oldest')`))
      }
    }
    if (full()) {
      return { status: 'failed', error: new ConnectionError('ERR_QUEUE_FULL', `send queue of channel '${this.channel}' on ${this.address} is full (${queue.length} frames, ${this.queuedBytes} bytes; limits ${q.maxCount} / ${q.maxBytes}) while it is not open: wait for 'open' or raise the queue limits`) }
    }
    const written = new Promise<string>((resolve, reject) => queue.push({ text, resolve, reject }))
    this.queuedBytes += text.length
    return { status: 'queued', written }
  }

  /** Frames waiting for the connection to open. */
  get queued(): number {
    return this.queue?.length ?? 0
  }

  /** Every frame leaves through here, batched with the others written in the same tick (`./cork`). */
  private write(text: string): void {
    batch(this.raw!)
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
