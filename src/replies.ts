/**
 * The replies feature (`sock-client/replies`): request/response between instances of a channel. `request()` sends an
 * envelope with `q` (a reply is wanted) and settles exactly once: the first final reply, its timeout (from the call,
 * queue time included), an abort, `close()`/`leave()`/give-up, or the loss of every connection that carried it, each
 * with its own code. A request still queued when it times out or is aborted is withdrawn and never sent. Retries reuse
 * the id, and a responder runs an id once, answering repeats from a bounded reply cache. `handle()` answers: a value
 * is a reply envelope (event `$r`), nothing a fast reply (type 9 `a`, a code without data), a `ReplyError` its code,
 * any other throw code 5 without its message. Wire format: docs/protocol-replies.md.
 */
import { listenerKey, tryFrame, type Channel, type SendReport, type Tracker } from './channel'
import { checkEvent, positive, type SockClient, type SockMessage, type Unsubscribe } from './client'
import type { Connection, Offer } from './connection'
import { control, parseControl, type Control } from './control'
import { DEV } from './dev'
import { encodeEnvelope, json, REPLY, TYPE_CONTROL, TYPE_EVENT, type Envelope } from './envelope'
import { ProtocolError, SockError, ValidationError, type SockErrorCode } from './errors'
import type { Feature } from './feature'
import { checkId, encodeFrame, isName, type Frame } from './protocol'
import { sleep, unsleep, type Sleeper } from './timers'

/** Reply and reason codes: 0-5 are Sockety's fast replies; 10-99 are reserved; 100-4095 are the application's. */
export const ReplyCode = { Ok: 0, Rejected: 1, NoHandler: 2, Unauthorized: 3, BadRequest: 4, HandlerError: 5, Canceled: 6, Timeout: 7, TooLarge: 8, FlowControl: 9 } as const

/** A handler's answer for "not mine": nothing is sent, and another responder may answer. */
export const NO_REPLY: unique symbol = Symbol.for('sock-client.noReply')

/** What a handler throws to answer with a code (and a message, and data); what a requester gets for a code >= 1. */
export class ReplyError extends SockError {
  override name = 'ReplyError' as const
  readonly replyCode: number
  readonly data?: unknown
  /** The instance that answered (on the requester's side). */
  from?: string
  /** @internal the message the handler gave, if any */
  readonly said: string | undefined
  constructor(replyCode: number, message?: string, data?: unknown) {
    if (!Number.isInteger(replyCode) || replyCode < 1 || replyCode > 4095)
      throw new ValidationError(
        'replyCode',
        DEV ? `invalid reply code ${String(replyCode)}: a failure is an integer from 1 to 4095 (100 and up for applications; see ReplyCode)` : 'invalid reply code',
      )
    super('ERR_REPLY', message ?? (DEV ? `the responder answered with code ${replyCode}` : `code ${replyCode}`))
    this.replyCode = replyCode
    this.data = data
    this.said = message
  }
}

/** A request that ended without a reply: timed out, aborted, disconnected, closed, given up, refused by its queue. */
export class RequestError extends SockError {
  override name = 'RequestError' as const
  constructor(
    code: SockErrorCode,
    message: string,
    readonly requestId: string,
    readonly channel: string,
    readonly event: string,
    /** Whether any copy was written to a socket: then the responder may have run it. */
    readonly sent: boolean,
    options?: { cause?: unknown },
  ) {
    super(code, message, options)
  }
}

export const isReplyError = (e: unknown): e is ReplyError => e instanceof Error && e.name === 'ReplyError'
export const isRequestError = (e: unknown): e is RequestError => e instanceof Error && e.name === 'RequestError'

// ---------- types ----------

/** channel -> event -> [request, response]. */
export type RequestMap = { [channel: string]: { [event: string]: [request: unknown, response: unknown] } }
/** The map used when none is given: any channel, any event, any payloads. */
export type AnyRequests = { [channel: string]: { [event: string]: [any, any] } }
export type Req<R, C extends keyof R, K extends keyof R[C]> = R[C][K] extends [infer Q, unknown] ? Q : never
export type Res<R, C extends keyof R, K extends keyof R[C]> = R[C][K] extends [unknown, infer S] ? S : never
/** The data argument may be left out when the request type is void or undefined. */
export type ReqArgs<Q, O> = [Q] extends [void | undefined] ? [data?: Q, options?: O] : [data: Q, options?: O]

export interface RequestOptions<T = unknown> {
  /** Only this instance runs it; replies from others are ignored. */
  to?: string
  /** ms from the call, queue time included (default `requestTimeout`, 10 000); 0 or Infinity: none (it still settles on a disconnect). */
  timeout?: number
  /** Rejects with ERR_ABORTED; withdraws the request if it is still queued, else sends a cancel. */
  signal?: AbortSignal
  /** Re-sends (same id, so a sock-client responder still runs it once) after each `retryDelay` and at once when every connection that carried it is lost (default 0). */
  retries?: number
  /** ms between retries (default timeout / (retries + 1)). */
  retryDelay?: number
  /** Progress replies, before the final one. */
  onProgress?: (data: unknown, reply: Reply<unknown>) => void
  /** @internal */
  _t?: T
}

export interface RequestAllOptions {
  /** ms until the collection ends, without an error (default `requestTimeout`). */
  timeout?: number
  signal?: AbortSignal
  /** Ends after this many final replies (default Infinity). */
  max?: number
  /** Replies held while the consumer is busy (default 10 000); beyond it the iterator throws ERR_QUEUE_FULL. */
  maxBuffered?: number
}

export interface Reply<T = unknown> {
  /** The reply's id (copies over several servers share it). */
  id: string
  data: T | undefined
  /** 0: success; >= 1: a failure (see `error`). */
  code: number
  /** False for a progress reply. */
  final: boolean
  from: string
  address: string
  error?: ReplyError
}

export interface HandleOptions {
  /** Requests this handler runs at once (default Infinity); beyond it an addressed request is answered code 1, others not at all. */
  concurrency?: number
}

/** What a handler gets with the request's data. */
export interface SockRequest<T = unknown> extends SockMessage<T> {
  /** The request id. */
  id: string
  /** The instance the requester addressed, if it did. */
  to?: string
  /** When the requester gives up, on this process's `performance.now()` clock; Infinity without a timeout. */
  deadline: number
  /** Aborts when the requester cancels, at the deadline, and on `close()` / `leave()`. */
  readonly signal: AbortSignal
  /** Sends a progress reply (a non-final one). */
  progress(data: unknown): Promise<SendReport>
}

export type Handler<Q = any, S = any> = (data: Q, req: SockRequest<Q>) => S | typeof NO_REPLY | Promise<S | typeof NO_REPLY>

/** The replies feature's options (in `sock-client`'s `SockClientOptions`). */
export interface RepliesOptions {
  /** Default timeout of `request()` and `requestAll()`, in ms from the call (default 10 000). */
  requestTimeout?: number
  /** Most requests (and stream opens) waiting for a reply at once (default 10 000); beyond it they reject ERR_QUEUE_FULL. */
  maxPendingRequests?: number
  /**
   * What a responder remembers of the requests it ran, per channel, to run each id once and answer repeats: at most
   * `max` ids (default 4096; also the most it runs at once), `maxBytes` of cached replies in real bytes (default
   * 4 MiB), each kept at least `ttl` ms (default 60 000) or the request's own timeout.
   */
  replyCache?: { max?: number; maxBytes?: number; ttl?: number }
  /** Send a failed handler's own message with code 5 (default false: "handler failed", nothing of its internals). */
  exposeErrors?: boolean
}

/** @internal */
export interface RepliesConfig {
  timeout: number
  maxPending: number
  cacheMax: number
  cacheBytes: number
  ttl: number
  expose: boolean
}

// ---------- state ----------

/** Memory of a cached entry beyond its reply's text (its record, map entry and id), measured roughly on V8. */
const ENTRY_COST = 200
/** A cached reply is re-sent when a retry comes; larger ones are not kept (a retry of them is ignored). */
const MAX_CACHED = 64 << 10
/** Reply ids remembered by requestAll() to yield each reply once over several servers. */
const SEEN = 4096
const TWO_BYTE = /[^\x00-\xff]/
/** The longest a timer may be set for (setTimeout's limit): a later deadline wakes it first, to set it again. */
const MAX_DELAY = 2 ** 31 - 1
const now = (): number => performance.now()
/** Sleeps `s` until `at` (monotonic ms), in steps a timer can take. @internal */
export const sleepUntil = (s: Sleeper, at: number): void => sleep(s, Math.min(at - now(), MAX_DELAY))
const noop = (): void => {}

interface HandlerEntry {
  fn: (data: unknown, req: SockRequest) => unknown
  running: number
  concurrency: number
}

/** @internal The handlers of a client, and how many of its requests are pending. */
export interface ClientState {
  handlers: Map<string, HandlerEntry>
  pending: number
  /** Streams it reads now (streams.ts). */
  reading: number
}

interface Served {
  id: string
  /** The `q` of the copy last seen: a repeat with another one is a retry, with the same a copy over another server. */
  q: unknown
  /** The running request, until it is answered. */
  req: Incoming | undefined
  /** The reply, to answer repeats: a whole frame (`whole`) or an envelope to chunk again. */
  text: string | undefined
  whole: boolean
  bytes: number
  expires: number
}

/** @internal What one end of a stream does with its control frames and its channel's state changes (streams.ts). */
export interface StreamEnd {
  control(ch: Channel, conn: Connection, c: Control, from: string): void
  watch(ch: Channel, conn: Connection, state: string, ended: SockError | undefined): void
  /** Its channel is closing (closed, left, moved), its connections still open: tell the other end. */
  leaving(): void
}

/** @internal A channel's requests out, requests served, and streams. */
export interface ChannelState {
  out: Map<string, Outgoing>
  served: Map<string, Served>
  /** The same entries, oldest first: a walk of the Map from its start would pass every entry deleted since its last rehash. */
  order: Served[]
  servedBytes: number
  running: number
  sweeps: number
  streams: Map<string, StreamEnd>
}

const clients = /* @__PURE__ */ new WeakMap<object, ClientState>()
const channels = /* @__PURE__ */ new WeakMap<Channel, ChannelState>()

/** @internal */
export function clientState(client: object): ClientState {
  let s = clients.get(client)
  if (!s) clients.set(client, (s = { handlers: new Map(), pending: 0, reading: 0 }))
  return s
}

/** @internal */
export function stateOf(ch: Channel): ChannelState {
  let s = channels.get(ch)
  if (!s) channels.set(ch, (s = { out: new Map(), served: new Map(), order: [], servedBytes: 0, running: 0, sweeps: 0, streams: new Map() }))
  return s
}

/** @internal The client's replies configuration; throws naming the feature when it is not composed in. */
export function configOf(client: SockClient<any>): RepliesConfig {
  const c = client.k.replies as RepliesConfig | undefined
  if (!c)
    throw new ValidationError(
      'features',
      DEV ? "requests and streams need the replies feature: add it from 'sock-client/replies' (new SockClient({ features: [replies] }); sock-client has it)" : 'no replies feature',
    )
  return c
}

/** @internal */
export const handlerKey = (channel: string, event: string, stream: boolean): string => listenerKey(channel, event) + (stream ? '\0s' : '')

/**
 * Sends a frame whose outcome is nobody's (best effort): offered on every connection of the channel, as its send()
 * would, without the report and the promises nobody reads. @internal
 */
export function post(ch: Channel, frame: string): void {
  for (const c of ch.connections) (c.offer(frame) as { written?: Promise<string> }).written?.catch(noop) // only a queued frame has it
}

/** Sends a control frame; its outcome is nobody's (best effort). @internal */
export function sendControl(ch: Channel, data: string): void {
  post(ch, encodeFrame(TYPE_CONTROL, data, ch.host.k.maxFrameBytes))
}

/**
 * @internal Sends a cancel or an abort (`x`) with at most 200 characters of `reason`, cut further until the frame
 * fits `maxFrameBytes` (escaping may make a short reason long): the `x` itself always goes out.
 */
export function sendAbort(ch: Channel, id: string, code: number, reason: string): void {
  for (let r = reason.slice(0, 200); ; r = r.slice(0, r.length >> 1)) {
    if (/[\ud800-\udbff]$/.test(r)) r = r.slice(0, -1) // never half a surrogate pair
    const frame = tryFrame(TYPE_CONTROL, control('x', id, code, r), ch.host.k.maxFrameBytes)
    if (frame !== undefined || !r) return void (frame && post(ch, frame))
  }
}

const bad = (why: string) => new ProtocolError('ERR_PROTOCOL', DEV ? `received a malformed request or reply: ${why}` : 'bad request')

// ---------- requests out ----------

/** The marker a withdrawn frame's promise rejects with: the request has already settled. */
const WITHDRAWN = /* @__PURE__ */ new SockError('ERR_ABORTED', 'withdrawn')

/**
 * A request waiting for its reply, on the shared timer for its deadline and retries. It follows its copies
 * (`Tracker`): the connections that carried it (with the socket they had then) and the frames still queued.
 * @internal
 */
export abstract class Outgoing implements Tracker, Sleeper {
  due = 0
  slot = -1
  /** Abandoned: nothing more is sent (Tracker). */
  done = false
  settled = false
  sent = false
  private started = false
  private expiring = false
  /** The connections that carried it, each with the socket it had then (`openedTime`): conn, time, conn, time... */
  private carriers: (Connection | number)[] = []
  private queued: [Connection, object][] = []
  private attempts = 0
  private nextRetry = Infinity
  private onAbort: (() => void) | undefined

  constructor(
    readonly client: SockClient<any>,
    readonly ch: Channel,
    readonly cs: ChannelState,
    readonly id: string,
    readonly event: string,
    /** The envelope up to `"q":`, and after its value. */
    private readonly head: string,
    private readonly rest: string,
    readonly deadline: number,
    readonly to: string | undefined,
    private retries: number,
    private readonly retryDelay: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  abstract reply(r: Reply): void
  /** Settles with a rejection. */
  abstract fail(e: SockError): void
  /** The deadline came (and the frames received by then were read). */
  abstract expired(): void

  start(): void {
    this.started = true
    this.cs.out.set(this.id, this)
    clientState(this.client).pending++
    if (this.signal) this.signal.addEventListener('abort', (this.onAbort = () => this.abort()))
    this.send()
  }

  /** Writes (another) attempt: the same id, `q` the time left. What an earlier attempt still has queued is taken back. */
  protected send(): void {
    this.withdraw()
    const t = now()
    const q = this.deadline === Infinity ? 0 : Math.max(1, Math.ceil(this.deadline - t))
    const text = this.head + q + this.rest
    const frame = tryFrame(TYPE_EVENT, text, this.ch.host.k.maxFrameBytes)
    if (frame !== undefined) {
      // One frame: offered on every connection of the channel, as its send() would, without a report nobody reads.
      let failed: SockError | undefined
      let any = false
      for (const c of this.ch.connections) {
        const r = c.offer(frame)
        this.offered(c, r)
        if (r.status === 'failed') failed ??= r.error
        else any = true
      }
      this.attempts++
      if (!any && failed) return this.fail(this.error(failed.code, failed.message, failed))
    } else {
      // A retry of a chunked request goes in chunks of a fresh message id: the receiver finished the first one's.
      const chunkId = this.attempts++ ? this.client.nextId() : this.id
      this.ch.envelope(chunkId, text, undefined, this).catch((e: SockError) => {
        if (!this.settled && e !== WITHDRAWN) this.fail(this.error(e.code, e.message, e))
      })
    }
    if (this.retries > 0 && this.retryDelay < Infinity) this.nextRetry = t + this.retryDelay
    this.schedule()
  }

  private schedule(): void {
    const at = Math.min(this.deadline, this.nextRetry)
    if (at < Infinity && !this.settled) sleepUntil(this, at)
  }

  offered(conn: Connection, r: Offer): void {
    if (r.status === 'sent') {
      this.sent = true
      this.carriers.push(conn, conn.openedTime)
    } else if (r.status === 'queued') {
      const entry: [Connection, object] = [conn, r.pending]
      this.queued.push(entry)
      const unqueue = () => {
        const i = this.queued.indexOf(entry)
        if (i >= 0) this.queued.splice(i, 1)
      }
      r.written.then(
        () => {
          unqueue()
          this.sent = true
          this.carriers.push(conn, conn.openedTime)
          this.check()
        },
        () => {
          unqueue()
          this.check()
        },
      )
    }
  }

  /** Every connection that carried it is gone and no copy waits in a queue: retry, or reject ERR_DISCONNECTED. */
  check(): void {
    if (this.settled || this.queued.length || !this.carriers.length) return
    const cs = this.carriers
    for (let i = 0; i < cs.length; i += 2) if (cs[i + 1] && (cs[i] as Connection).openedTime === cs[i + 1]) return
    cs.length = 0
    if (this.retries > 0) {
      this.retries--
      return this.send()
    }
    this.fail(
      this.error(
        'ERR_DISCONNECTED',
        DEV
          ? `lost every connection that carried request '${this.event}' on '${this.ch.name}' (${this.id}) before a reply; the responder may or may not have run it: retry with { retries } if the handler is idempotent`
          : 'disconnected',
      ),
    )
  }

  wake(): void {
    if (this.settled) return
    if (this.expiring) return this.expired()
    const t = now() + 1 // the shared timer may fire up to a millisecond early
    if (t >= this.deadline) {
      // Withdrawn now; rejected on the next turn, so that a reply already received is read first.
      this.abandon(ReplyCode.Timeout, 'timed out')
      this.expiring = true
      return sleep(this, 0)
    }
    if (t >= this.nextRetry && this.retries > 0) {
      this.retries--
      return this.send()
    }
    this.schedule()
  }

  private abort(): void {
    if (this.settled) return
    this.abandon(ReplyCode.Canceled, 'aborted')
    this.fail(
      this.error(
        'ERR_ABORTED',
        DEV ? `request '${this.event}' on '${this.ch.name}' was aborted by its signal${this.sent ? ' after it was sent: the responder may have run it' : ' before it was sent'}` : 'aborted',
      ),
    )
  }

  private withdraw(): void {
    if (this.queued.length) for (const [c, p] of this.queued.splice(0)) c.withdraw(p, WITHDRAWN)
  }

  /** Sends nothing more: withdraws what is queued; a cancel to responders when a copy was written. */
  protected abandon(code: number, reason: string): void {
    this.done = true
    this.withdraw()
    if (this.sent) sendAbort(this.ch, this.id, code, reason)
  }

  /** Leaves the channel's table and the timer; called once, by every way of settling. */
  protected settle(): void {
    this.settled = this.done = true
    this.withdraw()
    unsleep(this)
    if (!this.started) return // settled before it began (aborted already): it was never counted
    this.started = false
    this.cs.out.delete(this.id)
    clientState(this.client).pending--
    this.signal?.removeEventListener('abort', this.onAbort!)
  }

  error(code: SockErrorCode, message: string, cause?: unknown): RequestError {
    return new RequestError(code, message, this.id, this.ch.name, this.event, this.sent, cause === undefined ? undefined : { cause })
  }
}

/** `request()`: the first final reply settles it. */
class Call extends Outgoing {
  resolve!: (v: unknown) => void
  reject!: (e: unknown) => void
  onProgress: RequestOptions['onProgress']

  reply(r: Reply): void {
    if (!r.final) return this.client.callback(this.onProgress, 'onProgress', this.ch.name, r.data, r)
    this.settle()
    if (r.error) this.reject(r.error)
    else this.resolve(r.data)
  }

  fail(e: SockError): void {
    this.settle()
    this.reject(e)
  }

  expired(): void {
    this.fail(
      this.error(
        'ERR_TIMEOUT',
        DEV
          ? `no reply to '${this.event}' on '${this.ch.name}'${this.to ? ` from '${this.to}'` : ''} within its timeout (request ${this.id}${this.sent ? '; it was sent, a cancel followed' : '; it was never sent, and was withdrawn from the queue'})`
          : 'timed out',
      ),
    )
  }
}

/** `requestAll()`: every reply until the timeout, `max` final ones or the signal. */
class Collect extends Outgoing {
  buffer: Reply[] = []
  bytes: number[] = []
  held = 0
  seen = new Set<string>()
  finals = 0
  failure: SockError | undefined
  notify: (() => void) | undefined
  max = Infinity
  maxBuffered = 10_000
  maxBytes = 16 << 20

  reply(r: Reply, size = 0): void {
    if (this.seen.has(r.id)) return // a copy over another server
    this.seen.add(r.id)
    if (this.seen.size > SEEN) this.seen.delete(this.seen.values().next().value!)
    if (this.buffer.length >= this.maxBuffered || this.held + size > this.maxBytes) {
      return this.fail(
        this.error(
          'ERR_QUEUE_FULL',
          DEV
            ? `requestAll() of '${this.event}' on '${this.ch.name}' would hold more than ${this.maxBuffered} replies or ${this.maxBytes} bytes without being read: raise maxBuffered or read faster`
            : 'buffer full',
        ),
      )
    }
    this.buffer.push(r)
    this.bytes.push(size)
    this.held += size
    if (r.final && ++this.finals >= this.max) this.end(ReplyCode.Canceled)
    this.notify?.()
  }

  fail(e: SockError): void {
    if (e.code !== 'ERR_ABORTED') this.failure = e // its signal ends the collection, without an error
    this.end()
  }

  expired(): void {
    this.end()
  }

  end(cancel?: number): void {
    if (this.settled) return
    if (cancel !== undefined) this.abandon(cancel, 'enough replies')
    this.settle()
    this.notify?.()
  }

  next(): Promise<IteratorResult<Reply>> {
    if (this.buffer.length) {
      this.held -= this.bytes.shift()!
      return Promise.resolve({ value: this.buffer.shift()!, done: false })
    }
    if (this.settled) {
      const f = this.failure
      this.failure = undefined
      return f ? Promise.reject(f) : Promise.resolve({ value: undefined, done: true })
    }
    return new Promise<void>((r) => (this.notify = r)).then(() => ((this.notify = undefined), this.next()))
  }
}

/** @internal */
interface Checked {
  ch: Channel
  config: RepliesConfig
  deadline: number
  to: string | undefined
  head: string
  rest: string
  id: string
}

/** Checks what request(), requestAll() and stream() share and encodes the envelope; bad arguments (data too) throw. */
function prepare(client: SockClient<any>, channel: string, event: string, data: unknown, o: { to?: string; timeout?: number; signal?: AbortSignal }, stream: boolean): Checked {
  const config = configOf(client)
  const ch = client.joined(channel)
  checkEvent(event)
  if (o === null || typeof o !== 'object') throw new ValidationError('options', DEV ? 'request options must be an object' : 'invalid options')
  const to = o.to === undefined ? undefined : checkId(o.to, 'options.to')
  if (o.signal !== undefined && typeof (o.signal as AbortSignal)?.addEventListener !== 'function')
    throw new ValidationError('options.signal', DEV ? 'options.signal must be an AbortSignal' : 'invalid signal')
  const timeout = positive(o.timeout, 'options.timeout', config.timeout, true)
  const id = client.nextId()
  const keys = `,"q":0${to === undefined ? '' : `,"t":"${to}"`}${stream ? ',"s":1' : ''}`
  let text: string
  try {
    text = encodeEnvelope(id, event, data, client.k.codec, keys)
  } catch (e) {
    throw new ValidationError('data', DEV ? `cannot encode the data of request '${event}' with the ${client.k.codec.name} codec: ${(e as Error)?.message ?? e}` : 'cannot encode')
  }
  const at = text.indexOf(',"q":0') + 5
  return { ch, config, deadline: timeout === 0 || timeout === Infinity ? Infinity : now() + timeout, to, head: text.slice(0, at), rest: text.slice(at + 1), id }
}

/** Too many requests wait for replies already: the error, else undefined. */
function full(client: SockClient<any>, p: Checked, event: string): RequestError | undefined {
  if (clientState(client).pending < p.config.maxPending) return undefined
  return new RequestError(
    'ERR_QUEUE_FULL',
    DEV ? `${p.config.maxPending} requests already wait for replies (maxPendingRequests): await some, or raise maxPendingRequests` : 'too many pending requests',
    p.id,
    p.ch.name,
    event,
    false,
  )
}

/**
 * Sends a request to `channel` (joining it) and resolves with the first final successful reply's data (`undefined`
 * for a fast reply); a failure reply rejects with `ReplyError`, anything else with `RequestError` and its code.
 * Bad arguments throw at once.
 */
export function request<T = unknown>(client: SockClient<any>, channel: string, event: string, data?: unknown, options: RequestOptions = {}): Promise<T> {
  let p: Checked
  try {
    p = prepare(client, channel, event, data, options ?? {}, false)
  } catch (e) {
    // Data the codec cannot encode rejects, as signal() does; other bad arguments throw at once.
    if ((e as ValidationError)?.argument === 'data') return Promise.reject(e)
    throw e
  }
  const o = options ?? {}
  const retries = positive(o.retries, 'options.retries', 0)
  if (!Number.isInteger(retries)) throw new ValidationError('options.retries', DEV ? `invalid options.retries ${retries}: use a whole number` : 'invalid retries')
  const retryDelay = positive(o.retryDelay, 'options.retryDelay', retries ? (p.deadline - now()) / (retries + 1) : Infinity, true) || Infinity
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new ValidationError('options.onProgress', DEV ? 'options.onProgress must be a function' : 'invalid onProgress')
  const tooMany = full(client, p, event)
  if (tooMany) return Promise.reject(tooMany)
  const call = new Call(client, p.ch, stateOf(p.ch), p.id, event, p.head, p.rest, p.deadline, p.to, retries, retryDelay, o.signal)
  call.onProgress = o.onProgress
  const promise = new Promise<T>((resolve, reject) => {
    call.resolve = resolve as (v: unknown) => void
    call.reject = reject
  })
  if (o.signal?.aborted) {
    call.fail(call.error('ERR_ABORTED', DEV ? `request '${event}' on '${channel}' was aborted before it was sent` : 'aborted'))
    return promise
  }
  call.start()
  return promise
}

/**
 * Sends a request to every instance of `channel` and yields each reply (failures too, with `code` >= 1) until
 * `timeout`, `max` final replies or `signal`; it throws only when no reply can come any more (every connection that
 * carried it lost, closed, given up).
 */
export function requestAll<T = unknown>(client: SockClient<any>, channel: string, event: string, data?: unknown, options: RequestAllOptions = {}): AsyncIterableIterator<Reply<T>> {
  const o = options ?? {}
  const p = prepare(client, channel, event, data, o, false)
  const max = positive(o.max, 'options.max', Infinity, true) || Infinity
  const maxBuffered = positive(o.maxBuffered, 'options.maxBuffered', 10_000) || 10_000
  const c = new Collect(client, p.ch, stateOf(p.ch), p.id, event, p.head, p.rest, p.deadline, undefined, 0, Infinity, o.signal)
  c.max = max
  c.maxBuffered = maxBuffered
  c.failure = full(client, p, event)
  if (c.failure || o.signal?.aborted)
    c.settled = c.done = true // never started: the iterator ends (with the error) at once
  else c.start()
  const it: AsyncIterableIterator<Reply<T>> = {
    next: () => c.next() as Promise<IteratorResult<Reply<T>>>,
    return: async () => {
      c.end(ReplyCode.Canceled)
      c.buffer.length = c.bytes.length = 0
      return { value: undefined, done: true }
    },
    [Symbol.asyncIterator]: () => it,
  }
  return it
}

/** @internal A request whose reply another module reads (a stream's open: its final reply is the stream's result). */
export function open(
  client: SockClient<any>,
  channel: string,
  event: string,
  data: unknown,
  to: string,
  signal: AbortSignal | undefined,
  make: (p: Checked & { cs: ChannelState }) => Outgoing,
): Outgoing {
  const p = prepare(client, channel, event, data, { to, timeout: 0, signal }, true)
  const tooMany = full(client, p, event)
  if (tooMany) throw tooMany
  const o = make({ ...p, cs: stateOf(p.ch) })
  o.start()
  return o
}
/** @internal */
export type { Checked }

// ---------- requests in ----------

/** A request being run: what its handler gets. */
class Incoming implements SockRequest, Sleeper {
  due = 0
  slot = -1
  private ctrl: AbortController | undefined
  canceled = false
  finished = false
  readonly type: number
  constructor(
    /** @internal */
    readonly ch: Channel,
    readonly channel: string,
    readonly event: string,
    readonly id: string,
    readonly data: unknown,
    readonly from: string,
    readonly address: string,
    readonly to: string | undefined,
    readonly deadline: number,
    type: number,
  ) {
    this.type = type
  }

  get signal(): AbortSignal {
    if (!this.ctrl) {
      this.ctrl = new AbortController()
      if (this.deadline < Infinity && !this.finished) sleepUntil(this, this.deadline)
    }
    return this.ctrl.signal
  }

  /** The deadline came (or a step towards a far one). */
  wake(): void {
    if (now() + 1 < this.deadline) return sleepUntil(this, this.deadline)
    this.abort(new SockError('ERR_TIMEOUT', DEV ? `the requester's timeout for '${this.event}' (${this.id}) passed: it no longer waits for a reply` : 'timed out'))
  }

  abort(reason: SockError): void {
    if (this.ctrl && !this.ctrl.signal.aborted) this.ctrl.abort(reason)
  }

  /** The requester sent a cancel (`x`). */
  cancel(code: number, reason: string): void {
    this.canceled = true
    this.abort(new SockError('ERR_ABORTED', DEV ? `the requester canceled '${this.event}' (${this.id}) with code ${code}${reason ? `: ${reason}` : ''}` : 'canceled'))
  }

  finish(): void {
    this.finished = true
    unsleep(this)
  }

  conn!: Connection
  entry!: Served
  h!: HandlerEntry

  /** The handler settled: its value (or what it threw) becomes the reply, sent and kept for repeats. */
  answer(v: unknown, threw: boolean): void {
    const { ch, conn, entry, id, from, event } = this
    const cs = stateOf(ch)
    const c = ch.host.k.replies as RepliesConfig
    cs.running--
    this.h.running--
    entry.req = undefined
    this.finish()
    if (this.canceled || now() > this.deadline) return // nobody waits for it any more
    let frame: string | undefined // a whole frame, sent
    let envelope: string | undefined // a reply envelope, to send
    let code = 0
    let data = v
    try {
      if (threw) {
        code = ReplyCode.HandlerError
        data = undefined
        if (isReplyError(v)) {
          code = v.replyCode
          if (v.said !== undefined || v.data !== undefined) data = { message: v.said, data: v.data }
        } else {
          // The application's bug: said where it listens to errors, never to the requester unless exposeErrors.
          ch.fail(conn, new SockError('ERR_LISTENER', DEV ? `the handler of '${event}' on '${ch.name}' threw (${(v as Error)?.message ?? String(v)}): answered code 5` : 'handler threw', { cause: v }))
          if (c.expose) data = { message: String((v as Error)?.message ?? v) }
        }
      } else if (v === NO_REPLY) return
      if (data === undefined) frame = fast(ch, id, code)
      else envelope = replyEnvelope(ch, ch.host.nextId(), id, from, data, code, false)
    } catch (e) {
      ch.fail(
        conn,
        new SockError('ERR_LISTENER', DEV ? `the reply of the handler of '${event}' on '${ch.name}' cannot be encoded (${(e as Error)?.message ?? e}): answered code 5` : 'reply not encodable', {
          cause: e,
        }),
      )
      frame = fast(ch, id, ReplyCode.HandlerError)
    }
    let whole = true
    if (envelope !== undefined) {
      frame = tryFrame(TYPE_EVENT, envelope, ch.host.k.maxFrameBytes)
      if (frame !== undefined) post(ch, frame)
      else {
        ch.envelope(ch.host.nextId(), envelope).catch(noop)
        if (envelope.length <= MAX_CACHED) frame = envelope
        whole = false
      }
    }
    if (frame === undefined) return
    entry.text = frame
    entry.whole = whole
    const b = cost(frame)
    cs.servedBytes += b - entry.bytes
    entry.bytes = b
    if (cs.servedBytes > c.cacheBytes) evict(cs, c)
  }

  progress(data: unknown): Promise<SendReport> {
    if (this.finished || this.canceled)
      return Promise.reject(new SockError('ERR_CLOSED', DEV ? `request '${this.event}' (${this.id}) is already answered or canceled: progress comes before the final reply` : 'answered'))
    return this.ch.envelope(this.ch.host.nextId(), replyEnvelope(this.ch, this.ch.host.nextId(), this.id, this.from, data, 0, true))
  }
}

/** A reply envelope: `{"i","e":"$r","t","r"[,"k"][,"m"],"d"}`. */
function replyEnvelope(ch: Channel, id: string, re: string, to: string, data: unknown, code: number, more: boolean): string {
  const keys = `${isName(to) ? `,"t":"${to}"` : ''},"r":"${re}"${code ? `,"k":${code}` : ''}${more ? ',"m":1' : ''}`
  const codec = ch.host.k.codec
  if (codec !== json) return encodeEnvelope(id, REPLY, data, codec, keys)
  const d = JSON.stringify(data) // what encodeEnvelope writes, without quoting the event each time
  return d === undefined ? `{"i":"${id}","e":"$r"${keys}}` : `{"i":"${id}","e":"$r"${keys},"d":${d}}`
}

const cost = (text: string): number => text.length * (TWO_BYTE.test(text) ? 2 : 1) + ENTRY_COST

/** Forgets what the reply cache holds beyond its bounds (the oldest first) and what has expired; never a running request. */
function evict(cs: ChannelState, c: RepliesConfig, t = now()): void {
  // Within bounds, what expired is looked for every 256th time only: the walk is the costly part.
  if (cs.served.size <= c.cacheMax && cs.servedBytes <= c.cacheBytes && ++cs.sweeps & 255) return
  const o = cs.order
  for (let i = 0; i < o.length; ) {
    const e = o[i]!
    const over = cs.served.size > c.cacheMax || cs.servedBytes > c.cacheBytes
    if (!over && e.expires > t) break
    if (e.req) i++
    else {
      i ? o.splice(i, 1) : o.shift()
      cs.served.delete(e.id)
      cs.servedBytes -= e.bytes
    }
  }
}

/** A fast reply: code `code`, no data. */
function fast(ch: Channel, re: string, code: number): string {
  const frame = encodeFrame(TYPE_CONTROL, control('a', re, code, ch.host.nextId()), ch.host.k.maxFrameBytes)
  post(ch, frame)
  return frame
}

/** A request arrived: run it once (a repeat gets the cached reply, or nothing), or say why not if it was addressed to us. */
function onRequest(ch: Channel, conn: Connection, from: string, type: number, env: Envelope): void {
  const q = env.q as number // checked next: Number.isSafeInteger is false for anything else
  if (!Number.isSafeInteger(q) || q < 0) return ch.fail(conn, bad(`its q is not a whole number of ms`))
  if (!isName(env.id)) return ch.fail(conn, bad('its id is not letters and digits'))
  const cs = stateOf(ch)
  const seen = cs.served.get(env.id)
  if (seen) {
    // A retry (another q: sent later) gets the cached reply again; a copy over another server (the same q), nothing.
    // Without a deadline (q 0) the two look alike: every repeat gets it again, and the requester drops the extra.
    if (seen.text !== undefined && (seen.q !== q || q === 0)) seen.whole ? post(ch, seen.text) : ch.envelope(ch.host.nextId(), seen.text).catch(noop)
    seen.q = q
    return
  }
  const stream = env.s === 1
  const key = ch.key(env.event) // cached per channel for the first 64 event names
  const h = clientState(ch.host).handlers.get(stream ? `${key}\0s` : key)
  const addressed = env.t !== undefined
  const c = ch.host.k.replies as RepliesConfig
  if (!h) {
    if (addressed) fast(ch, env.id, ReplyCode.NoHandler)
    return
  }
  if (cs.running >= c.cacheMax || h.running >= h.concurrency) {
    if (addressed) fast(ch, env.id, ReplyCode.Rejected)
    return
  }
  const t = now()
  const entry: Served = { id: env.id, q, req: undefined, text: undefined, whole: true, bytes: ENTRY_COST, expires: t + Math.max(q, c.ttl) }
  cs.served.set(env.id, entry)
  cs.order.push(entry)
  cs.servedBytes += entry.bytes
  evict(cs, c, t)
  const req = new Incoming(ch, ch.name, env.event, env.id, env.data, from, String(conn.address), addressed ? (env.t as string) : undefined, q ? t + q : Infinity, type)
  req.conn = conn
  req.entry = entry
  req.h = h
  entry.req = req
  cs.running++
  h.running++
  let out: unknown
  try {
    out = h.fn(env.data, req)
  } catch (e) {
    return req.answer(e, true)
  }
  if (out && typeof (out as Promise<unknown>).then === 'function')
    (out as Promise<unknown>).then(
      (v) => req.answer(v, false),
      (e) => req.answer(e, true),
    )
  else req.answer(out, false)
}

/** A reply arrived (an envelope, or a fast one): it settles the request it answers, if that still waits. */
function onReply(ch: Channel, conn: Connection, from: string, re: unknown, id: string, code: unknown, more: boolean, data: unknown, bytes: number): void {
  if (typeof re !== 'string') return ch.fail(conn, bad('a reply names no request (r)'))
  const o = channels.get(ch)?.out.get(re)
  if (!o) return // late (timed out, answered already) or another instance's
  if (o.to !== undefined && from !== o.to) return // only the instance asked may answer
  const k = (code === undefined ? 0 : code) as number // checked next, as q is
  if (!Number.isInteger(k) || k < 0 || k > 4095) return ch.fail(conn, bad(`reply code ${String(code)} is not 0-4095`))
  let error: ReplyError | undefined
  if (k) {
    const d = data as { message?: unknown; data?: unknown } | undefined
    error = new ReplyError(k, typeof d?.message === 'string' ? d.message : DEV ? `'${from}' answered '${o.event}' on '${ch.name}' with code ${k}` : undefined, d?.data)
    error.from = from
    data = undefined
  }
  ;(o as Collect).reply({ id, data, code: k, final: !more, from, address: String(conn.address), error }, bytes)
}

/** The replies feature's reader of requests and reply envelopes. */
function readEnvelope(ch: Channel, conn: Connection, from: string, type: number, env: Envelope, bytes: number): void {
  if (env.event === REPLY) return onReply(ch, conn, from, env.r, env.id, env.k, env.m === 1, env.data, bytes)
  onRequest(ch, conn, from, type, env)
}

/** Type 9: fast replies and cancels here; stream frames to their stream. */
function readControl(ch: Channel, conn: Connection, f: Frame): void {
  const c = parseControl(f.data)
  if (!c) return ch.fail(conn, new ProtocolError('ERR_PROTOCOL', DEV ? `received a malformed control frame (type 9) from '${f.from}'` : 'bad control frame'))
  if (c.op === 'a') return c.rest.length > 64 ? ch.fail(conn, bad('a fast reply id longer than 64 characters')) : onReply(ch, conn, f.from, c.id, c.rest, c.n, false, undefined, f.data.length)
  const cs = channels.get(ch)
  if (!cs) return
  // A cancel counts from the requester only (any instance sees every request id).
  const req = c.op === 'x' ? cs.served.get(c.id)?.req : undefined
  if (req && req.from === f.from) req.cancel(c.n, c.rest.slice(0, 200))
  cs.streams.get(c.id)?.control(ch, conn, c, f.from)
}

/**
 * Answers requests for `event` on `channel` (joining it): the handler's value is the reply, `undefined` a fast reply,
 * a thrown `ReplyError` its code, any other throw code 5, `NO_REPLY` nothing. One handler per channel and event.
 * (`stream` is the streams feature's: `handleStream()`.)
 */
export function handle(client: SockClient<any>, channel: string, event: string, fn: Handler, options: HandleOptions = {}, stream = false): Unsubscribe {
  configOf(client)
  client.checkWire(channel)
  checkEvent(event)
  if (typeof fn !== 'function') throw new ValidationError('handler', DEV ? `missing handler for '${event}': pass a function` : 'missing handler')
  const concurrency = positive(options?.concurrency, 'options.concurrency', Infinity, true) || Infinity
  const st = clientState(client)
  const key = handlerKey(channel, event, stream)
  if (st.handlers.has(key))
    throw new ValidationError(
      'event',
      DEV ? `'${event}' on '${channel}' already has a ${stream ? 'stream ' : ''}handler: one per channel and event (call the function the first one returned to remove it)` : 'handler exists',
    )
  const h: HandlerEntry = { fn: fn as HandlerEntry['fn'], running: 0, concurrency }
  st.handlers.set(key, h)
  client.want(channel)
  return () => {
    if (st.handlers.get(key) === h) st.handlers.delete(key)
  }
}

const DEFAULT_CONFIG: RepliesConfig = { timeout: 10_000, maxPending: 10_000, cacheMax: 4096, cacheBytes: 4 << 20, ttl: 60_000, expose: false }
let lastConfig: RepliesConfig | undefined

/** The replies feature: `new SockClient({ features: [replies] })` (`sock-client` has it). */
export const replies: Feature = {
  name: 'replies',
  read: { [TYPE_CONTROL]: readControl },
  requests: readEnvelope,
  init(o: RepliesOptions, k: { replies?: RepliesConfig }) {
    const rc = o.replyCache ?? {}
    const c: RepliesConfig = {
      timeout: positive(o.requestTimeout, 'options.requestTimeout', DEFAULT_CONFIG.timeout, true),
      maxPending: positive(o.maxPendingRequests, 'options.maxPendingRequests', DEFAULT_CONFIG.maxPending, true),
      cacheMax: positive(rc.max, 'options.replyCache.max', DEFAULT_CONFIG.cacheMax),
      cacheBytes: positive(rc.maxBytes, 'options.replyCache.maxBytes', DEFAULT_CONFIG.cacheBytes),
      ttl: positive(rc.ttl, 'options.replyCache.ttl', DEFAULT_CONFIG.ttl),
      expose: !!o.exposeErrors,
    }
    const l = lastConfig
    k.replies = l && (Object.keys(c) as (keyof RepliesConfig)[]).every((x) => l[x] === c[x]) ? l : (lastConfig = c)
  },
  // Requests settle when the connections that carried them are lost, and on close, leave and give-up; handlers'
  // signals abort then; streams hear of it too.
  watch(ch, conn, state, detail) {
    const cs = channels.get(ch)
    if (!cs || state === 'connecting') return
    const ended = (state === 'closed' || state === 'giveup') && ch.connections.every((c) => c.state === 'closed' || c.state === 'giveup')
    let why: SockError | undefined
    if (ended) {
      const code = detail.error?.code ?? (state === 'giveup' ? 'ERR_GAVE_UP' : 'ERR_CLOSED')
      why = new SockError(
        code,
        DEV
          ? `channel '${ch.name}' ${code === 'ERR_GAVE_UP' ? 'gave up reconnecting' : code === 'ERR_REJECTED' ? `was rejected by the server (${detail.error?.message})` : 'was closed'} before a reply`
          : code,
      )
      for (const o of [...cs.out.values()]) o.fail(o.error(code, why.message, detail.error))
      for (const e of cs.order) e.req?.abort(why)
    } else if (state !== 'open') for (const o of [...cs.out.values()]) o.check()
    for (const s of [...cs.streams.values()]) s.watch(ch, conn, state, why)
  },
  // A stream's other end hears at once that this one is going, instead of waiting for its idle timeout.
  closing(ch) {
    const cs = channels.get(ch)
    if (cs) for (const s of [...cs.streams.values()]) s.leaving()
  },
}
