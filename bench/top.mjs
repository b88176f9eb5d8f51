#!/usr/bin/env node
// Summarizes a `node --cpu-prof` profile (as `npm run bench -- --profile` writes them): the functions with the
// most self time, and the total time under each function whose name matches --under (a regex).
//   node bench/top.mjs bench/results/profiles/<file>.cpuprofile [--top 25] [--under 'encodeFrame|decodeFrame']
import { readFileSync } from 'node:fs'

const argv = process.argv.slice(2)
const file = argv.find((a) => a.endsWith('.cpuprofile'))
if (!file) throw new Error('usage: node bench/top.mjs <file.cpuprofile> [--top N] [--under regex]')
const opt = (n) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : undefined)
const top = Number(opt('--top') ?? 25)
const under = opt('--under') ? new RegExp(opt('--under')) : undefined

const p = JSON.parse(readFileSync(file, 'utf8'))
const byId = new Map(p.nodes.map((n) => [n.id, n]))
const parent = new Map()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const dt = new Map()
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0))
const total = [...dt.values()].reduce((a, b) => a + b, 0)
const name = (n) => {
  const f = n.callFrame
  const where = f.url ? `${f.url.replace(/^.*\/(node_modules\/|src\/|dist\/|bench\/)/, '$1')}:${f.lineNumber + 1}` : ''
  return `${f.functionName || '(anonymous)'} ${where}`.trim()
}
const self = new Map()
const incl = new Map()
for (const [id, t] of dt) {
  const n = byId.get(id)
  self.set(name(n), (self.get(name(n)) ?? 0) + t)
  // inclusive: every distinct function on the stack
  const seen = new Set()
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur))
    if (seen.has(k)) continue
    seen.add(k)
    incl.set(k, (incl.get(k) ?? 0) + t)
  }
}
const pct = (t) => `${((100 * t) / total).toFixed(1).padStart(5)}%`
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`)
console.log('\nself time:')
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`)
if (under) {
  console.log(`\ntotal time under /${under.source}/:`)
  for (const [k, t] of [...incl]
    .filter(([k]) => under.test(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    console.log(`${pct(t)}  ${k}`)
}
