#!/usr/bin/env node
// What an envelope event costs the server, per frame: JSON.parse of the inbound frame and JSON.stringify of its
// data (what the Sock server does to add `from`), for the benchmark's 64-byte text sent as a plain message, as an
// envelope event `{ t: text }`, and as a hypothetical compact header (`<id> <event> <payload>`). Best of 5, ns.
// `node bench/escape.mjs`
const text = '0000000a' + 'x'.repeat(56)
const frames = {
  'plain message': `{"type":1,"data":${JSON.stringify(text)}}`,
  'envelope event': `{"type":7,"data":${JSON.stringify(JSON.stringify({ i: 'abcdefgh1', e: 'evt', d: { t: text } }))}}`,
  'compact header (not used)': `{"type":7,"data":${JSON.stringify('abcdefgh1 evt ' + JSON.stringify({ t: text }))}}`,
}
console.log('| frame | chars | server parse + stringify (ns) |\n|---|---:|---:|')
for (const [name, f] of Object.entries(frames)) {
  let best = Infinity
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < 200_000; i++) JSON.stringify(JSON.parse(f).data)
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 200_000)
  }
  console.log(`| ${name} | ${f.length} | ${best.toFixed(0)} |`)
}
