/** What a character costs in a frame once JSON-escaped: how chunks and stream text pieces are cut to fit. Browser-safe. */

/** UTF-8 bytes that char `i` of `s` takes once JSON-escaped, and how many UTF-16 units it spans. */
export function escapedCost(s: string, i: number): [bytes: number, units: number] {
  const c = s.charCodeAt(i)
  if (c === 0x22 || c === 0x5c) return [2, 1]
  if (c < 0x20) return [c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6, 1]
  if (c < 0x80) return [1, 1]
  if (c < 0x800) return [2, 1]
  if (c >= 0xd800 && c < 0xdc00) {
    const d = s.charCodeAt(i + 1)
    return d >= 0xdc00 && d < 0xe000 ? [4, 2] : [6, 1] // a pair, or a lone surrogate JSON escapes as \udxxx
  }
  if (c >= 0xdc00 && c < 0xe000) return [6, 1]
  return [3, 1]
}
