// `sock-client/debug`: the `debug` option, structured entries of every connection's steps, never the token.
export { debug, debugLine } from '../debug'
export type { DebugEntry, DebugEvent, DebugOptions } from '../debug'
