/**
 * A msgpack codec (msgpackr, an optional peer dependency: `npm i msgpackr`) that keeps Date, Map, Set, BigInt and
 * Uint8Array, safe under a strict Content-Security-Policy. `new SockClient({ codec: msgpack() })`.
 * @module sock-client/msgpack
 */
export * from '../src/msgpack'
