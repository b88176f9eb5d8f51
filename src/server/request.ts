/**
 * What the embedded server reads from a request before any route sees it, and the raw answers it writes on a
 * socket that has no `ServerResponse` (an upgrade, a request Node could not parse). Nothing here throws on input.
 */
import type { Duplex } from 'node:stream'

export interface Target {
  /** The path as sent (not decoded, no dot segments resolved): routes match it, then decode their parts. */
  path: string
  query: URLSearchParams
}

const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//

/**
 * The path and query of a request target. Origin-form (`/a?b`) is split by hand: `new URL('//', base)` throws and
 * `new URL('//x/y', base)` would read `x` as a host. Absolute-form (`http://host/a`) is valid HTTP/1.1 and is
 * routed by its path. Anything else (`*`, a bare word) is `undefined`: answer 400.
 */
export function parseTarget(raw: string | undefined): Target | undefined {
  if (raw === undefined || raw === '') return undefined
  let rest = raw
  if (!raw.startsWith('/')) {
    if (!ABSOLUTE.test(raw)) return undefined
    try {
      const u = new URL(raw)
      rest = (u.pathname || '/') + u.search
    } catch {
      return undefined
    }
  }
  const q = rest.indexOf('?')
  // URLSearchParams never throws: `%zz` stays as it is, bad UTF-8 becomes U+FFFD (and then fails the name checks).
  return q < 0 ? { path: rest, query: new URLSearchParams() } : { path: rest.slice(0, q), query: new URLSearchParams(rest.slice(q + 1)) }
}

/** `decodeURIComponent`, or `undefined` for a malformed escape. */
export function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s)
  } catch {
    return undefined
  }
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** How long a refused socket may take to read its answer before it is destroyed. */
const LINGER_MS = 2000

/**
 * Writes a complete HTTP/1.1 answer on a raw socket and closes it: the half-close lets the peer read the answer even
 * when it already sent more, and a socket whose peer never reads or closes is destroyed after a short linger.
 */
export function refuse(socket: Duplex, status: number, headers: Record<string, string> = {}, body = REASONS[status] ?? ''): void {
  if (!socket.writable || socket.destroyed) return void socket.destroy()
  const all: Record<string, string> = { connection: 'close', 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)), ...headers }
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n`
  for (const k in all) head += `${k}: ${all[k]}\r\n`
  socket.end(`${head}\r\n${body}`)
  const t = setTimeout(() => socket.destroy(), LINGER_MS)
  t.unref()
  socket.once('close', () => clearTimeout(t))
}

/** The answer to a request Node's parser refused, as Node's own default would give it (400, 408, 413, 431). */
export function clientErrorStatus(code: string | undefined): number {
  return code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? 413 : 400
}

/** `Sec-WebSocket-Key`: base64 of 16 bytes (RFC 6455 §4.1), as `ws` checks it. */
export const WS_KEY = /^[+/0-9A-Za-z]{22}==$/
