/**
 * The REST feature (`sock-client/rest`): the Sock REST routes over fetch, with a timeout and typed errors
 * (`instances`, `instance`), and the registration check, which asks them whether the server still lists each
 * open instance of ours. Knows nothing of sockets.
 */
import type { Address } from './address'
import type { Channel } from './channel'
import { positive, type SockClient } from './client'
import { clock, type Connection } from './connection'
import { DEV } from './dev'
import { ConnectionError, RestError, type SockError } from './errors'
import type { Feature } from './feature'
import { checkChannel, checkId } from './protocol'

export interface Instance {
  channel: string
  id: string
  createdAt: Date
  /** The addresses (`String(address)`) whose server lists this instance. */
  addresses: string[]
}

export interface RestOptions {
  timeout: number
  fetch?: typeof fetch
  /** Ends the request early (presence polling that stopped). */
  signal?: AbortSignal
}

/** Parses RFC 3339 with any number of fractional digits (Go sends nanoseconds). */
function parseTime(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined
  const d = new Date(v.replace(/(\.\d{3})\d+/, '$1'))
  return Number.isNaN(d.getTime()) ? undefined : d
}

function toInstance(v: unknown, address: Address, url: string): Instance {
  const o = v as Record<string, unknown> | null
  const createdAt = parseTime(o?.created_at)
  if (!o || typeof o.channel !== 'string' || typeof o.id !== 'string' || !createdAt) {
    throw new RestError('ERR_PROTOCOL', `GET ${url} returned an entry that is not {channel, id, created_at}`)
  }
  return { channel: o.channel, id: o.id, createdAt, addresses: [String(address)] }
}

/** GET a JSON route; `undefined` on 404. */
async function get(url: string, o: RestOptions): Promise<unknown> {
  const f = o.fetch ?? globalThis.fetch
  if (typeof f !== 'function') throw new RestError('ERR_NETWORK', DEV ? 'no fetch() in this runtime: pass options.fetch' : 'no fetch()')
  const ctrl = new AbortController()
  const timer = setTimeout(() => ctrl.abort(), o.timeout)
  const stop = () => ctrl.abort()
  o.signal?.addEventListener('abort', stop)
  let res: Response
  let body: string
  try {
    if (o.signal?.aborted) throw o.signal.reason
    res = await f(url, { signal: ctrl.signal, headers: { accept: 'application/json' } })
    body = await res.text()
  } catch (e) {
    if (o.signal?.aborted) throw new RestError('ERR_ABORTED', `GET ${url} was aborted`, undefined, { cause: e })
    // The timer aborts the request or the body read; anything else is the network.
    if (ctrl.signal.aborted) throw new RestError('ERR_TIMEOUT', `GET ${url} got no answer within ${o.timeout} ms`, undefined, { cause: e })
    throw new RestError('ERR_NETWORK', `GET ${url} failed: ${(e as Error)?.message ?? e}`, undefined, { cause: e })
  } finally {
    clearTimeout(timer)
    o.signal?.removeEventListener('abort', stop)
  }
  if (res.status === 404) return undefined
  if (!res.ok) throw new RestError('ERR_HTTP', `GET ${url} answered ${res.status}${body ? `: ${body.slice(0, 200)}` : ''}`, res.status)
  try {
    return JSON.parse(body)
  } catch {
    throw new RestError('ERR_PROTOCOL', `GET ${url} answered ${res.status} with a body that is not JSON`, res.status)
  }
}

/** Every instance of `channel` on one address; `[]` when the channel is empty (404). */
export async function listInstances(address: Address, channel: string, o: RestOptions): Promise<Instance[]> {
  const url = `${address.httpUrl}/api/channel/${encodeURIComponent(checkChannel(channel))}`
  const v = await get(url, o)
  if (v === undefined) return []
  if (!Array.isArray(v)) throw new RestError('ERR_PROTOCOL', `GET ${url} did not return an array`)
  return v.map((x) => toInstance(x, address, url))
}

/** One instance on one address, or `null` (404). */
export async function getInstance(address: Address, channel: string, id: string, o: RestOptions): Promise<Instance | null> {
  const url = `${address.httpUrl}/api/channel/${encodeURIComponent(checkChannel(channel))}/${encodeURIComponent(checkId(id))}`
  const v = await get(url, o)
  return v === undefined ? null : toInstance(v, address, url)
}

/**
 * Asks every address and merges by id, recording where each instance was seen. Addresses that fail are
 * skipped while at least one answers; when none does, the first error is thrown.
 */
export async function mergeAll(addresses: readonly Address[], ask: (a: Address) => Promise<Instance | null | Instance[]>): Promise<Instance[]> {
  const results = await Promise.allSettled(addresses.map(ask))
  const ok = results.filter((r): r is PromiseFulfilledResult<Instance | null | Instance[]> => r.status === 'fulfilled')
  if (!ok.length) throw (results[0] as PromiseRejectedResult).reason
  const byId = new Map<string, Instance>()
  for (const r of ok) {
    for (const i of ([] as (Instance | null)[]).concat(r.value)) {
      if (!i) continue
      const seen = byId.get(i.id)
      if (!seen) byId.set(i.id, i)
      else {
        seen.addresses.push(...i.addresses)
        if (i.createdAt < seen.createdAt) seen.createdAt = i.createdAt
      }
    }
  }
  return [...byId.values()]
}

/** The REST feature's options (in `sock-client`'s `SockClientOptions`). */
export interface RestFeatureOptions {
  /** REST timeout in ms (default 5000). */
  restTimeout?: number
  /** fetch for REST; defaults to the global one. */
  fetch?: typeof fetch
  /**
   * Interval in ms of the registration check (default 60 000; 0 turns it off): REST tells whether the server still
   * lists this instance, which it may not while it still answers who-am-I (deregistered as a duplicate or as stale).
   * Turn it off for a server without REST routes, or behind a balancer whose nodes do not share their registry.
   */
  registrationCheck?: number
}

const DEFAULT_REST: RestOptions = { timeout: 5000 }
/** The client's REST options: its own with the rest feature, the defaults without it (`instances()` works on any client). */
const restOf = (client: SockClient<any>) => (client.k.rest as RestOptions | undefined) ?? DEFAULT_REST

/** Every instance in `channel`, from every address, merged by id (`[]` when nobody is in it). */
export function instances(client: SockClient<any>, channel: string): Promise<Instance[]> {
  client.checkWire(channel)
  return mergeAll(client.connection.addressesOrThrow(), (a) => listInstances(a, channel, restOf(client)))
}

/** One instance of `channel`, or `null`. */
export function instance(client: SockClient<any>, channel: string, id: string): Promise<Instance | null> {
  client.checkWire(channel)
  checkId(id)
  return mergeAll(client.connection.addressesOrThrow(), (a) => getInstance(a, channel, id, restOf(client))).then((all) => all[0] ?? null)
}

/**
 * The registration check: the reference server answers who-am-I even for an instance it no longer lists
 * (deregistered as a duplicate, or stale), which then stays open and deaf. REST says whether the server still lists
 * the instance, and with the `created_at` seen the first time, whether it is still ours. Its state is one number in
 * the connection's feature slot (`conn.ext`): 0 while nothing is known, the `created_at` (ms) once seen, -1 after a
 * failed check was reported; its timing, a deadline on the connection's own timer (`conn.wakeAt()`).
 */
function check(ch: Channel, conn: Connection): void {
  const id = conn.id
  const opened = conn.openedTime // tells this socket's check from one made on the next socket
  if (!id) return
  getInstance(conn.address, ch.name, id, ch.host.k.rest as RestOptions).then(
    (r) => checked(ch, conn, opened, id, r),
    (e: SockError) => checked(ch, conn, opened, id, e),
  )
}

function checked(ch: Channel, conn: Connection, opened: number, id: string, r: Instance | null | SockError): void {
  if (conn.openedTime !== opened || conn.state !== 'open') return // this socket is gone: its check says nothing
  if (r === null)
    return conn.drop(
      DEV ? `not registered: ${conn.address} no longer lists instance '${id}' in channel '${ch.name}' though it still answers (deregistered as a duplicate or as stale), rejoining` : 'not registered',
      true,
    )
  if (r instanceof Error) {
    if (conn.ext !== -1) {
      conn.ext = -1 // once: a server without REST routes would say so every interval
      ch.fail(
        conn,
        new ConnectionError(
          r.code,
          DEV ? `registration check of '${id}' in channel '${ch.name}' failed: ${r.message} (checks go on; set registrationCheck: 0 for a server without REST routes)` : 'registration check failed',
          undefined,
          { cause: r },
        ),
      )
    }
  } else {
    const created = r.createdAt.getTime()
    if ((conn.ext as number) > 0 && created !== conn.ext) {
      const error = new ConnectionError(
        'ERR_REJECTED',
        DEV
          ? `${conn.address} lists instance '${id}' in channel '${ch.name}' as created at ${r.createdAt.toISOString()}, not when we joined: another instance took the id and this connection no longer receives; give every client its own id`
          : 'id taken',
        1008,
      )
      return conn.reject(error, { code: 1008, reason: 'id taken by another instance' })
    }
    conn.ext = created
  }
  conn.wakeAt(clock() + (ch.host.k.registrationCheck as number))
}

/** The REST feature: `new SockClient({ features: [rest] })` (`sock-client` has it). */
export const rest: Feature = {
  name: 'rest',
  init(o: RestFeatureOptions, k: { rest?: RestOptions; registrationCheck?: number }) {
    k.rest = o.restTimeout === undefined && !o.fetch ? DEFAULT_REST : { timeout: positive(o.restTimeout, 'options.restTimeout', 5000) || 5000, fetch: o.fetch }
    k.registrationCheck = positive(o.registrationCheck, 'options.registrationCheck', 60_000)
  },
  // A check per open connection: the first one registrationCheck after it opened (a new socket starts afresh).
  watch(ch, conn, state) {
    const every = ch.host.k.registrationCheck as number
    if (state !== 'open' || !(every > 0)) return
    conn.ext = 0
    conn.wakeAt(clock() + every)
  },
  due: check,
}
