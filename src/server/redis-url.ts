/**
 * Redis URL checks and redaction, apart from the bridge so that a server without `redis` loads no Redis code at
 * all. A Redis URL is the one place a Redis secret enters: everything shown of it, and every message that might
 * quote it (ioredis errors, our own), goes through here, whatever the URL looks like.
 */

function decode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/** Query keys whose values are secrets to ioredis (which reads every query key as an option: `?password=`). */
const SECRET_KEY = /pass|pwd|secret|token|auth|cred|key/i

function parse(url: string): URL | undefined {
  try {
    return new URL(url)
  } catch {
    return undefined
  }
}

/**
 * Every form a secret of `url` may take in a message: the password and a lone userinfo (some tools read
 * `redis://secret@host` as a password), secret-looking query values, each raw, decoded and encoded. Found in the
 * string itself too, not only by the URL parser: an unparsable URL, or one the parser reads differently (a `/` in
 * the password makes it a path), is redacted all the same. Longest first.
 */
export function redisSecrets(url: string): string[] {
  const found = new Set<string>()
  const add = (s: string | undefined) => {
    if (!s) return
    for (const v of [s, decode(s), encodeURIComponent(decode(s))]) if (v) found.add(v)
  }
  // Whatever sits between the scheme and the last '@' is userinfo, as far as secrets go.
  const at = url.lastIndexOf('@')
  if (at > 0) {
    const start = /^[A-Za-z][A-Za-z0-9+.-]*:(\/\/)?/.exec(url)?.[0].length ?? 0
    const userinfo = url.slice(start, at)
    const colon = userinfo.indexOf(':')
    add(colon < 0 ? userinfo : userinfo.slice(colon + 1))
  }
  const u = parse(url)
  if (u) {
    add(u.password || u.username)
    for (const [k, v] of u.searchParams) if (SECRET_KEY.test(k)) add(v)
  } else {
    for (const m of url.matchAll(/[?&]([^=&#]*)=([^&#]*)/g)) if (SECRET_KEY.test(decode(m[1]!))) add(m[2])
  }
  return [...found].sort((a, b) => b.length - a.length)
}

/** `text` with every secret of the Redis URL `url` replaced by `***`. */
export function redactSecrets(text: string, url: string): string {
  let out = text
  for (const s of redisSecrets(url)) out = out.split(s).join('***')
  return out
}

/**
 * A Redis URL as it may be shown: its password (or a lone userinfo) and every query value as `***`, and no part
 * of an unparsable URL at all.
 */
export function redactRedisUrl(url: string): string {
  const u = parse(url)
  if (!u?.host) return u ? `(a ${u.protocol} URL without a host)` : '(an unparsable URL)'
  const auth = u.password ? `${u.username}:***@` : u.username ? '***@' : ''
  const query = [...u.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=***`).join('&')
  return redactSecrets(`${u.protocol}//${auth}${u.host}${u.pathname}${query ? `?${query}` : ''}`, url)
}

/** Throws a TypeError unless `url` is a `redis://` or `rediss://` URL with a host. */
export function checkRedisUrl(url: unknown): string {
  const u = typeof url === 'string' ? parse(url) : undefined
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || !u.hostname) {
    const shown = typeof url === 'string' ? redactRedisUrl(url) : typeof url === 'object' && url ? 'object' : String(url)
    throw new TypeError(`createSockServer: invalid redis ${shown}: use a URL like redis://127.0.0.1:6379`)
  }
  try {
    decodeURIComponent(u.username + u.password) // as ioredis will, with a URIError that says nothing of where
  } catch {
    throw new TypeError(`createSockServer: invalid redis ${redactRedisUrl(url as string)}: its user or password has a malformed %-escape (write % as %25)`)
  }
  return url as string
}
