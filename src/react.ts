/**
 * React hooks (`sock-client/react`; React 18 or later, an optional peer dependency). The client comes from
 * `<SockProvider client={client}>` or as the hooks' last argument. Each hook subscribes in an effect and unsubscribes
 * in its cleanup, so StrictMode's double mount leaves one listener; a channel that the hooks joined (nobody had
 * before) is left when the last component using it unmounts, a microtask later, so a remount keeps it open.
 */
import { createContext, createElement, useContext, useEffect, useInsertionEffect, useRef, useSyncExternalStore, type ReactNode } from 'react'
import type { AnyEvents, EventMap, LifecycleInfo, Payload, SockClient, SockMessage } from './client'
import type { SendReport } from './channel'
import type { ConnectionState } from './connection'
import { DEV } from './dev'
import { ValidationError } from './errors'
import { presenceOf } from './presence'
import type { Instance } from './rest'

/** Any client: the kernel's or the full one (which extends it). @internal */
type Client = SockClient<any>

const SockContext = /* @__PURE__ */ createContext<Client | null>(null)

/** Makes `client` the one the hooks below it use. */
export function SockProvider({ client, children }: { client: SockClient<any>; children?: ReactNode }): ReactNode {
  return createElement(SockContext.Provider, { value: client }, children)
}

/** The client passed, else the one of the nearest `SockProvider`; throws when there is neither. */
export function useSockClient<C extends SockClient<any> = SockClient<AnyEvents>>(client?: C): C {
  const fromContext = useContext(SockContext)
  const c = client ?? fromContext
  if (!c) throw new ValidationError('client', DEV ? 'no SockClient for this hook: wrap the tree in <SockProvider client={client}>, or pass the client as the last argument' : 'no client')
  return c as C
}

/** How many mounted hooks use each channel of each client, and whether they joined it (nobody had). */
const holds = /* @__PURE__ */ new WeakMap<Client, Map<string, { n: number; owned: boolean }>>()

/** Counts a mounted user of `channel`; the returned release leaves it, a microtask after the last one, if the hooks joined it. */
function hold(client: Client, channel: string): () => void {
  let byName = holds.get(client)
  if (!byName) holds.set(client, (byName = new Map()))
  let h = byName.get(channel)
  if (!h) byName.set(channel, (h = { n: 0, owned: client.stateOf(channel) === undefined }))
  h.n++
  const it = h
  const map = byName
  return () => {
    it.n--
    queueMicrotask(() => {
      if (it.n || map.get(channel) !== it) return // mounted again (StrictMode, a quick remount)
      map.delete(channel)
      if (it.owned) client.leave(channel)
    })
  }
}

type Handler = (a: any, b: any) => void
/** What `useChannel` returns: `signal(event, data)` on its channel. */
export type ChannelSignal<E extends EventMap, C extends keyof E & string> = <K extends keyof E[C] & string>(event: K, data: Payload<E, C, K>) => Promise<SendReport>

/**
 * Listens to `event` on `channel` while the component is mounted (`handler(data, message)`), or to every event of
 * it (`useChannel(channel, handler)`: `handler(event, message)`), joining the channel. The handler may change on every
 * render without resubscribing. Returns `signal(event, data)` for the channel, the same function across renders.
 */
export function useChannel<E extends EventMap = AnyEvents, C extends keyof E & string = keyof E & string, K extends keyof E[C] & string = keyof E[C] & string>(
  channel: C,
  event: K,
  handler: (data: E[C][K], message: SockMessage<E[C][K]>) => void,
  client?: SockClient<E>,
): ChannelSignal<E, C>
export function useChannel<E extends EventMap = AnyEvents, C extends keyof E & string = keyof E & string>(
  channel: C,
  handler: (event: keyof E[C] & string, message: SockMessage<E[C][keyof E[C] & string]>) => void,
  client?: SockClient<E>,
): ChannelSignal<E, C>
export function useChannel(channel: string, a: string | Handler, b?: Handler | Client, c?: Client): ChannelSignal<AnyEvents, string> {
  const event = typeof a === 'string' ? a : undefined
  const handler = (event === undefined ? a : b) as Handler
  const client = useSockClient((event === undefined ? b : c) as Client | undefined)
  const latest = useRef(handler)
  useInsertionEffect(() => {
    latest.current = handler
  })
  useEffect(() => {
    const release = hold(client, channel)
    const fn: Handler = (x, y) => latest.current(x, y)
    const off = event === undefined ? client.on(channel, fn) : client.on(channel, event, fn)
    return () => {
      off()
      release()
    }
  }, [client, channel, event])
  const send = useRef<{ client: Client; channel: string; fn: ChannelSignal<AnyEvents, string> }>(undefined)
  if (send.current?.client !== client || send.current.channel !== channel) send.current = { client, channel, fn: (e, data) => client.signal(channel, e, data) }
  return send.current.fn
}

/** `useChannel` under pocketsocket's word for an event: the same hook. */
export const useSignal = useChannel

/** The state of `channel` (`connecting`, `open`, `reconnecting`, `closed`, `giveup`, or `undefined` when not joined), re-rendered on each change. */
export function useConnectionState(channel: string, client?: SockClient<any>): ConnectionState | undefined {
  const c = useSockClient(client)
  const store = useRef<{ c: Client; channel: string; subscribe: (cb: () => void) => () => void }>(undefined)
  if (store.current?.c !== c || store.current.channel !== channel) {
    store.current = { c, channel, subscribe: (cb) => c.on('socket', (_event: string, info: LifecycleInfo) => info.channel === channel && cb()) }
  }
  return useSyncExternalStore(
    store.current.subscribe,
    () => c.stateOf(channel),
    () => undefined,
  )
}

const NOBODY: readonly Instance[] = Object.freeze([])

/**
 * The instances in `channel` (the presence feature, which `sock-client` has), re-rendered when someone joins or
 * leaves; joins the channel while mounted, as the other hooks do.
 */
export function usePresence(channel: string, client?: SockClient<any>): readonly Instance[] {
  const c = useSockClient(client)
  const p = presenceOf(c, channel)
  useEffect(() => hold(c, channel), [c, channel])
  // One subscribe function per presence: a new one would resubscribe on every render.
  const store = useRef<{ p: typeof p; subscribe: (cb: () => void) => () => void }>(undefined)
  if (store.current?.p !== p) store.current = { p, subscribe: (cb) => p.on('change', cb) }
  return useSyncExternalStore(
    store.current.subscribe,
    () => p.snapshot(),
    () => NOBODY,
  )
}

export type { Instance }
