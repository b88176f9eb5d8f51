/**
 * The presence feature (`sock-client/presence`): the live set of instances in a channel, with `join` and `leave`
 * events. Two sources, merged by id: the REST routes of every address (polled every `presenceInterval` while someone
 * listens, with backoff per address on errors; they see every instance, plain Sock peers included), and the
 * announcements of sock-client peers, a type-7 envelope of event `sock:presence` sent when a connection opens and
 * when a channel closes (docs/protocol-presence.md), which update the set at once. Ends with the channel: `leave()`,
 * `close()` and `setup()` stop the polling and empty the set.
 */
import { tryFrame, type Channel } from './channel'
import { positive, type SockClient, type Unsubscribe } from './client'
import { clock, type Connection } from './connection'
import { DEV } from './dev'
import { encodeEnvelope, PRESENCE, TYPE_EVENT } from './envelope'
import { RestError, ValidationError, type SockError } from './errors'
import { HANDLED, type Feature } from './feature'
import { isName } from './protocol'
import { instances, listInstances, type Instance, type RestOptions } from './rest'

/** The event of a presence announcement; its payload is `{"op": "join" | "leave"}`. */
export const PRESENCE_EVENT = PRESENCE
/** The most instances one channel's presence holds: peers (announcements) and servers (REST) choose how many there are. */
export const MAX_PRESENCE = 10_000
/** The longest id kept (the embedded server's bound on ids). */
const MAX_ID = 256
/** The most a failing address's polling backs off to, in ms (or the interval, when that is longer). */
const MAX_BACKOFF = 60_000

export interface PresenceOptions {
  /**
   * How often the REST routes of every address are asked who is in a channel whose presence someone listens to, in
   * ms (default 5000; 0: never, announcements only). An address that fails is asked again after twice the wait of
   * the last, up to a minute.
   */
  presenceInterval?: number
  /**
   * Whether this client announces itself when its connections open and its channels close (default true), so that
   * other sock-client peers see it come and go at once. Plain Sock peers receive the announcement as a type-7 frame;
   * REST lists the client either way.
   */
  presenceAnnounce?: boolean
}

export type PresenceEvent = 'join' | 'leave' | 'change'
type Listener = (arg: any) => void

/** One instance and where it was seen: each address, with when (monotonic) it was last seen there. */
interface Member {
  instance: Instance
  seen: Map<string, number>
  /** `createdAt` is the server's (REST), not the time the announcement arrived. */
  listed: boolean
}

/** The polling of one address: when next, after how many failures in a row, and whether a request is out. */
interface Poll {
  next: number
  failures: number
  busy: boolean
}

const noop = () => {}
const registry = /* @__PURE__ */ new WeakMap<object, Map<string, Presence>>()

/** The live set of instances in one channel of one client: `client.presence(channel)`. */
export class Presence {
  private readonly members = new Map<string, Member>()
  /** Ids that announced their leave, with when: a poll that began before it does not bring them back. */
  private readonly gone = new Map<string, number>()
  private readonly polls = new Map<string, Poll>()
  private readonly fns: Record<PresenceEvent, Listener[]> = { join: [], leave: [], change: [] }
  private snap: readonly Instance[] | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  /** Set while live (someone listens and the client has addresses); aborts the requests out when it stops. */
  private ctrl: AbortController | undefined
  /** The bound was reported (once, until the set shrinks). */
  private full = false
  /** A `change` is due at the end of this turn. */
  private dirty = false
  /** Settles once the first round of polls is in (what `list()` waits for). */
  private first: Promise<void> | undefined
  private firstDone: (() => void) | undefined

  constructor(
    private readonly client: SockClient<any>,
    readonly channel: string,
  ) {}

  /** Whether anyone listens (join, leave or change). */
  get listening(): boolean {
    return this.fns.join.length + this.fns.leave.length + this.fns.change.length > 0
  }

  /**
   * `join` and `leave` get the `Instance` (channel, id, createdAt, addresses); `change` gets the whole list after
   * any change. The first listener joins the channel (as `on()` does) and starts the polling; once none is left it
   * stops (the channel stays joined). Returns the function that removes the listener.
   */
  on(event: 'join' | 'leave', fn: (instance: Instance) => void): Unsubscribe
  on(event: 'change', fn: (instances: readonly Instance[]) => void): Unsubscribe
  on(event: PresenceEvent, fn: Listener): Unsubscribe {
    const list = this.fns[event as PresenceEvent]
    if (!Array.isArray(list)) throw new ValidationError('event', DEV ? `invalid presence event ${String(event)}: use 'join', 'leave' or 'change'` : 'invalid event')
    if (typeof fn !== 'function') throw new ValidationError('listener', DEV ? `missing listener for presence event '${event}': pass a function` : 'missing listener')
    const was = this.listening
    if (!list.includes(fn)) this.fns[event] = [...list, fn]
    if (!was) {
      this.client.on(this.channel, PRESENCE_EVENT, noop) // joins the channel, now or once setup() gives addresses
      this.start()
    }
    return () => this.off(event, fn)
  }

  /** Removes a listener added with `on`; the last one stops the polling and empties the set. */
  off(event: PresenceEvent, fn: (arg: any) => void): void {
    const list = this.fns[event]
    if (!list?.includes(fn)) return
    this.fns[event] = list.filter((f) => f !== fn)
    if (!this.listening) this.stop(false)
  }

  /** The instances as known now (none while nobody listens): the same array until the set changes. */
  snapshot(): readonly Instance[] {
    return (this.snap ??= Object.freeze([...this.members.values()].map((m) => m.instance)))
  }

  /**
   * The instances in the channel: the live set (once its first poll came in) when someone listens; otherwise one
   * REST round over every address, merged by id, as `instances()` gives.
   */
  async list(): Promise<Instance[]> {
    if (!this.ctrl) return instances(this.client, this.channel)
    await this.first
    return [...this.snapshot()]
  }

  // ---------- live or not ----------

  /** Goes live if someone listens and the client has addresses: polls every address now, then each on its own clock. @internal */
  start(): void {
    if (this.ctrl || !this.listening || !this.client.connection.isSetup()) return
    this.ctrl = new AbortController()
    this.first = new Promise((r) => (this.firstDone = r))
    this.tick()
  }

  /** Stops polling (requests out are aborted) and empties the set: with `leave` for each instance when `say`. @internal */
  stop(say: boolean): void {
    this.ctrl?.abort()
    this.ctrl = undefined
    clearTimeout(this.timer)
    this.timer = undefined
    this.polls.clear()
    this.gone.clear()
    this.firstDone?.()
    const left = [...this.members.values()].map((m) => m.instance)
    this.members.clear()
    this.full = false
    this.snap = undefined
    if (say) this.emit([], left, false)
  }

  /** Asks every address that is due and not already asked, then sets the timer for the next one. */
  private tick(): void {
    this.timer = undefined
    const ctrl = this.ctrl
    const every = this.client.k.presenceInterval as number
    if (!ctrl || !every) return this.firstDone?.()
    const now = clock()
    for (const a of this.client.connection.addresses) {
      const key = String(a)
      let p = this.polls.get(key)
      if (!p) this.polls.set(key, (p = { next: 0, failures: 0, busy: false }))
      if (p.busy || p.next > now) continue
      const poll = p
      poll.busy = true
      const began = clock()
      const o: RestOptions = { ...((this.client.k.rest as RestOptions | undefined) ?? { timeout: 5000 }), signal: ctrl.signal }
      listInstances(a, this.channel, o).then(
        (list) => ctrl === this.ctrl && this.polled(key, poll, began, list),
        (e: SockError) => ctrl === this.ctrl && this.failed(key, poll, began, e),
      )
    }
    this.arm()
  }

  /** The one timer: for the earliest address due that is not being asked. The first round is in when none is out. */
  private arm(): void {
    clearTimeout(this.timer)
    let next = Infinity
    let out = false
    for (const p of this.polls.values()) p.busy ? (out = true) : (next = Math.min(next, p.next))
    if (!out) this.firstDone?.()
    this.timer = next < Infinity ? setTimeout(() => this.tick(), Math.max(0, next - clock())) : undefined
  }

  /** A poll is over: the next one of that address after the interval, or twice the last wait after a failure. */
  private done(p: Poll): void {
    p.busy = false
    const every = this.client.k.presenceInterval as number
    p.next = clock() + (p.failures ? Math.min(every * 2 ** p.failures, Math.max(every, MAX_BACKOFF)) : every)
    this.arm()
  }

  /**
   * A poll of `key` failed. While this client is connected there, the server is up and only its REST is in trouble
   * (no routes, CORS): what it listed stays. Otherwise the server is away, and so are the instances only it listed.
   */
  private failed(key: string, p: Poll, began: number, e: SockError): void {
    const up = !!this.client.channelOf(this.channel)?.connections.some((c) => c.isOpen && String(c.address) === key)
    // Once per run of failures: a server without REST routes would say so every interval.
    if (!p.failures++)
      this.report(
        new RestError(
          e.code,
          DEV
            ? `presence of channel '${this.channel}' could not ask ${key}: ${e.message} (asking again with backoff; ${up ? 'what it listed stays, as this client is connected there' : 'what only it listed is gone'})`
            : e.message,
          (e as RestError).status,
          { cause: e },
        ),
      )
    if (!up) this.seenOn(key, began, [])
    this.done(p)
  }

  /** An `error` event on the channel (the client's `socket` channel). */
  private report(error: SockError): void {
    const ch = this.client.channelOf(this.channel)
    if (ch) ch.fail(ch.connections[0]!, error)
  }

  /** A poll of `key` that began at `began` listed `list`. */
  private polled(key: string, p: Poll, began: number, list: Instance[]): void {
    p.failures = 0
    this.seenOn(key, began, list)
    this.done(p)
  }

  /** What `key` lists now (`list`, asked at `began`): add who is new, drop who is no longer seen anywhere. */
  private seenOn(key: string, began: number, list: Instance[]): void {
    const joined: Instance[] = []
    const left: Instance[] = []
    const listed = new Set<string>()
    let changed = false
    for (const i of list) {
      if (!isName(i.id) || i.id.length > MAX_ID || listed.has(i.id)) continue
      listed.add(i.id)
      if ((this.gone.get(i.id) ?? -1) >= began) continue // it left after this poll began
      this.gone.delete(i.id)
      const m = this.members.get(i.id)
      if (m) changed = this.seen(m, key, began, i.createdAt) || changed
      else if (this.room()) joined.push(this.add(i.id, key, began, i.createdAt))
    }
    for (const m of this.members.values()) {
      const t = m.seen.get(key)
      if (t === undefined || t > began || listed.has(m.instance.id)) continue // not seen there, or seen after this poll began
      m.seen.delete(key)
      if (m.seen.size) changed = this.update(m, m.instance.createdAt)
      else {
        this.members.delete(m.instance.id)
        left.push(m.instance)
      }
    }
    this.emit(joined, left, changed)
  }

  // ---------- what connections and announcements say ----------

  /** `id` joined (an announcement, or our own open) on `key`: in the set at once, created now until REST says. @internal */
  joined(id: string, key: string): void {
    if (!this.ctrl || !isName(id) || id.length > MAX_ID) return
    this.gone.delete(id)
    const m = this.members.get(id)
    if (m) this.emit([], [], this.seen(m, key, clock()))
    else if (this.room()) this.emit([this.add(id, key, clock())], [], false)
  }

  /** `id` announced its leave: out of the set at once, and no poll that began before brings it back. @internal */
  left(id: string): void {
    if (!this.ctrl || !isName(id) || id.length > MAX_ID) return
    if (this.gone.size >= MAX_PRESENCE) this.gone.delete(this.gone.keys().next().value!)
    this.gone.set(id, clock())
    const m = this.members.get(id)
    if (!m) return
    this.members.delete(id)
    this.emit([], [m.instance], false)
  }

  /** Whether the set has room for one more; when full, one error says so. */
  private room(): boolean {
    if (this.members.size < MAX_PRESENCE) return true
    if (!this.full) {
      this.full = true
      this.report(new RestError('ERR_QUEUE_FULL', DEV ? `presence of channel '${this.channel}' holds ${MAX_PRESENCE} instances, the most it keeps: more are not shown` : 'presence full'))
    }
    return false
  }

  private add(id: string, key: string, at: number, createdAt?: Date): Instance {
    const instance: Instance = { channel: this.channel, id, createdAt: createdAt ?? new Date(), addresses: [key] }
    this.members.set(id, { instance, seen: new Map([[key, at]]), listed: !!createdAt })
    return instance
  }

  /** Seen on `key` at `at`; REST's `createdAt` replaces an announcement's arrival time, and the earliest wins. True if it changed. */
  private seen(m: Member, key: string, at: number, createdAt?: Date): boolean {
    const had = m.seen.has(key)
    m.seen.set(key, Math.max(at, m.seen.get(key) ?? 0))
    let c = m.instance.createdAt
    if (createdAt && (!m.listed || createdAt < c)) {
      c = createdAt
      m.listed = true
    }
    return !had || c !== m.instance.createdAt ? this.update(m, c) : false
  }

  /** A new Instance object for a changed member, so that a snapshot taken before stays as it was. */
  private update(m: Member, createdAt: Date): true {
    m.instance = { ...m.instance, createdAt, addresses: [...m.seen.keys()] }
    return true
  }

  /**
   * Tells the listeners: `leave`, then `join` for each instance at once; `change` once for everything that changed
   * in this turn of the event loop (a burst of announcements builds one list, not one per announcement).
   */
  private emit(joined: Instance[], left: Instance[], changed: boolean): void {
    if (!joined.length && !left.length && !changed) return
    this.snap = undefined
    if (this.members.size < MAX_PRESENCE) this.full = false
    for (const i of left) this.call('leave', i)
    for (const i of joined) this.call('join', i)
    if (this.dirty || !this.fns.change.length) return
    this.dirty = true
    queueMicrotask(() => {
      this.dirty = false
      this.call('change', this.snapshot())
    })
  }

  private call(event: PresenceEvent, arg: unknown): void {
    for (const fn of this.fns[event]) this.client.callback(fn, `presence ${event}`, this.channel, arg)
  }
}

/** The presence of `channel` on `client` (one object per channel): `presenceOf(client, 'chat').on('join', fn)`. */
export function presenceOf(client: SockClient<any>, channel: string): Presence {
  client.checkWire(channel)
  if (!client.k.features.names.includes('presence')) {
    throw new ValidationError(
      'features',
      DEV ? `presence needs the presence feature: new SockClient({ features: [presence] }) with presence from 'sock-client/presence' (sock-client has it)` : 'presence feature missing',
    )
  }
  let byName = registry.get(client)
  if (!byName) registry.set(client, (byName = new Map()))
  let p = byName.get(channel)
  if (!p) byName.set(channel, (p = new Presence(client, channel)))
  return p
}

/** The presence of a channel, if anyone asked for it. */
const of = (ch: Channel): Presence | undefined => registry.get(ch.host)?.get(ch.name)

/** An announcement on every open connection of `ch` (one envelope id: a peer on several of its servers sees it once). */
function announce(ch: Channel, op: 'join' | 'leave'): void {
  if (!ch.host.k.presenceAnnounce) return
  const id = ch.host.nextId()
  ch.envelope(id, encodeEnvelope(id, PRESENCE_EVENT, { op })).catch(noop) // refused or dropped: REST still tells
}

/** A join announcement on the one connection that opened: the peers on its server learn this instance is there. */
function announceOn(ch: Channel, conn: Connection): void {
  if (!ch.host.k.presenceAnnounce || !conn.isOpen) return
  const id = ch.host.nextId()
  const frame = tryFrame(TYPE_EVENT, encodeEnvelope(id, PRESENCE_EVENT, { op: 'join' }), ch.host.k.maxFrameBytes) // about 70 bytes: always fits
  const r = frame === undefined ? undefined : conn.offer(frame)
  if (r?.status === 'queued') r.written.catch(noop) // dropped with the socket: REST still tells
}

/** The presence feature: `new SockClient({ features: [presence] })` (`sock-client` has it). */
export const presence: Feature = {
  name: 'presence',
  init(o: PresenceOptions, k: { presenceInterval?: number; presenceAnnounce?: boolean }) {
    k.presenceInterval = positive(o.presenceInterval, 'options.presenceInterval', 5000)
    if (o.presenceAnnounce !== undefined && typeof o.presenceAnnounce !== 'boolean')
      throw new ValidationError('options.presenceAnnounce', DEV ? 'options.presenceAnnounce must be true or false' : 'invalid presenceAnnounce')
    k.presenceAnnounce = o.presenceAnnounce !== false
  },
  events: {
    [PRESENCE_EVENT](data: unknown, from: string, ch: Channel, conn: Connection) {
      const op = (data as { op?: unknown } | null)?.op
      const p = of(ch)
      if (p && op === 'join') p.joined(from, String(conn.address))
      else if (p && op === 'leave') p.left(from)
      return HANDLED // never an application's event; an unknown op is for a later version
    },
  },
  watch(ch, conn, state) {
    if (state === 'open') {
      // After the channel's own 'open' and the frames queued before it: an announcement is never first in line.
      queueMicrotask(() => announceOn(ch, conn))
      if (conn.id) of(ch)?.joined(conn.id, String(conn.address))
    }
    if (state !== 'closed') of(ch)?.start() // after a rejoin: live again if someone listens
  },
  closing(ch) {
    if (ch.isOpen) announce(ch, 'leave')
    of(ch)?.stop(true)
  },
}
