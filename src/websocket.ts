/**
 * The WebSocket a client uses when `options.WebSocket` is not given, for Node (the package's `#websocket` import
 * under the `node` condition; see package.json). The runtime's standard WebSocket where there is one (Node >= 22),
 * else `ws` (Node 20), which also brings the ping-frame liveness and write batching that `./connection` and
 * `./cork` give a `ws` socket. Browsers, Deno and Bun get `./websocket-browser`, which never loads `ws`.
 */
import WS from 'ws'
import type { WebSocketLike } from './connection'

export function defaultWebSocket(): WebSocketLike | undefined {
  return (globalThis.WebSocket as WebSocketLike | undefined) ?? (WS as unknown as WebSocketLike)
}
