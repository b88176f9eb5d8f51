/**
 * Addresses: one address as `'host:port'`, `(host, port)` or a URL (ws://, wss://, IPv6, base paths), and the
 * address book a client keeps (`client.connection`). Every other pocketsocket `setup()` form (lists, `mix` / `flat`,
 * named addresses) is the addresses feature's (`./addresses`), which the book calls when it is composed in.
 * Knows nothing of sockets.
 */
import { DEV } from './dev'
import { AddressError, ValidationError } from './errors'
import { hideSecrets } from './secrets'

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
    throw new AddressError(input, DEV ? `invalid port ${JSON.stringify(port)} in ${show(input)}: use an integer from 1 to 65535` : 'invalid port')
  }
  return n
}

function checkHost(host: unknown, input: unknown): string {
  if (typeof host !== 'string' || host === '') {
    throw new AddressError(input, DEV ? `missing host in ${show(input)}: use 'host:port', [host, port] or a ws:// URL` : 'missing host')
  }
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (!HOST_RE.test(bare) && !V6_RE.test(bare)) {
    throw new AddressError(input, DEV ? `invalid host ${JSON.stringify(host)} in ${show(input)}: use a host name, an IPv4 address or an IPv6 address` : 'invalid host')
  }
  return bare
}

/** The value as an error shows it: strings in quotes, and never a credential (see `AddressError`). */
export function show(v: unknown): string {
  let t: string
  try {
    t = typeof v === 'string' ? `'${v}'` : (JSON.stringify(v) ?? String(v))
  } catch {
    t = String(v)
  }
  return hideSecrets(t)
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
    throw new AddressError(input, DEV ? `invalid address ${show(input)}: use 'host:port' or a ws:// URL` : 'invalid address')
  }
  const s = input.trim()
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(s)
  if (scheme) {
    const proto = scheme[1]!.toLowerCase()
    if (!['ws', 'wss', 'http', 'https'].includes(proto)) {
      throw new AddressError(input, DEV ? `unsupported scheme '${proto}:' in ${show(input)}: use ws://, wss://, http:// or https://` : 'unsupported scheme')
    }
    let u: URL
    try {
      u = new URL(s)
    } catch {
      throw new AddressError(input, DEV ? `invalid URL ${show(input)}` : 'invalid URL')
    }
    if (u.search || u.hash || u.username || u.password) {
      throw new AddressError(
        input,
        DEV ? `${show(input)} has a query, fragment or credentials: give only scheme, host, port and base path (pass the token as an option)` : 'query, fragment or credentials in the address',
      )
    }
    const secure = proto === 'wss' || proto === 'https'
    const port = u.port === '' ? (secure ? 443 : 80) : u.port
    return makeAddress(u.hostname, port, name, secure, u.pathname === '/' ? '' : u.pathname, input)
  }
  const m = /^(\[[^\]]*\]|[^:]*):(\d*)$/.exec(s)
  if (!m || m[2] === '') {
    if (!DEV) throw new AddressError(input, 'invalid address')
    if (s.includes('/')) throw new AddressError(input, `invalid address ${show(input)}: a path needs a scheme, as in 'ws://${hideSecrets(s)}'`)
    if (s.split(':').length > 2) throw new AddressError(input, `invalid address ${show(input)}: put an IPv6 address in brackets, as in '[::1]:3000'`)
    throw new AddressError(input, `missing port in ${show(input)}: use 'host:port', as in '${m ? m[1] : hideSecrets(s)}:3000'`)
  }
  return makeAddress(m[1], m[2], name, false, '', input)
}

/** A list of addresses, as `setup()` and `list()` give them. */
export function asList(items: Address[]): AddressList {
  const list = items as AddressList
  list.toArray = () => items.map(String)
  list.toString = () => list.toArray().join(',')
  return list
}

/** A mode, or undefined; pocketsocket's documented name `overflow` means `failover`. */
export function checkMode(v: unknown): Mode | undefined {
  if (v === 'overflow') return 'failover'
  if (v === undefined || v === 'broadcast' || v === 'failover') return v
  throw new AddressError(v, DEV ? `invalid mode ${show(v)}: use 'broadcast' or 'failover'` : 'invalid mode')
}

/** Arguments `setup()` accepts (the core takes the first two forms; the addresses feature every form). */
export type SetupArgs =
  | [address: string, mode?: Mode | 'overflow']
  | [host: string, port: Port, mode?: Mode | 'overflow']
  | [hosts: readonly string[], ports: readonly Port[], listType?: ListType, mode?: Mode | 'overflow']
  | [addresses: readonly string[], mode?: Mode | 'overflow']
  | [named: Readonly<Record<string, NamedAddress>>, mode?: Mode | 'overflow']

/** What `setup()` arguments describe. */
export interface Parsed {
  entries: readonly Address[]
  mode?: Mode
  listType?: ListType
  hosts?: readonly string[]
  ports?: readonly Port[]
}

/** The addresses feature, as the book calls it: every other `setup()` form, and `list('mix' | 'flat')`. */
export interface SetupForms {
  parse(args: unknown[]): Parsed
  list(hosts: readonly string[], ports: readonly Port[], kind: ListType): AddressList
}

const NONE: readonly Address[] = /* @__PURE__ */ Object.freeze([])

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

  constructor(private readonly forms?: SetupForms) {}

  /** Replaces the addresses with the ones `args` describe. */
  set(...args: SetupArgs | unknown[]): this {
    const [a, b, c] = args as unknown[]
    let p: Parsed
    if (typeof a === 'string') {
      p = b === undefined || (typeof b === 'string' && !/^\d+$/.test(b)) ? { entries: alone(parseAddress(a)), mode: checkMode(b) } : { entries: alone(makeAddress(a, b)), mode: checkMode(c) }
    } else if (this.forms) p = this.forms.parse(args)
    else
      throw new AddressError(
        a,
        DEV
          ? `setup() cannot use ${show(a)} here: this client takes one address ('host:port', (host, port) or a URL); lists and named addresses need the addresses feature from 'sock-client/addresses'`
          : 'one address only',
      )
    this.hosts = p.hosts
    this.ports = p.ports
    this.listType = p.listType ?? 'mix'
    this.entries = p.entries
    this.mode = p.mode ?? 'broadcast'
    return this
  }

  /** The addresses in use, or enumerated as `mix` / `flat` from the arrays given to `setup()`. */
  list(kind?: ListType): AddressList {
    if (kind === undefined || !this.hosts || !this.ports || !this.forms) return asList([...this.entries])
    return this.forms.list(this.hosts, this.ports, kind)
  }

  isSetup(): boolean {
    return this.entries.length > 0
  }

  /** The addresses in use, not copied (what channels are opened on). */
  get addresses(): readonly Address[] {
    return this.entries
  }

  /** The addresses in use; throws unless `setup()` gave some. @internal */
  addressesOrThrow(): readonly Address[] {
    if (!this.entries.length) throw new ValidationError('setup', DEV ? 'no address: call client.setup(address) first' : 'no setup()')
    return this.entries
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
