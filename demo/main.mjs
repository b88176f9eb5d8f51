// `npm start`: an embedded Sock server and two clients talking through it.
import { SockClient } from '../dist/index.js'
import { createSockServer } from '../dist/server.js'

const port = Number(process.env.PORT ?? 3000)
let server
try {
  server = await createSockServer({ port })
} catch {
  server = await createSockServer({ port: 0 }) // 3000 is taken: any free port
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
await server.close()
console.log('demo finished')
