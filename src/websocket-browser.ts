/**
 * The WebSocket a client uses when `options.WebSocket` is not given, in browsers, Deno and Bun (and every bundle
 * for them): the runtime's standard one, read when a client is made. Never references `ws`, so no Node code reaches
 * a page, and Deno needs no permission but --allow-net. Node gets `./websocket`.
 */
import type { WebSocketLike } from './connection'

export function defaultWebSocket(): WebSocketLike | undefined {
  return globalThis.WebSocket as WebSocketLike | undefined
}
