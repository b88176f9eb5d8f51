/**
 * The chunks feature: an envelope larger than the server's frame limit travels as type-8 chunks and is reassembled
 * with bounded memory. `new SockClient({ features: [chunks] })`.
 * @module sock-client/chunks
 */
export * from '../src/chunks'
