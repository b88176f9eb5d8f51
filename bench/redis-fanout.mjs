#!/usr/bin/env node
// Fan-out over Redis: one sender, 50 receivers, all on one node vs split across two nodes sharing a Redis.
// Each node runs in its own process; the sender and receivers run in this one.
// Needs `npm run build` (uses dist/) and `redis-server` on PATH; starts its own on a free loopback port.
// Usage: node bench/redis-fanout.mjs [messages=2000] [reps=5]
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import WebSocket from 'ws'

const MESSAGES = Number(process.argv[2] ?? 2000)
const REPS = Number(process.argv[3] ?? 5)
const RECEIVERS = 50

const dist = new URL('../dist/server.js', import.meta.url)
if (!existsSync(dist)) {
  console.error('bench/redis-fanout: dist/server.js is missing: run `npm run build` first')
  process.exit(1)
}
if (spawnSync('redis-server', ['--version']).error) {
  console.error('bench/redis-fanout: redis-server is not installed (apt-get install -y redis-server)')
  process.exit(1)
}

/** A node in its own process (a node is one event loop: scale-out means more processes). */
function startNode(redisUrl) {
  const code = `const { createSockServer } = await import(${JSON.stringify(dist.href)}); const s = await createSockServer({ port: 0, redis: ${JSON.stringify(redisUrl)} }); console.log(s.port)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve) => child.stdout.once('data', (d) => resolve({ url: `ws://127.0.0.1:${String(d).trim()}`, close: () => child.kill('SIGKILL') })))
}

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port
    s.close(() => resolve(p))
  })
})
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
await new Promise((resolve) => {
  let out = ''
  redis.stdout.on('data', (d) => (out += d) && out.includes('Ready to accept connections') && resolve())
})
const redisUrl = `redis://127.0.0.1:${port}`

const open = (url) =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })

let run = 0
/** One rep: `nodes` servers, receivers spread round-robin over them, the sender on the first. Messages/s sent. */
async function rep(nodeCount) {
  const channel = `fan${run++}`
  const nodes = await Promise.all(Array.from({ length: nodeCount }, () => startNode(redisUrl)))
  const done = []
  const receivers = []
  for (let i = 0; i < RECEIVERS; i++) {
    const ws = await open(`${nodes[i % nodeCount].url}/channel/${channel}?id=r${i}`)
    receivers.push(ws)
    done.push(
      new Promise((resolve) => {
        let n = 0
        ws.on('message', () => ++n === MESSAGES && resolve())
      }),
    )
  }
  const sender = await open(`${nodes[0].url}/channel/${channel}?id=sender`)
  const payload = JSON.stringify({ type: 1, data: 'x'.repeat(64) })
  const t0 = performance.now()
  for (let i = 0; i < MESSAGES; i++) sender.send(payload)
  await Promise.all(done)
  const seconds = (performance.now() - t0) / 1000
  for (const ws of [...receivers, sender]) ws.terminate()
  for (const s of nodes) s.close()
  return MESSAGES / seconds
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const one = []
const two = []
await rep(1) // warm-up
await rep(2)
for (let i = 0; i < REPS; i++) {
  one.push(await rep(1))
  two.push(await rep(2))
}
redis.kill('SIGKILL')

const fmt = (n) => Math.round(n).toLocaleString('en-US')
const m1 = median(one)
const m2 = median(two)
console.log(`Fan-out: 1 sender, ${RECEIVERS} receivers, ${MESSAGES} messages of 64 bytes, ${REPS} reps, Redis ${redisUrl.replace(/:\d+$/, '')} (loopback)\n`)
console.log('| setup | sent msg/s (median) | delivered msg/s (median) | reps (sent msg/s) |')
console.log('|---|---:|---:|---|')
console.log(`| one node, 50 receivers | ${fmt(m1)} | ${fmt(m1 * RECEIVERS)} | ${one.map(fmt).join(', ')} |`)
console.log(`| two nodes via Redis, 25 + 25 | ${fmt(m2)} | ${fmt(m2 * RECEIVERS)} | ${two.map(fmt).join(', ')} |`)
console.log(`\nratio two nodes / one node: **${(m2 / m1).toFixed(2)}**`)
