// Compile-only type tests: `npm test` runs `tsc --noEmit`, which fails if any @ts-expect-error line compiles.
// Nothing here runs.
import { NO_REPLY, ReplyCode, ReplyError, SockClient, UnauthorizedError, type DebugEntry, type Instance, type LifecycleInfo, type SockFile, type SockMessage } from '../src'
import { chunks } from '../src/chunks'
import { SockClient as CoreClient } from '../src/core'
import { debug } from '../src/debug'
import { files, sendFile } from '../src/files'
import { presence, presenceOf } from '../src/presence'
import { useChannel, useConnectionState, usePresence, useSignal, useSockClient } from '../src/react'

type Events = {
  chat: { message: string; typing: { who: string }; file: SockFile }
  game: { move: { x: number; y: number }; score: number }
}

export function typeTests(c: SockClient<Events>): void {
  c.signal('chat', 'message', 'hi')
  c.signal('chat', 'typing', { who: 'alice' })
  c.signal('game', 'move', { x: 1, y: 2 })
  c.signal('game', 'score', 3)
  // @ts-expect-error wrong payload type
  c.signal('chat', 'message', 42)
  // @ts-expect-error missing field
  c.signal('chat', 'typing', {})
  // @ts-expect-error unknown event
  c.signal('chat', 'nope', 'x')
  // @ts-expect-error unknown channel
  c.signal('lobby', 'message', 'x')
  // @ts-expect-error event of another channel
  c.signal('chat', 'score', 1)
  // What tsc prints for these names the valid channels and events ('"message" | "typing" | "file"'), not an alias
  // (test/type-errors.test.ts reads the messages). Every method that takes a channel or an event checks it:
  // @ts-expect-error unknown channel
  void c.join('lobby')
  // @ts-expect-error unknown channel
  c.once('lobby', () => {})
  // @ts-expect-error unknown event
  c.once('game', 'nope', () => {})
  // @ts-expect-error unknown event
  c.connection.on('chat', 'nope', () => {})
  // @ts-expect-error unknown channel
  void c.sendFile('lobby', 'a.txt', new Uint8Array(1))
  // @ts-expect-error unknown channel
  void c.instances('lobby')
  // @ts-expect-error unknown channel
  c.idOf('lobby')

  c.on('chat', 'typing', (data, message) => {
    const who: string = data.who
    const m: SockMessage<{ who: string }> = message
    void [who, m]
  })
  c.on('game', 'move', (data) => {
    const x: number = data.x
    // @ts-expect-error no such field
    void data.z
    void x
  })
  // @ts-expect-error listener expects the wrong payload
  c.on('game', 'score', (data: string) => void data)
  c.on('game', (event, message) => {
    const e: 'move' | 'score' = event
    void e, message
  })
  c.on('socket', 'open', (info: LifecycleInfo) => void info.channel)
  c.on('socket', (event, info) => void [event, info.address])
  // @ts-expect-error not a lifecycle event
  c.on('socket', 'hello', () => {})

  const off: () => void = c.once('chat', 'message', (text) => void text.toUpperCase())
  off()
  void c
    .messages('game', 'move')
    .next()
    .then((r) => {
      if (!r.done) {
        const y: number = r.value.data.y
        void y
      }
    })
  // @ts-expect-error unknown event for messages()
  c.messages('game', 'nope')

  // Without a map: any channel, any event; message is text and file a SockFile.
  const any = new SockClient()
  any.signal('whatever', 'thing', { anything: [1, 2] })
  any.on('room', 'message', (text) => void text.toUpperCase())
  any.on('room', 'file', (f) => void f.bytes.byteLength)
  // @ts-expect-error message is text
  any.signal('room', 'message', undefined as unknown as number)
}

// The kernel (`sock-client/core`): the same typed events; the methods of features it is not given do not exist.
export function coreTypeTests(): void {
  const c = new CoreClient<Events>({ features: [chunks, files] })
  c.signal('chat', 'message', 'hi')
  // @ts-expect-error wrong payload type
  c.signal('game', 'score', 'three')
  c.on('game', 'move', (d) => void d.x)
  // @ts-expect-error the full client's method: with the kernel it is a function of its feature
  c.sendFile('chat', 'a.txt', new Uint8Array(1))
  // @ts-expect-error likewise
  void c.instances('chat')
  void sendFile(c, 'chat', 'a.txt', new Uint8Array(1))
  // @ts-expect-error a feature is { name, ... }
  new CoreClient({ features: [{ read: {} }] })
  const full: SockClient<Events> = new SockClient<Events>({ codec: undefined, maxPendingBytes: 1 << 20, registrationCheck: 0 })
  // @ts-expect-error an option of no feature
  new SockClient({ nope: 1 })
  void full
}

// Requests: a second map, channel -> event -> [request, response].
type Requests = {
  jobs: { resize: [{ w: number; h: number }, { url: string }]; ping: [void, void]; count: [undefined, number]; tag: [string, void] }
  admin: { stop: [{ now: boolean }, boolean] }
}

export async function requestTypeTests(c: SockClient<Events, Requests>): Promise<void> {
  const r: { url: string } = await c.request('jobs', 'resize', { w: 1, h: 2 }, { to: 'worker1', timeout: 5000 })
  void r.url
  // void requests may omit their data
  const none: void = await c.request('jobs', 'ping')
  void none
  const n: number = await c.request('jobs', 'count')
  void n
  await c.request('jobs', 'ping', undefined, { timeout: 100 })
  await c.request('jobs', 'tag', 'x')
  // @ts-expect-error a request with data cannot omit it
  await c.request('jobs', 'resize')
  // @ts-expect-error wrong request data
  await c.request('jobs', 'resize', { w: 'wide', h: 2 })
  // @ts-expect-error unknown event
  await c.request('jobs', 'nope', 1)
  // @ts-expect-error unknown channel
  await c.request('lobby', 'resize', { w: 1, h: 2 })
  // @ts-expect-error the response is not a string
  const s: string = await c.request('admin', 'stop', { now: true })
  void s

  c.handle('jobs', 'resize', async ({ w, h }, req) => {
    void req.signal, req.from, req.deadline
    return { url: `/${w}x${h}` }
  })
  c.handle('jobs', 'ping', () => {})
  c.handle('jobs', 'count', () => NO_REPLY)
  c.handle('admin', 'stop', (d) => d.now)
  // @ts-expect-error a wrong reply type in handle is a compile error
  c.handle('jobs', 'resize', () => ({ url: 42 }))
  // @ts-expect-error async too
  c.handle('admin', 'stop', async () => 'yes')
  // @ts-expect-error the handler's data is the request type
  c.handle('jobs', 'resize', (d: string) => ({ url: d }))
  // @ts-expect-error unknown event
  c.handle('jobs', 'nope', () => 1)

  for await (const reply of c.requestAll('jobs', 'count', undefined, { timeout: 100, max: 3 })) {
    const v: number | undefined = reply.data
    const code: number = reply.code
    void [v, code, reply.from]
  }
  for await (const reply of c.requestAll('jobs', 'count')) {
    // @ts-expect-error replies of count are numbers
    const bad: string | undefined = reply.data
    void bad
  }

  // events still go by the first map; signal takes a target
  await c.signal('chat', 'message', 'hi', { to: 'bob' })
  // @ts-expect-error to is an id string
  await c.signal('chat', 'message', 'hi', { to: 5 })

  // AnyRequests: anything goes
  const any = new SockClient()
  const x: unknown = await any.request('whatever', 'thing', { a: 1 })
  any.handle('whatever', 'thing', (d) => d)
  void x
  void new ReplyError(ReplyCode.BadRequest, 'too wide')
}

// Issue 17: token functions, bounded joins, the debug log, presence, React hooks.
export function issue17Types(c: SockClient<Events>): void {
  new SockClient({ token: 'demo' })
  new SockClient({ token: () => 'fresh' })
  new SockClient({ token: async ({ channel, address }) => `${channel}@${address}` })
  new SockClient({
    token: () => {
      throw new UnauthorizedError('logged out')
    },
  })
  // @ts-expect-error a token is a string or a function that gives one
  new SockClient({ token: 42 })
  // @ts-expect-error the function gives a string, not a number
  new SockClient({ token: () => 42 })
  // @ts-expect-error the function takes the attempt, not a string
  new SockClient({ token: (s: string) => s })

  void c.join('chat', { timeout: 5000 })
  void c.join('chat', { signal: new AbortController().signal })
  // @ts-expect-error timeout is a number of ms
  void c.join('chat', { timeout: '5s' })
  // @ts-expect-error unknown channel
  void c.join('lobby', { timeout: 1 })

  new SockClient({ debug: true })
  new SockClient({ debug: (e: DebugEntry) => void [e.time, e.channel, e.address, e.event, e.rtt, e.length] })
  // @ts-expect-error debug is true/false or a function
  new SockClient({ debug: 'verbose' })
  new SockClient({
    debug: (e) => {
      // @ts-expect-error not an event of the log
      if (e.event === 'flush') return
    },
  })
  // the kernel takes the debug option only with the feature (its options are typed on the full client)
  new CoreClient({ features: [debug] })

  new SockClient({ presenceInterval: 10_000, presenceAnnounce: false })
  // @ts-expect-error presenceInterval is a number of ms
  new SockClient({ presenceInterval: '10s' })
  const p = c.presence('chat')
  const offJoin: () => void = p.on('join', (i: Instance) => void [i.id, i.createdAt.getTime(), i.addresses])
  p.on('change', (list) => void list.length)
  // @ts-expect-error not a presence event
  p.on('update', () => {})
  // @ts-expect-error unknown channel
  c.presence('lobby')
  void p.list().then((l: Instance[]) => l)
  offJoin()
  void presenceOf(new CoreClient({ features: [presence] }), 'chat')
}

// The hooks take the typed client's events through their type parameters.
export function useHookTypes(c: SockClient<Events>): void {
  const signal = useChannel<Events, 'game', 'move'>('game', 'move', (d, m) => void [d.x, d.y, m.from], c)
  void signal('score', 3)
  // @ts-expect-error wrong payload for the event
  void signal('score', 'three')
  // @ts-expect-error listener expects the wrong payload
  useChannel<Events, 'game', 'score'>('game', 'score', (d: string) => void d, c)
  useChannel<Events, 'chat'>('chat', (event, m) => void [event === 'typing', m.data], c)
  useSignal('anything', 'message', (text: string) => void text.toUpperCase())
  const state: 'connecting' | 'open' | 'reconnecting' | 'closed' | 'giveup' | undefined = useConnectionState('chat')
  const people: readonly Instance[] = usePresence('chat', c)
  // @ts-expect-error the list is read-only
  people.push()
  const client: SockClient<Events> = useSockClient(c)
  void [state, client]
}
