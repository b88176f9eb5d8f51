/**
 * Addresses: every pocketsocket `setup()` form, URL parsing (ws://, wss://, IPv6, base paths) and the
 * `mix` / `flat` enumerations. Knows nothing of sockets.
 */
import { AddressError, hideSecrets } from './errors'

export type Mode = 'broadcast' | 'failover'
export type ListType = 'mix' | 'flat'

export interface Address {
  /** The name given in an object form of `setup()`, else `ip:port`. */
  readonly name: string
  /** Host name or IP (IPv6 without brackets). */
  readonly ip: string
  readonly port: number
  readonly secure: boolean
  /** Base path before the Sock routes, `''` or `/sock`. */
  readonly path: string
  /** `ws[s]://host:port[/base]`, the prefix of every channel URL. */
  readonly url: string
  /** `http[s]://host:port[/base]`, the prefix of the REST routes. */
  readonly httpUrl: string
  /** `ip:port` (`[v6]:port`), or the base URL when it is secure or has a path. */
  toString(): string
  /** The same string as `toString()`, so `JSON.stringify(client.connection.list())` gives `["ip:port", ...]`. */
  toJSON(): string
}

export interface AddressList extends Array<Address> {
  /** `['ip:port', ...]` */
  toArray(): string[]
}

export type Port = number | string
export type NamedAddress = readonly [string, Port] | { ip: string; port: Port } | string

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/
const V6_RE = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?$/

function checkPort(port: unknown, input: unknown): number {
  const n = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new AddressError(input, `invalid port ${JSON.stringify(port)} in ${show(input)}: use an integer from 1 to 65535`)
  }
  return n
}

function checkHost(host: unknown, input: unknown): string {
  if (typeof host !== 'string' || host === '') {
    throw new AddressError(input, `missing host in ${show(input)}: use 'host:port', [host, port] or a ws:// URL`)
  }
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (!HOST_RE.test(bare) && !V6_RE.test(bare)) {
    throw new AddressError(input, `invalid host ${JSON.stringify(host)} in ${show(input)}: use a host name, an IPv4 address or an IPv6 address`)
  }
  return bare
}

/** The value as an error shows it: strings in quotes, and never a credential (see `AddressError`). */
function show(v: unknown): string {
  try {
    return typeof v === 'string' ? `'${hideSecrets(v)}'` : hideSecrets(JSON.stringify(v) ?? String(v))
  } catch {
    return hideSecrets(String(v))
  }
}

/**
 * An address: immutable, its strings built once, its methods on the prototype. Clients set up with the same
 * address share one (see `makeAddress`), and with it `alone`, the one-address list a connection rotates through.
 */
class SockAddress implements Address {
  readonly alone: readonly Address[] = Object.freeze([this])

  constructor(
    readonly name: string,
    readonly ip: string,
    readonly port: number,
    readonly secure: boolean,
    readonly path: string,
    readonly url: string,
    private readonly str: string,
  ) {}

  get httpUrl(): string {
    return `http${this.url.slice(2)}`
  }

  toString(): string {
    return this.str
  }

  /** `JSON.stringify` gives the same string as `toString()` (the object itself refers to itself through `alone`). */
  toJSON(): string {
    return this.str
  }
}

/** Builds an address from its parts; validates host and port. */
export function makeAddress(host: unknown, port: unknown, name?: string, secure = false, path = '', input: unknown = `${host}:${port}`): Address {
  const ip = checkHost(host, input)
  const p = checkPort(port, input)
  const hostPort = `${ip.includes(':') ? `[${ip}]` : ip}:${p}`
  const base = path.replace(/\/+$/, '')
  const url = `${secure ? 'wss' : 'ws'}://${hostPort}${base}`
  const str = !secure && !base ? hostPort : url
  const n = name ?? str
  // Most programs give every client the same address: the one built last is reused when it is equal.
  if (last?.url === url && last.name === n) return last
  return (last = new SockAddress(n, ip, p, secure, base, url, str))
}
let last: SockAddress | undefined

/** A list of one address, shared by everyone who uses that address alone. */
export function alone(a: Address): readonly Address[] {
  return a instanceof SockAddress ? a.alone : [a]
}

/**
 * Parses `'host:port'`, `'[v6]:port'` or a `ws://`, `wss://`, `http://`, `https://` URL (with an optional base
 * path; the port defaults to the scheme's).
 */
export function parseAddress(input: unknown, name?: string): Address {
  if (typeof input !== 'string' || input.trim() === '') {
    throw new AddressError(input, `invalid address ${show(input)}: use 'host:port' or a ws:// URL`)
  }
  const s = input.trim()
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s)
  if (scheme) {
    const proto = scheme[1]!.toLowerCase()
    if (!['ws', 'wss', 'http', 'https'].includes(proto)) {
      throw new AddressError(input, `unsupported scheme '${proto}:' in ${show(input)}: use ws://, wss://, http:// or https://`)
    }
    let u: URL
    try {
      u = new URL(s)
    } catch {
      throw new AddressError(input, `invalid URL ${show(input)}`)
    }
    if (u.search || u.hash || u.username || u.password) {
      throw new AddressError(input, `${show(input)} has a query, fragment or credentials: give only scheme, host, port and base path (pass the token as an option)`)
    }
    const secure = proto === 'wss' || proto === 'https'
    const port = u.port === '' ? (secure ? 443 : 80) : u.port
    return makeAddress(u.hostname, port, name, secure, u.pathname === '/' ? '' : u.pathname, input)
  }
  const m = /^(\[[^\]]*\]|[^:]*):(\d*)$/.exec(s)
  if (!m) {
    if (s.includes('/')) throw new AddressError(input, `invalid address ${show(input)}: a path needs a scheme, as in 'ws://${s}'`)
    if (s.split(':').length > 2) throw new AddressError(input, `invalid address ${show(input)}: put an IPv6 address in brackets, as in '[::1]:3000'`)
    throw new AddressError(input, `missing port in ${show(input)}: use 'host:port', as in '${s}:3000'`)
  }
  if (m[2] === '') throw new AddressError(input, `missing port in ${show(input)}: use 'host:port'`)
  return makeAddress(m[1], m[2], name, false, '', input)
}

function asList(items: Address[]): AddressList {
  const list = items as AddressList
  list.toArray = () => items.map(String)
  list.toString = () => list.toArray().join(',')
  return list
}

/** The address-major cartesian product: `a:1, a:2, b:1, b:2`. */
export function mix(hosts: readonly string[], ports: readonly Port[]): AddressList {
  return asList(hosts.flatMap((h) => ports.map((p) => makeAddress(h, p))))
}

/** Pairs hosts and ports by index; throws `AddressError` (with both arrays) when their lengths differ. */
export function flat(hosts: readonly string[], ports: readonly Port[]): AddressList {
  if (hosts.length !== ports.length) {
    const err = new AddressError([hosts, ports], `flat list needs as many ports as hosts: got ${hosts.length} hosts and ${ports.length} ports; use 'mix' for every combination`)
    err.ips = hosts.map(hideSecrets)
    err.ports = ports
    throw err
  }
  return asList(hosts.map((h, i) => makeAddress(h, ports[i])))
}

/** A mode, or undefined; pocketsocket's documented name `overflow` means `failover`. */
function checkMode(v: unknown): Mode | undefined {
  if (v === 'overflow') return 'failover'
  if (v === undefined || v === 'broadcast' || v === 'failover') return v
  throw new AddressError(v, `invalid mode ${show(v)}: use 'broadcast' or 'failover'`)
}

/** Arguments `setup()` accepts. */
export type SetupArgs =
  | [address: string, mode?: Mode | 'overflow']
  | [host: string, port: Port, mode?: Mode | 'overflow']
  | [hosts: readonly string[], ports: readonly Port[], listType?: ListType, mode?: Mode | 'overflow']
  | [addresses: readonly string[], mode?: Mode | 'overflow']
  | [named: Readonly<Record<string, NamedAddress>>, mode?: Mode | 'overflow']

const NONE: readonly Address[] = Object.freeze([])

/**
 * The addresses a client connects to: what `setup()` was given, its enumeration and the mode.
 * `client.connection` is one of these.
 */
export class AddressBook {
  mode: Mode = 'broadcast'
  listType: ListType = 'mix'
  private hosts: readonly string[] | undefined
  private ports: readonly Port[] | undefined
  private entries: readonly Address[] = NONE

  /** Replaces the addresses with the ones `args` describe (every pocketsocket form). */
  set(...args: SetupArgs | unknown[]): this {
    const [a, b, c, d] = args as unknown[]
    let entries: readonly Address[]
    let hosts: readonly string[] | undefined
    let ports: readonly Port[] | undefined
    let listType: ListType = 'mix'
    let mode: Mode | undefined
    if (typeof a === 'string') {
      if (b === undefined || (typeof b === 'string' && !/^\d+$/.test(b))) {
        entries = alone(parseAddress(a))
        mode = checkMode(b)
      } else {
        entries = alone(makeAddress(a, b))
        mode = checkMode(c)
      }
    } else if (Array.isArray(a)) {
      if (a.length === 0) throw new AddressError(a, 'setup() got an empty list of addresses')
      if (Array.isArray(b)) {
        if (c !== undefined && c !== 'mix' && c !== 'flat') throw new AddressError(c, `invalid list type ${show(c)}: use 'mix' or 'flat'`)
        listType = c ?? 'mix'
        hosts = a as string[]
        ports = b as Port[]
        entries = listType === 'flat' ? flat(hosts, ports) : mix(hosts, ports)
        mode = checkMode(d)
      } else {
        entries = a.map((x) => parseAddress(x))
        mode = checkMode(b)
      }
    } else if (a !== null && typeof a === 'object') {
      entries = Object.entries(a as Record<string, NamedAddress>).map(([name, v]) => {
        if (typeof v === 'string') return parseAddress(v, name)
        if (Array.isArray(v)) return makeAddress(v[0], v[1], name, false, '', v)
        if (v && typeof v === 'object') return makeAddress((v as { ip: string }).ip, (v as { port: Port }).port, name, false, '', v)
        throw new AddressError(v, `invalid address ${show(v)} for '${name}': use [host, port], { ip, port } or a URL`)
      })
      if (entries.length === 0) throw new AddressError(a, 'setup() got an empty object of addresses')
      mode = checkMode(b)
    } else {
      throw new AddressError(a, `setup() cannot use ${show(a)}: give 'host:port', (host, port), (hosts[], ports[], 'mix' | 'flat', mode), a URL or { name: [host, port] }`)
    }
    const seen = new Set<string>()
    for (const e of entries) {
      if (seen.has(e.url)) throw new AddressError(String(e), `address ${e} is listed twice`)
      seen.add(e.url)
    }
    this.hosts = hosts
    this.ports = ports
    this.listType = listType
    this.entries = entries
    this.mode = mode ?? 'broadcast'
    return this
  }

  /** The addresses in use, or enumerated as `mix` / `flat` from the arrays given to `setup()`. */
  list(kind?: ListType): AddressList {
    if (kind === undefined || !this.hosts || !this.ports) return asList([...this.entries])
    if (kind !== 'mix' && kind !== 'flat') throw new AddressError(kind, `invalid list type ${show(kind)}: use 'mix' or 'flat'`)
    return kind === 'flat' ? flat(this.hosts, this.ports) : mix(this.hosts, this.ports)
  }

  isSetup(): boolean {
    return this.entries.length > 0
  }

  /** Forgets every address. */
  clear(): void {
    this.entries = NONE
    this.hosts = this.ports = undefined
  }

  toString(): string {
    return String(this.list())
  }
}
