// `npm start`: an embedded Sock server, two Node clients talking through it in the terminal, then the demo
// page (a chat with channels, live instance lists and file drops) served until Ctrl-C. `--once`: terminal part only.
import { SockClient } from '../dist/index.js'
import { startDemo } from './server.mjs'

const once = process.argv.includes('--once')
const port = Number(process.env.PORT ?? 3000)
let server
try {
  server = await startDemo({ port })
} catch {
  server = await startDemo({ port: 0 }) // 3000 is taken: any free port
}
console.log(`Sock server listening on ${server.url}`)

const alice = new SockClient({ id: 'alice' })
const bob = new SockClient({ id: 'bob' })
for (const c of [alice, bob]) c.setup(server.address)

const say = (who, text) => console.log(`  ${who.padEnd(5)} > ${text}`)
alice.on('chat', 'message', (text, m) => say(`${m.from} -> alice`, text))
bob.on('chat', 'message', (text, m) => say(`${m.from} -> bob`, text))
bob.on('chat', 'typing', (data, m) => say(`${m.from} -> bob`, `(typing: ${JSON.stringify(data)})`))

await Promise.all([alice.join('chat'), bob.join('chat')])
console.log(`alice is '${alice.idOf('chat')}', bob is '${bob.idOf('chat')}' on channel 'chat'`)

const pause = (ms) => new Promise((r) => setTimeout(r, ms))
await alice.signal('chat', 'typing', { who: 'alice', at: new Date().toISOString() })
await alice.signal('chat', 'message', 'Hi Bob! This travels as a plain Sock type-1 frame.')
await pause(100)
await bob.signal('chat', 'message', 'Hi Alice, got it through the embedded server.')
await pause(100)

const list = await alice.instances('chat')
console.log(`instances in 'chat' (REST): ${list.map((i) => `${i.id} since ${i.createdAt.toISOString()}`).join(', ')}`)

alice.close()
bob.close()
if (once) {
  await server.close()
  console.log('demo finished')
} else {
  console.log(`\nDemo page: ${server.httpUrl}/  (open it in two tabs, or ${server.httpUrl}/?name=carol)`)
  console.log('Press Ctrl-C to stop.')
  const stop = async () => {
    await server.close()
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}
