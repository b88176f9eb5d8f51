// `npm run size`: what takes the bytes in the script-tag bundles. Attributes every minified character to the
// source file it came from (via the bundle's source map) and gzips each file's share on its own, so the gzip
// column is an estimate (shares compress slightly better together). Run `npm run build` first.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { decode } from '@jridgewell/sourcemap-codec'

const kib = (n) => `${(n / 1024).toFixed(2)} KiB`
for (const file of process.argv.slice(2).length ? process.argv.slice(2) : ['dist/sock-client.umd.min.js', 'dist/sock-client.msgpack.umd.min.js']) {
  const code = readFileSync(file, 'utf8')
  const map = JSON.parse(readFileSync(`${file}.map`, 'utf8'))
  const lines = code.split('\n')
  const parts = new Map() // source -> [chars]
  decode(map.mappings).forEach((segments, li) => {
    const line = lines[li] ?? ''
    segments.forEach((seg, i) => {
      const end = i + 1 < segments.length ? segments[i + 1][0] : line.length
      const source = seg.length > 1 ? map.sources[seg[1]].replace(/^(\.\.\/)+/, '') : '(unmapped)'
      if (!parts.has(source)) parts.set(source, [])
      parts.get(source).push(line.slice(seg[0], end))
    })
  })
  const total = gzipSync(code, { level: 9 }).length
  console.log(`\n${file}: ${kib(code.length)} minified, ${kib(total)} gzipped`)
  const rows = [...parts].map(([s, chunks]) => [s, chunks.join('').length, gzipSync(chunks.join(''), { level: 9 }).length]).sort((a, b) => b[2] - a[2])
  for (const [s, min, gz] of rows) console.log(`  ${s.padEnd(62)} ${kib(min).padStart(10)} ${kib(gz).padStart(10)}`)
}
