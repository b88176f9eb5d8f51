/**
 * The addresses feature (`sock-client/addresses`): every pocketsocket `setup()` form beyond one address (lists,
 * `(hosts[], ports[], 'mix' | 'flat')`, named addresses), `list('mix' | 'flat')`, and several servers at once: in
 * broadcast mode a channel holds one connection per address, sends on every open one, and delivers a message that
 * arrives over several servers once (by envelope id), ignoring what its own instances on other servers relay back.
 * Failover needs nothing more than the core: its one connection rotates through the addresses.
 */
import {
  AddressBook as Book,
  asList,
  checkMode,
  makeAddress,
  parseAddress,
  show,
  type Address,
  type AddressList,
  type ListType,
  type NamedAddress,
  type Parsed,
  type Port,
  type SetupForms,
} from './address'
import { Channel, type ChannelHost, type SendReport, type Tracker } from './channel'
import type { Connection } from './connection'
import { DEV } from './dev'
import { AddressError, type SockError } from './errors'
import { hideSecrets } from './secrets'
import type { Feature } from './feature'

/** How many recent message ids a channel on several servers remembers to deliver each message once (ids are at most 64 characters). */
const DEDUPE_WINDOW = 4096

/** The address-major cartesian product: `a:1, a:2, b:1, b:2`. */
export function mix(hosts: readonly string[], ports: readonly Port[]): AddressList {
  return asList(hosts.flatMap((h) => ports.map((p) => makeAddress(h, p))))
}

/** Pairs hosts and ports by index; throws `AddressError` (with both arrays) when their lengths differ. */
export function flat(hosts: readonly string[], ports: readonly Port[]): AddressList {
  if (hosts.length !== ports.length) {
    const err = new AddressError(
      [hosts, ports],
      DEV ? `flat list needs as many ports as hosts: got ${hosts.length} hosts and ${ports.length} ports; use 'mix' for every combination` : 'flat: lengths differ',
    )
    err.ips = hosts.map(hideSecrets)
    err.ports = ports
    throw err
  }
  return asList(hosts.map((h, i) => makeAddress(h, ports[i])))
}

function checkList(v: unknown): ListType {
  if (v !== undefined && v !== 'mix' && v !== 'flat') throw new AddressError(v, DEV ? `invalid list type ${show(v)}: use 'mix' or 'flat'` : 'invalid list type')
  return v ?? 'mix'
}

/** Every `setup()` form beyond the core's one address. */
function parse(args: unknown[]): Parsed {
  const [a, b, c, d] = args
  let p: Parsed
  if (Array.isArray(a)) {
    if (a.length === 0) throw new AddressError(a, DEV ? 'setup() got an empty list of addresses' : 'empty list')
    if (Array.isArray(b)) {
      const listType = checkList(c)
      const [hosts, ports] = [a as string[], b as Port[]]
      p = { entries: listType === 'flat' ? flat(hosts, ports) : mix(hosts, ports), hosts, ports, listType, mode: checkMode(d) }
    } else p = { entries: a.map((x) => parseAddress(x)), mode: checkMode(b) }
  } else if (a !== null && typeof a === 'object') {
    const entries = Object.entries(a as Record<string, NamedAddress>).map(([name, v]) => {
      if (typeof v === 'string') return parseAddress(v, name)
      if (Array.isArray(v)) return makeAddress(v[0], v[1], name, false, '', v)
      if (v && typeof v === 'object') return makeAddress((v as { ip: string }).ip, (v as { port: Port }).port, name, false, '', v)
      throw new AddressError(v, DEV ? `invalid address ${show(v)} for '${name}': use [host, port], { ip, port } or a URL` : 'invalid address')
    })
    if (entries.length === 0) throw new AddressError(a, DEV ? 'setup() got an empty object of addresses' : 'empty object')
    p = { entries, mode: checkMode(b) }
  } else {
    throw new AddressError(a, DEV ? `setup() cannot use ${show(a)}: give 'host:port', (host, port), (hosts[], ports[], 'mix' | 'flat', mode), a URL or { name: [host, port] }` : 'invalid setup()')
  }
  const seen = new Set<string>()
  for (const e of p.entries) {
    if (seen.has(e.url)) throw new AddressError(String(e), DEV ? `address ${e} is listed twice` : 'listed twice')
    seen.add(e.url)
  }
  return p
}

const forms: SetupForms = {
  parse,
  list(hosts, ports, kind) {
    if (kind !== 'mix' && kind !== 'flat') throw new AddressError(kind, DEV ? `invalid list type ${show(kind)}: use 'mix' or 'flat'` : 'invalid list type')
    return kind === 'flat' ? flat(hosts, ports) : mix(hosts, ports)
  },
}

/**
 * A channel on several servers at once (broadcast mode): one connection per address, each staying on its own.
 * Sends on every connection and resolves once one wrote it, with the outcome per address.
 */
export class BroadcastChannel extends Channel {
  private seen: Set<string> | undefined

  constructor(name: string, addresses: readonly Address[], host: ChannelHost) {
    super(name, addresses, host, addresses.length)
  }

  /** Each connection keeps its own address. */
  override next(conn: Connection): Address {
    return conn.address
  }

  /** A frame from one of our own instances: several servers sharing a channel relay it back to us. */
  override isOwn(from: string): boolean {
    for (const c of this.connections) if (c.id === from) return true
    return false
  }

  /** True the first time message `id` is seen; the last DEDUPE_WINDOW ids are remembered (bounded memory). */
  override firstTime(id: string): boolean {
    const seen = (this.seen ??= new Set())
    if (seen.has(id)) return false
    seen.add(id)
    if (seen.size > DEDUPE_WINDOW) seen.delete(seen.values().next().value!)
    return true
  }

  /** Sends on every connection. Resolves once at least one wrote it, with the outcome per address; rejects when none can (the first reason). */
  override send(text: string, track?: Tracker): Promise<SendReport> {
    const report: SendReport = { sent: [], queued: [], failed: [] }
    let waits: Promise<[queuedFor: string, writtenTo: string]>[] | undefined
    for (const c of this.connections) {
      const address = String(c.address)
      const r = c.offer(text)
      if (track) track.offered(c, r)
      if (r.status === 'sent') report.sent.push(address)
      else if (r.status === 'failed') report.failed.push({ address, error: r.error })
      else {
        report.queued.push(address)
        const w = r.written.then((to): [string, string] => [address, to])
        w.catch(() => {}) // unless awaited below, its fate is reported by the close or give-up that drops it
        ;(waits ??= []).push(w)
      }
    }
    if (report.sent.length) return Promise.resolve(report)
    if (!waits) return Promise.reject(report.failed[0]!.error)
    return Promise.any(waits).then(
      ([queuedFor, writtenTo]) => {
        report.queued.splice(report.queued.indexOf(queuedFor), 1)
        report.sent.push(writtenTo)
        return report
      },
      (e: AggregateError) => {
        throw e.errors[0] as SockError
      },
    )
  }
}

/** The addresses feature: `new SockClient({ features: [addresses] })` (`sock-client` has it). */
export const addresses: Feature = {
  name: 'addresses',
  setup: forms,
  channel: (name, list, mode, host) => (mode === 'broadcast' && list.length > 1 ? new BroadcastChannel(name, list, host) : undefined),
}

/** The address book with every `setup()` form (what `client.connection` is in `sock-client`). */
export class AddressBook extends Book {
  constructor() {
    super(forms)
  }
}

export { parseAddress, makeAddress }
