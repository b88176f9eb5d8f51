/** Redis URL checks, apart from the bridge so that a server without `redis` loads no Redis code at all. */

/** Replaces the password in a Redis URL with `***`, so that it can be shown. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '(invalid URL)'
  }
}

/** Throws a TypeError unless `url` is a `redis://` or `rediss://` URL with a host. */
export function checkRedisUrl(url: unknown): string {
  let u: URL | undefined
  try {
    u = typeof url === 'string' ? new URL(url) : undefined
  } catch {}
  if (!u || (u.protocol !== 'redis:' && u.protocol !== 'rediss:') || !u.hostname) {
    const shown = typeof url === 'string' ? (u ? redactRedisUrl(url) : JSON.stringify(url.replace(/\/\/[^@/]*@/, '//***@'))) : String(url)
    throw new TypeError(`createSockServer: invalid redis ${shown}: use a URL like redis://127.0.0.1:6379`)
  }
  return url as string
}
