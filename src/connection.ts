/**
 * One reconnecting socket to one channel, over one address (broadcast) or rotating through several (failover).
 * Owns the retry policy, keep-alive, end-to-end liveness, its own id, the bounded send queue and the state.
 * Built on reconnecting-websocket, whose own delay, queue and retry limit are switched off (see DESIGN.md).
 */
import RWSImport from 'reconnecting-websocket'
import type { Address } from './address'
import { backoffDelay, type ReconnectOptions } from './backoff'
import { ConnectionError, ProtocolError, type SockError } from './errors'
import { channelUrl, decodeFrame, encodeFrame, isName, redact, TYPE_PING, TYPE_WHOAMI, type Frame } from './protocol'

// reconnecting-websocket ships CJS (`module.exports = Class`) and ESM; normalise either default import.
type RWS = InstanceType<typeof RWSImport>
const ReconnectingWebSocket: typeof RWSImport = (RWSImport as unknown as { default?: typeof RWSImport }).default ?? RWSImport

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
  state(conn: Connection, state: ConnectionState, detail: { code?: number; reason?: string; error?: SockError }): void
  frame(conn: Connection, frame: Frame): void
  error(conn: Connection, error: SockError): void
  reconnect(conn: Connection, detail: { attempt: number; delay: number; reason: string }): void
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
const SENT: Offer = { status: 'sent' }
const noop = () => {}

// A subclass that keeps a no-op error listener on every socket, so an error emitted after reconnecting-websocket
// detached its listeners (connect timeout, close while connecting) never becomes an unhandled 'error' that kills
// Node. One subclass per WebSocket constructor, not one per connection: a class per connection cost 3.5 KiB per
// idle client (its own prototype, hidden classes and feedback for every socket object; see bench/).
const guardedClasses = new WeakMap<WebSocketLike, WebSocketLike>()
function guarded(Base: WebSocketLike): WebSocketLike {
  let G = guardedClasses.get(Base)
  if (!G) {
    G = class Guarded extends (Base as unknown as new (url: string) => WebSocket) {
      constructor(url: string) {
        super(url)
        this.addEventListener('error', noop)
      }
    } as unknown as WebSocketLike
    guardedClasses.set(Base, G)
  }
  return G
}

export class Connection {
  state: ConnectionState = 'connecting'
  /** The id the server gave this instance (type-0 reply), once known. */
  id: string | undefined
  private rws: RWS | undefined
  private raw: WebSocket | undefined
  private index = 0
  private started = false
  private retries = 0
  private openedAt = 0
  private lastReason = 'connect'
  private failure: string | undefined
  private queue: Pending[] = []
  private queuedBytes = 0
  private pingTimer: ReturnType<typeof setInterval> | undefined
  private probeTimer: ReturnType<typeof setTimeout> | undefined
  private probeSentAt = 0
  private pingSentAt = 0
  private wait: { timer: ReturnType<typeof setTimeout>; done(): void } | undefined

  constructor(
    readonly channel: string,
    readonly addresses: readonly Address[],
    private readonly o: ConnectionOptions,
    private readonly sink: ConnectionSink,
  ) {
    this.start()
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

  private start(): void {
    const rws = new ReconnectingWebSocket(() => this.nextUrl(), [], {
      WebSocket: guarded(this.o.WebSocket),
      minReconnectionDelay: 0,
      maxReconnectionDelay: 0,
      connectionTimeout: this.o.connectTimeout,
      maxRetries: Infinity,
      maxEnqueuedMessages: 0,
      minUptime: this.o.reconnect.minUptime,
    })
    rws.binaryType = 'arraybuffer'
    rws.addEventListener('open', (e) => {
      if (rws !== this.rws) return
      this.adopt(e.target as WebSocket | null)
      this.onOpen()
    })
    rws.addEventListener('message', (e) => {
      if (rws === this.rws) this.onMessage(e.data)
    })
    rws.addEventListener('close', (e) => {
      if (rws === this.rws) this.onClose(e.code, e.reason)
    })
    rws.addEventListener('error', (e) => {
      if (rws !== this.rws || this.state === 'closed' || this.state === 'giveup') return
      const msg = (e as { message?: string }).message || (e as { error?: Error }).error?.message || 'network error'
      this.failure = msg === 'TIMEOUT' ? `no answer within connectTimeout (${this.o.connectTimeout} ms)` : redact(msg)
      this.sink.error(this, new ConnectionError('ERR_NETWORK', `cannot reach ${this.address} for channel '${this.channel}': ${this.failure}`))
    })
    this.rws = rws
  }

  /** reconnecting-websocket calls this before every attempt: the retry policy lives here. */
  private async nextUrl(): Promise<string> {
    if (this.started && this.state !== 'closed' && this.state !== 'giveup') {
      const attempt = ++this.retries
      if (attempt > this.o.reconnect.maxRetries) {
        this.giveUp()
      } else {
        if (this.addresses.length > 1) this.index = (this.index + 1) % this.addresses.length
        const delay = backoffDelay(attempt, this.o.reconnect, this.o.random)
        this.setState('reconnecting', {})
        this.sink.reconnect(this, { attempt, delay, reason: this.lastReason })
        await new Promise<void>((done) => {
          this.wait = { timer: setTimeout(done, delay), done }
        })
        this.wait = undefined
      }
    }
    if (this.state !== 'closed' && this.state !== 'giveup' && (!this.started || this.state === 'reconnecting')) {
      this.state = 'connecting'
      this.sink.state(this, 'connecting', {})
    }
    this.started = true
    return this.url()
  }

  /** The socket that just opened (the open event's target) becomes the one pinged and terminated. */
  private adopt(raw: WebSocket | null): void {
    this.raw = raw ?? undefined
    // Node's ws answers WebSocket ping frames: a transport-level liveness check besides the Sock probe.
    const node = raw as unknown as { on?: (e: string, f: () => void) => void } | null
    if (typeof node?.on === 'function') node.on('pong', () => this.raw === raw && (this.pingSentAt = 0))
  }

  private onOpen(): void {
    this.openedAt = Date.now()
    this.failure = undefined
    // Keep-alive right after open (the first ping must land inside the server's first window), then ask who we
    // are. The channel counts as open once the server has answered: the connection is proven end to end.
    this.write(encodeFrame(TYPE_PING, ''))
    this.probe()
    clearInterval(this.pingTimer)
    this.pingTimer = setInterval(() => this.tick(), this.o.pingInterval)
  }

  /** The who-am-I reply arrived: adopt the id; on the first one after a (re)connect, flush the queue and open. */
  private onWhoami(id: string): void {
    this.probeSentAt = 0
    clearTimeout(this.probeTimer)
    if (isName(id)) this.id = id
    else this.sink.error(this, new ProtocolError('ERR_PROTOCOL', `the server's who-am-I reply is not a valid id`))
    if (this.state !== 'connecting') return
    this.state = 'open'
    const queued = this.queue
    this.queue = []
    this.queuedBytes = 0
    const address = String(this.address)
    for (const p of queued) {
      this.write(p.text)
      p.resolve(address)
    }
    this.sink.state(this, 'open', {})
  }

  /** Periodic keep-alive and liveness probe; deadlines come from the clock, not from timer cadence. */
  private tick(): void {
    this.write(encodeFrame(TYPE_PING, ''))
    const raw = this.raw as unknown as { ping?: () => void } | undefined
    if (typeof raw?.ping === 'function' && !this.pingSentAt) {
      this.pingSentAt = Date.now()
      raw.ping()
    }
    if (!this.probeSentAt) this.probe()
  }

  private probe(): void {
    this.probeSentAt = Date.now()
    this.write(encodeFrame(TYPE_WHOAMI, ''))
    clearTimeout(this.probeTimer)
    this.probeTimer = setTimeout(() => this.checkProbe(), this.o.probeTimeout + 5)
  }

  private checkProbe(): void {
    const now = Date.now()
    const late = (t: number) => t && now - t >= this.o.probeTimeout
    if (this.openedAt && (late(this.probeSentAt) || late(this.pingSentAt))) {
      const what = late(this.probeSentAt) ? 'the who-am-I probe' : 'a WebSocket ping'
      this.sink.error(this, new ConnectionError('ERR_TIMEOUT', `no reply from ${this.address} to ${what} within ${this.o.probeTimeout} ms: reconnecting`))
      this.drop('liveness probe timed out')
    }
  }

  /** Checks liveness now (page visible again, network back): reconnect at once if not open, else probe. */
  check(): void {
    if (this.openedAt) {
      if (!this.probeSentAt) this.probe()
    } else if (this.state === 'reconnecting' && this.wait) {
      clearTimeout(this.wait.timer)
      this.wait.done()
    }
  }

  /** Closes the socket as dead and lets the retry policy reconnect. */
  private drop(reason: string): void {
    this.failure = reason
    const raw = this.raw as unknown as { terminate?: () => void } | undefined
    if (raw?.terminate) raw.terminate()
    else this.rws?.reconnect(4000, reason)
  }

  private onMessage(raw: unknown): void {
    const d = decodeFrame(raw)
    if (d.error) return this.sink.error(this, d.error)
    const f = d.frame
    if (f.type === TYPE_WHOAMI) return this.onWhoami(f.data)
    this.sink.frame(this, f)
  }

  private onClose(code: number, reason: string): void {
    this.stopTimers()
    if (this.state === 'closed' || this.state === 'giveup') return
    if (this.openedAt && Date.now() - this.openedAt >= this.o.reconnect.minUptime) this.retries = 0
    this.openedAt = 0
    this.id = undefined
    // reconnecting-websocket reports a failed attempt as a clean 1000 close after an error event.
    if (this.failure !== undefined && code === 1000) code = 1006
    if (code === 1008) {
      // Policy violation: wrong token, bad channel, duplicate id. Retrying cannot help.
      const error = new ConnectionError('ERR_REJECTED', `${this.address} rejected channel '${this.channel}': ${reason || 'policy violation'} (close 1008)`, 1008)
      return this.shutdown('closed', error, { code, reason })
    }
    if (code === 1009) {
      this.sink.error(this, new ConnectionError('ERR_FRAME_TOO_LARGE', `${this.address} closed the connection because a frame exceeded its read limit (close 1009): set maxFrameBytes to the server's -limit`, 1009))
    }
    this.lastReason = this.failure ?? `closed with ${code}${reason ? ` (${reason})` : ''}`
    this.failure = undefined
    this.setState('reconnecting', { code, reason })
  }

  private giveUp(): void {
    const error = new ConnectionError('ERR_GAVE_UP', `gave up on channel '${this.channel}' after ${this.o.reconnect.maxRetries} retries (last: ${this.lastReason}); call reconnect() to try again`)
    this.shutdown('giveup', error, {})
  }

  private shutdown(state: 'closed' | 'giveup', error: SockError | undefined, detail: { code?: number; reason?: string }): void {
    this.stopTimers()
    const rws = this.rws
    this.rws = undefined
    rws?.close(1000)
    if (this.wait) {
      clearTimeout(this.wait.timer)
      this.wait.done()
    }
    this.rejectQueue(error ?? new ConnectionError('ERR_CLOSED', `channel '${this.channel}' was closed before the frame could be sent`))
    this.setState(state, { ...detail, error })
  }

  /** Tries again after a give-up or a rejection, with a fresh retry budget. */
  reconnect(): void {
    if (this.state === 'open') return this.drop('reconnect()')
    if (this.rws && this.state !== 'giveup') return this.check()
    this.retries = 0
    this.started = false
    this.state = 'reconnecting' // not yet 'connecting': the first attempt announces that
    this.start()
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
    if (this.state === 'open') {
      this.write(text)
      return SENT
    }
    if (this.state === 'closed' || this.state === 'giveup') {
      return { status: 'failed', error: new ConnectionError(this.state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED', `channel '${this.channel}' on ${this.address} is ${this.state === 'giveup' ? 'given up (call reconnect())' : 'closed'}: nothing was sent`) }
    }
    const q = this.o.queue
    const full = () => this.queue.length >= q.maxCount || this.queuedBytes + text.length > q.maxBytes
    if (full() && q.overflow === 'drop-oldest') {
      while (this.queue.length && full()) {
        const old = this.queue.shift()!
        this.queuedBytes -= old.text.length
        old.reject(new ConnectionError('ERR_QUEUE_FULL', `dropped from the send queue of channel '${this.channel}' on ${this.address} to make room for newer frames (overflow: 'drop-oldest')`))
      }
    }
    if (full()) {
      return { status: 'failed', error: new ConnectionError('ERR_QUEUE_FULL', `send queue of channel '${this.channel}' on ${this.address} is full (${this.queue.length} frames, ${this.queuedBytes} bytes; limits ${q.maxCount} / ${q.maxBytes}) while it is not open: wait for 'open' or raise the queue limits`) }
    }
    const written = new Promise<string>((resolve, reject) => this.queue.push({ text, resolve, reject }))
    this.queuedBytes += text.length
    return { status: 'queued', written }
  }

  /** `offer()` as a promise: resolves once written, rejects with the reason it was not. */
  send(text: string): Promise<void> {
    const r = this.offer(text)
    return r.status === 'sent' ? RESOLVED : r.status === 'queued' ? r.written.then(noop) : Promise.reject(r.error)
  }

  /** Frames waiting for the connection to open. */
  get queued(): number {
    return this.queue.length
  }

  private write(text: string): void {
    this.rws!.send(text)
  }

  private rejectQueue(e: SockError): void {
    const q = this.queue
    this.queue = []
    this.queuedBytes = 0
    for (const p of q) p.reject(e)
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer)
    clearTimeout(this.probeTimer)
    this.pingTimer = this.probeTimer = undefined
    this.probeSentAt = this.pingSentAt = 0
  }

  private setState(state: ConnectionState, detail: { code?: number; reason?: string; error?: SockError }): void {
    if (this.state === state && !detail.error) return
    this.state = state
    this.sink.state(this, state, detail)
  }
}

