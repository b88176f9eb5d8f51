// `sock-client`: the full client (every feature composed in), its errors and guards, and the public types.
// The kernel alone is `sock-client/core`; each feature has a subpath of its own; frame codecs for other
// implementers are in `sock-client/protocol`.
export { SockClient, ALL_FEATURES } from './full'
export type { SockClientOptions } from './full'
export { SockConnection, SOCKET } from './client'
export type { CoreOptions, SockMessage, SockFile, LifecycleInfo, LifecycleEvent, EventMap, AnyEvents, Unsubscribe } from './client'
export type { FileInput, SendFileOptions } from './files'
export type { MessagesOptions } from './messages'
export type { Codec } from './envelope'
export type { Address, AddressList, Mode, ListType, SetupArgs, Port, NamedAddress } from './address'
export type { ConnectionState, QueueOptions, WebSocketLike } from './connection'
export type { SendReport, ConnectionInfo, JoinOptions, TokenFunction } from './channel'
export type { ReconnectOptions } from './backoff'
export type { Instance } from './rest'
export type { Presence, PresenceEvent, PresenceOptions } from './presence'
export type { DebugEntry, DebugEvent, DebugOptions } from './debug'
export type { Feature } from './feature'
export * from './errors'
