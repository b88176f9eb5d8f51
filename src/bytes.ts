/** Byte helpers shared by files and codecs: base64 and CRC-32. Browser-safe, no dependencies. */

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
let lookup: Uint8Array | undefined

/** Standard base64 with padding. */
export function toBase64(bytes: Uint8Array): string {
  let out = ''
  const n = bytes.length
  let i = 0
  for (; i + 2 < n; i += 3) {
    const v = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!
    out += B64[v >> 18]! + B64[(v >> 12) & 63]! + B64[(v >> 6) & 63]! + B64[v & 63]!
  }
  if (i < n) {
    const v = (bytes[i]! << 16) | (i + 1 < n ? bytes[i + 1]! << 8 : 0)
    out += B64[v >> 18]! + B64[(v >> 12) & 63]! + (i + 1 < n ? B64[(v >> 6) & 63]! : '=') + '='
  }
  return out
}

/** Decodes standard base64 (padding optional); `undefined` if it is not base64. */
export function fromBase64(s: string): Uint8Array | undefined {
  if (!lookup) {
    lookup = new Uint8Array(128).fill(255)
    for (let i = 0; i < 64; i++) lookup[B64.charCodeAt(i)] = i
  }
  let end = s.length
  while (end > 0 && s[end - 1] === '=') end--
  if (s.length - end > 2 || end % 4 === 1) return undefined
  const out = new Uint8Array(Math.floor((end * 3) / 4))
  let o = 0
  let acc = 0
  let bits = 0
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i)
    const v = c < 128 ? lookup[c]! : 255
    if (v === 255) return undefined
    acc = (acc << 6) | v
    bits += 6
    if (bits >= 8) {
      bits -= 8
      out[o++] = (acc >> bits) & 255
    }
  }
  return out
}

let table: Int32Array | undefined

/** CRC-32 (IEEE, as zip and PNG use it) as 8 hex digits. */
export function crc32(bytes: Uint8Array): string {
  if (!table) {
    table = new Int32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      table[n] = c
    }
  }
  let c = -1
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 255]! ^ (c >>> 8)
  return ((c ^ -1) >>> 0).toString(16).padStart(8, '0')
}
