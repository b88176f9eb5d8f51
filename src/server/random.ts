/** Random names for the server: instance ids it picks and Redis node ids (crypto-quality where the runtime has it). */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** `n` random ASCII letters and digits. */
export function randomName(n: number): string {
  const bytes = new Uint8Array(n)
  const c = (globalThis as { crypto?: Crypto }).crypto
  if (c?.getRandomValues) c.getRandomValues(bytes)
  else for (let i = 0; i < n; i++) bytes[i] = (Math.random() * 256) | 0
  let s = ''
  for (const b of bytes) s += ALPHABET[b % 62]
  return s
}
