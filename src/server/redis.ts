/**
 * Scale-out for the embedded Sock server: several nodes share their channels through one Redis.
 *
 * - Relay: each node SUBSCRIBEs to `<prefix>m:<channel>` while it has a local instance in the channel, and
 *   PUBLISHes every relayed frame there, already encoded with the sender's `from`. A node skips what it
 *   published itself (its local peers got it directly), so every instance gets a frame exactly once and the
 *   sender never gets it back.
 * - Registry: one key per instance, `<prefix>i:<channel>:<id>`, holding its record, with a TTL of one ping
 *   window, refreshed by its node a few times per window: a node that dies has its instances gone within one
 *   window. `SET NX PX` makes a duplicate id fail on every node. `<prefix>c:<channel>` indexes the ids of a
 *   channel (a sorted set scored by expiry, pruned as it is read).
 * - Redis restart: ioredis reconnects and resubscribes by itself; on `ready` the node re-registers its instances
 *   at once (the refresh script recreates a missing key). Frames published while Redis is down are lost, as
 *   Redis pub/sub is at-most-once.
 * - Deadlines: every command has one (DEADLINE), a claim as a whole too. A Redis that stops answering (stopped,
 *   overloaded, a network black hole) makes REST answer 503 and joins close with 1013 within about a second; from
 *   the first missed deadline on, the bridge fails such calls at once, without queueing more commands, and probes
 *   Redis once per refresh tick until it answers again.
 * - Silent deaths: a node marks the record of an instance that went stale (`stale: true`); a join on any node may
 *   take over a stale record, or one whose node is gone. The old holder's node learns it on its next refresh and
 *   closes the old connection.
 *
 * This file is only loaded (and ioredis with it) when `createSockServer({ redis })` is given.
 */
import type { Redis as RedisClient, RedisOptions } from 'ioredis'
import { randomName } from './random'
import { missingPackage } from '../peer'
import { redactRedisUrl, redactSecrets } from './redis-url'

export interface RedisBridgeOptions {
  url: string
  /** Key and channel prefix, so several Sock clusters can share one Redis. */
  prefix: string
  /** Registry TTL in ms: the server's ping window. */
  ttl: number
  /** A relayed frame from another node, for every local instance of `channel`. */
  deliver: (channel: string, text: string, binary: boolean) => void
  /** Our claim on `channel`/`id` was lost (Redis lost it and another node took the id meanwhile). */
  lost: (channel: string, id: string) => void
  /** State changes of the Redis link, for the server's `redis` event. */
  state: (info: RedisStateInfo) => void
}

export interface RedisStateInfo {
  state: 'ready' | 'reconnecting' | 'error'
  /** The error, its message free of credentials. */
  error?: Error
}

/** `ok`, with `replaced` when the id was taken over from an instance that had died silently on another node. */
export type ClaimResult = { ok: true; replaced?: 'stale' | 'node-gone' } | { ok: false }

/** The deadline of each Redis command, and of a claim as a whole, in ms. */
export const DEADLINE = 1000
/** The deadline of the first connection (both links ready), in ms. */
export const CONNECT_DEADLINE = 5000

const STALLED = `Redis did not answer within ${DEADLINE} ms`

interface Local {
  value: string
  channel: string
  id: string
}

/** Lua, so that claim/refresh/release/list are each atomic. Keys are `[A-Za-z0-9]` names, so `:` separates. */
const CLAIM = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ARGV[4] == 'new' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl) then return redis.call('GET', KEYS[1]) or 0 end
elseif ARGV[4] == 'takeover' then
  local v = redis.call('GET', KEYS[1])
  if v ~= false and v ~= ARGV[5] then return v end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  local v = redis.call('GET', KEYS[1])
  if v == false then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  elseif v ~= ARGV[1] then return 0
  else redis.call('PEXPIRE', KEYS[1], ttl) end
end
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
`
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
`
const LIST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then out[#out + 1] = v end
end
return out
`

interface Scripts {
  /** 1 when claimed; otherwise the holder's record (or 0). */
  sockClaim(instanceKey: string, indexKey: string, value: string, ttl: number, id: string, mode: 'new' | 'refresh' | 'takeover', expected?: string): Promise<number | string>
  sockRelease(instanceKey: string, indexKey: string, value: string, id: string): Promise<number>
  sockList(indexKey: string, instancePrefix: string): Promise<string[]>
}

/** Rejects with `message` unless `p` settles within `ms`; `late()` runs if it does not. */
function deadline<T>(p: Promise<T>, ms: number, message: string, late: () => void = () => {}): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late()
        reject(new Error(message))
      }, ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

function scrub(e: unknown, url: string): Error {
  return new Error(redactSecrets(e instanceof Error ? e.message : String(e), url))
}

const NODE_ID_LENGTH = 16

function recordOf(record: string): { node?: string; stale: boolean } {
  try {
    const r = JSON.parse(record) as { node?: unknown; stale?: unknown }
    return { node: typeof r.node === 'string' ? r.node : undefined, stale: r.stale === true }
  } catch {
    return { stale: false }
  }
}

export class RedisBridge {
  /** This node's id: tells our own publications apart. */
  readonly node = randomName(NODE_ID_LENGTH)
  private readonly pub: RedisClient & Scripts
  private readonly sub: RedisClient
  private readonly locals = new Map<string, Local>()
  private readonly subs = new Map<string, { count: number; ready: Promise<unknown>; failed: boolean }>()
  private readonly ticker: ReturnType<typeof setInterval>
  private dead = false
  /** A command missed its deadline and Redis has not answered since: calls fail at once. */
  private stalled = false
  /** A refresh (or, while stalled, a probe) is under way: the next tick does not queue another. */
  private refreshing = false

  private constructor(
    Redis: typeof RedisClient,
    private readonly o: RedisBridgeOptions,
  ) {
    const common: RedisOptions = {
      lazyConnect: true,
      connectTimeout: 5000,
      // Reconnect quickly (a restarted Redis should be found within half a second), forever.
      retryStrategy: (times) => Math.min(50 * times, 500),
      // A command waits for at most two reconnects: joins fail with 1013 and REST with 503 instead of hanging.
      maxRetriesPerRequest: 2,
      // ... and for at most DEADLINE for an answer, as when Redis is stopped (SIGSTOP) but its socket is open.
      commandTimeout: DEADLINE,
      enableAutoPipelining: true,
    }
    this.pub = new Redis(o.url, { ...common, connectionName: `sock-${this.node}-pub` }) as RedisClient & Scripts
    this.sub = new Redis(o.url, { ...common, connectionName: `sock-${this.node}-sub`, autoResubscribe: true, enableAutoPipelining: false })
    this.pub.defineCommand('sockClaim', { numberOfKeys: 2, lua: CLAIM })
    this.pub.defineCommand('sockRelease', { numberOfKeys: 2, lua: RELEASE })
    this.pub.defineCommand('sockList', { numberOfKeys: 1, lua: LIST })
    const prefix = this.o.prefix + 'm:'
    const mine = this.node
    this.sub.on('messageBuffer', (ch: Buffer, msg: Buffer) => {
      // `<t|b><node id><frame>`; our own frames were delivered locally already.
      if (msg.length <= 1 + NODE_ID_LENGTH || msg.toString('latin1', 1, 1 + NODE_ID_LENGTH) === mine) return
      const channel = ch.toString().slice(prefix.length)
      this.o.deliver(channel, msg.toString('utf8', 1 + NODE_ID_LENGTH), msg[0] === 0x62)
    })
    let down = false
    for (const c of [this.pub, this.sub]) {
      c.on('error', (e) => {
        if (!this.dead) this.o.state({ state: 'error', error: scrub(e, o.url) })
      })
      c.on('reconnecting', () => {
        if (!this.dead && c === this.pub) {
          down = true
          this.o.state({ state: 'reconnecting' })
        }
      })
    }
    this.pub.on('ready', () => {
      if (this.dead || !down) return
      down = false
      void this.refresh() // Redis may have restarted empty: register our instances again at once
      this.o.state({ state: 'ready' })
    })
    this.ticker = setInterval(() => void this.refresh(), Math.max(10, Math.floor(o.ttl / 4)))
    this.ticker.unref()
  }

  /** Connects both links; rejects with a clear message (no credentials) when Redis cannot be reached. */
  static async connect(o: RedisBridgeOptions): Promise<RedisBridge> {
    // An optional peer dependency: a MissingPackageError naming `npm i ioredis` when it is not installed.
    const mod = (await import('ioredis').catch((e: unknown) => Promise.reject(missingPackage(e, 'ioredis', 'createSockServer({ redis })')))) as unknown as {
      Redis?: typeof RedisClient
      default?: typeof RedisClient | { Redis?: typeof RedisClient }
    }
    const Redis = mod.Redis ?? (typeof mod.default === 'function' ? mod.default : mod.default?.Redis)
    if (!Redis) throw new Error('createSockServer: the ioredis package has no Redis export')
    const bridge = new RedisBridge(Redis, o)
    try {
      // A Redis that accepts the connection and never answers would keep `connect()` waiting forever.
      await deadline(Promise.all([bridge.pub.connect(), bridge.sub.connect()]), CONNECT_DEADLINE, `no answer within ${CONNECT_DEADLINE} ms`)
    } catch (e) {
      await bridge.close({ abrupt: true })
      throw new Error(`createSockServer: cannot reach Redis at ${redactRedisUrl(o.url)}: ${scrub(e, o.url).message}`)
    }
    return bridge
  }

  private key(channel: string, id: string): string {
    return `${this.o.prefix}i:${channel}:${id}`
  }

  private index(channel: string): string {
    return `${this.o.prefix}c:${channel}`
  }

  /**
   * Claims `id` in `channel` for this node (atomic across nodes) and makes sure this node receives the channel
   * before it resolves; `{ ok: false }` when another live instance, on any node, holds the id. Rejects within
   * DEADLINE when Redis does not answer (a claim that succeeds later is released at once).
   */
  claim(channel: string, id: string, createdAt: string): Promise<ClaimResult> {
    if (this.stalled) return Promise.reject(new Error(STALLED))
    let late = false
    const work = this.tryClaim(channel, id, createdAt)
    work.then(
      (r) => void (late && r.ok && this.release(channel, id)),
      () => {},
    )
    return deadline(work, DEADLINE, STALLED, () => {
      late = true
      this.stall()
    })
  }

  private async tryClaim(channel: string, id: string, createdAt: string): Promise<ClaimResult> {
    const value = JSON.stringify({ channel, id, created_at: createdAt, node: this.node })
    const subscribed = this.subscribe(channel)
    let replaced: 'stale' | 'node-gone' | undefined
    try {
      let [ok] = await Promise.all([this.run(this.pub.sockClaim(this.key(channel, id), this.index(channel), value, this.o.ttl, id, 'new')), subscribed])
      if (typeof ok === 'string') {
        // Held by an instance that died silently: marked stale by its node, or on a node that is gone (crashed,
        // its link to Redis closed) but not expired yet. Take the id over, so that a client failing over or
        // reconnecting keeps its id instead of waiting out the registry TTL. Held by this node for an instance it
        // no longer has (`forget()`: a local join replaced it): take it over too.
        const { node, stale } = recordOf(ok)
        const forgotten = node === this.node && !this.locals.has(`${channel}:${id}`)
        if (!forgotten && node !== this.node) replaced = stale ? 'stale' : node && !(await this.run(this.liveNodes())).has(node) ? 'node-gone' : undefined
        if (forgotten || replaced) ok = await this.run(this.pub.sockClaim(this.key(channel, id), this.index(channel), value, this.o.ttl, id, 'takeover', ok))
      }
      if (ok !== 1) {
        this.unsubscribe(channel)
        return { ok: false }
      }
    } catch (e) {
      this.unsubscribe(channel)
      throw scrub(e, this.o.url)
    }
    this.locals.set(`${channel}:${id}`, { value, channel, id })
    return replaced ? { ok: true, replaced } : { ok: true }
  }

  /** Runs one Redis command: a missed deadline marks Redis as stalled, any answer as back. */
  private run<T>(p: Promise<T>): Promise<T> {
    return p.then(
      (v) => {
        if (this.stalled && !this.dead) {
          this.stalled = false
          this.o.state({ state: 'ready' })
        }
        return v
      },
      (e: unknown) => {
        if (e instanceof Error && /timed out/.test(e.message)) this.stall()
        throw e
      },
    )
  }

  private stall(): void {
    if (this.stalled || this.dead) return
    this.stalled = true
    this.o.state({ state: 'error', error: new Error(`${STALLED}: REST answers 503 and joins are closed with 1013 until it does`) })
  }

  /** An instance of this node went stale: say so in its record, so that a join on any node may take its id over. */
  markStale(channel: string, id: string): void {
    const k = `${channel}:${id}`
    const l = this.locals.get(k)
    if (!l || this.dead || this.stalled) return
    const before = l.value
    const value = `${before.slice(0, -1)},"stale":true}`
    this.run(this.pub.sockClaim(this.key(channel, id), this.index(channel), value, this.o.ttl, id, 'takeover', before)).then(
      (r) => {
        if (this.locals.get(k) !== l || l.value !== before) return
        if (r === 1) l.value = value
        else this.lose(k, l)
      },
      () => {}, // Redis unreachable: the next sweep of a stale instance does not retry, its TTL will tell
    )
  }

  /** The ids of the nodes connected to Redis now (each names its links `sock-<node>-pub` / `-sub`). */
  private async liveNodes(): Promise<Set<string>> {
    const list = (await this.pub.client('LIST')) as unknown as string
    const live = new Set<string>()
    for (const m of list.matchAll(/\bname=sock-([A-Za-z0-9]+)-pub\b/g)) live.add(m[1]!)
    return live
  }

  /** Stops refreshing a claim without deleting it: the next `claim()` of this id on this node takes it over. */
  forget(channel: string, id: string): void {
    if (this.locals.delete(`${channel}:${id}`)) this.unsubscribe(channel)
  }

  /** Gives up a claim made by `claim()` (the instance left). Never throws. */
  async release(channel: string, id: string): Promise<void> {
    const local = this.locals.get(`${channel}:${id}`)
    if (!local || this.dead) return
    this.locals.delete(`${channel}:${id}`)
    this.unsubscribe(channel)
    if (this.stalled) return // it expires within one TTL, as nothing refreshes it now
    await this.pub.sockRelease(this.key(channel, id), this.index(channel), local.value, id).catch(() => {})
  }

  private subscribe(channel: string): Promise<unknown> {
    let s = this.subs.get(channel)
    if (!s) this.subs.set(channel, (s = { count: 0, ready: Promise.resolve(), failed: true }))
    if (s.failed) {
      // First join, or the last SUBSCRIBE failed (Redis was down): (re)issue it.
      const entry = s
      entry.failed = false
      entry.ready = this.sub.subscribe(this.o.prefix + 'm:' + channel).catch((e: unknown) => {
        entry.failed = true
        throw e
      })
    }
    s.count++
    return s.ready
  }

  private unsubscribe(channel: string): void {
    const s = this.subs.get(channel)
    if (!s || --s.count > 0) return
    this.subs.delete(channel)
    // Commands on one link run in order: a later SUBSCRIBE of the same channel still wins.
    if (!this.dead) this.sub.unsubscribe(this.o.prefix + 'm:' + channel).catch(() => {})
  }

  /** Sends a relayed frame (already encoded, `from` set) to the other nodes. */
  publish(channel: string, text: string, binary: boolean): void {
    if (this.dead || this.stalled) return // pub/sub is at-most-once: no queue of frames for a Redis that stalls
    this.pub.publish(this.o.prefix + 'm:' + channel, (binary ? 'b' : 't') + this.node + text).catch(() => {})
  }

  /** Every instance of `channel` on every node, oldest first. */
  async list(channel: string): Promise<{ channel: string; id: string; created_at: string }[]> {
    if (this.stalled) throw new Error(STALLED)
    const raw = await this.run(this.pub.sockList(this.index(channel), `${this.o.prefix}i:${channel}:`))
    const out: { channel: string; id: string; created_at: string }[] = []
    for (const v of raw) {
      try {
        const r = JSON.parse(v) as { channel: string; id: string; created_at: string }
        out.push({ channel: r.channel, id: r.id, created_at: r.created_at })
      } catch {}
    }
    return out.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1))
  }

  /** One instance on any node, or `undefined`. */
  async get(channel: string, id: string): Promise<{ channel: string; id: string; created_at: string } | undefined> {
    if (this.stalled) throw new Error(STALLED)
    const v = await this.run(this.pub.get(this.key(channel, id)))
    if (v === null) return undefined
    const r = JSON.parse(v) as { channel: string; id: string; created_at: string }
    return { channel: r.channel, id: r.id, created_at: r.created_at }
  }

  /**
   * Extends (or, after Redis lost them, recreates) this node's registrations; while Redis is stalled, probes it
   * instead. One at a time: a Redis that does not answer does not collect a queue of refreshes.
   */
  private async refresh(): Promise<void> {
    if (this.dead || this.refreshing || this.pub.status !== 'ready') return
    this.refreshing = true
    try {
      if (this.stalled) return void (await this.run(this.pub.ping()).catch(() => {}))
      if (!this.locals.size) return
      const locals = [...this.locals.values()].map((l) => ({ l, value: l.value }))
      const results = await Promise.all(locals.map(({ l, value }) => this.run(this.pub.sockClaim(this.key(l.channel, l.id), this.index(l.channel), value, this.o.ttl, l.id, 'refresh')).catch(() => 1)))
      results.forEach((r, i) => {
        const { l, value } = locals[i]!
        // Lost, unless the record changed meanwhile on purpose (markStale) or the instance is gone already.
        if (r === 0 && l.value === value) this.lose(`${l.channel}:${l.id}`, l)
      })
    } finally {
      this.refreshing = false
    }
  }

  private lose(k: string, l: Local): void {
    if (this.locals.get(k) !== l) return
    this.locals.delete(k)
    this.unsubscribe(l.channel)
    this.o.lost(l.channel, l.id)
  }

  /**
   * Graceful: waits for pending releases, then says goodbye to Redis. Abrupt: drops both links at once, as a
   * crash would: the registrations stay until they expire.
   */
  async close(options: { abrupt?: boolean } = {}): Promise<void> {
    clearInterval(this.ticker)
    if (!options.abrupt && !this.dead && this.pub.status === 'ready') {
      const left = [...this.locals.values()]
      await Promise.race([Promise.all(left.map((l) => this.release(l.channel, l.id))), new Promise((r) => setTimeout(r, 1000).unref())])
      await Promise.race([Promise.all([this.pub.quit(), this.sub.quit()]).catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())])
    }
    this.dead = true
    this.locals.clear()
    this.pub.disconnect()
    this.sub.disconnect()
  }
}
