/** The Sock REST routes over fetch, with a timeout and typed errors. Knows nothing of sockets. */
import type { Address } from './address'
import { RestError } from './errors'
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
}

/** Parses RFC 3339 with any number of fractional digits (Go sends nanoseconds). */
function parseTime(v: unknown): Date | undefined {
  if (typeof v !== 'string') return undefined
  const d = new Date(v.replace(/(\.\d{3})\d+/, '$1'))
  return isNaN(d.getTime()) ? undefined : d
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
  if (typeof f !== 'function') throw new RestError('ERR_NETWORK', 'no fetch() in this runtime: pass options.fetch')
  const ctrl = new AbortController()
  const timer = setTimeout(() => ctrl.abort(), o.timeout)
  let res: Response
  let body: string
  try {
    res = await f(url, { signal: ctrl.signal, headers: { accept: 'application/json' } })
    body = await res.text()
  } catch (e) {
    // The timer aborts the request or the body read; anything else is the network.
    if (ctrl.signal.aborted) throw new RestError('ERR_TIMEOUT', `GET ${url} got no answer within ${o.timeout} ms`, undefined, { cause: e })
    throw new RestError('ERR_NETWORK', `GET ${url} failed: ${(e as Error)?.message ?? e}`, undefined, { cause: e })
  } finally {
    clearTimeout(timer)
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
