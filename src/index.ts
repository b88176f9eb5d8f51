export { SockClient, SockConnection, SOCKET } from './client'
export type { SockClientOptions, SockMessage, SockFile, LifecycleInfo, LifecycleEvent, EventMap, AnyEvents, Unsubscribe, FileInput, SendFileOptions, MessagesOptions } from './client'
export { json, registerCodec } from './codec'
export type { Codec } from './codec'
export { AddressBook, parseAddress, makeAddress, mix, flat } from './address'
export type { Address, AddressList, Mode, ListType, SetupArgs, Port, NamedAddress } from './address'
export type { ConnectionState, QueueOptions, WebSocketLike } from './connection'
export type { SendReport, ConnectionInfo } from './channel'
export { backoffDelay, backoffCap, DEFAULT_RECONNECT } from './backoff'
export type { ReconnectOptions } from './backoff'
export {
  channelUrl,
  encodeFrame,
  decodeFrame,
  redact,
  utf8Length,
  isName,
  TYPE_PING,
  TYPE_WHOAMI,
  TYPE_TEXT,
  TYPE_FILE,
  DEFAULT_MAX_FRAME_BYTES,
} from './protocol'
export type { Frame, Decoded } from './protocol'
export { TYPE_EVENT, TYPE_CHUNK } from './envelope'
export { toBase64, fromBase64, crc32 } from './bytes'
export type { Instance } from './rest'
export * from './errors'
