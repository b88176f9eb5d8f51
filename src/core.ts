// `sock-client/core`: the kernel. One address (`'host:port'`, `(host, port)` or a URL), reconnect with full
// jitter, keep-alive and liveness, the bounded queue with flow control and an outcome per send, `signal` / `on` /
// `once` / `off` for type-1 text and type-7 envelopes, lifecycle events and typed errors. Features compose onto it:
// `new SockClient({ features: [chunks, files] })`, each from its own subpath.
export { SockClient, SockConnection, SOCKET } from './client'
export type { CoreOptions as SockClientOptions, CoreOptions, SockMessage, SockFile, LifecycleInfo, LifecycleEvent, EventMap, AnyEvents, Unsubscribe, SignalOptions } from './client'
export type { Address, AddressList, Mode, ListType, SetupArgs, Port } from './address'
export type { ConnectionState, QueueOptions, WebSocketLike } from './connection'
export type { SendReport, ConnectionInfo, JoinOptions, TokenFunction } from './channel'
export type { ReconnectOptions } from './backoff'
export type { Codec } from './envelope'
export type { Feature } from './feature'
export * from './errors'
