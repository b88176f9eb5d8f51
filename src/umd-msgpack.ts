/** The script-tag bundle with msgpack: everything of the core (`window.Sock`) plus `Sock.msgpack()`. */
export * from './index'
export { msgpack } from './msgpack'
