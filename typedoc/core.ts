/**
 * The kernel: one address, reconnect with full jitter, keep-alive and liveness, the bounded queue with flow control
 * and an outcome per send, `signal` / `on` / `once` / `off` for type-1 text and type-7 envelopes, lifecycle events
 * and typed errors. Features compose onto it: `new SockClient({ features: [chunks, files] })`, each from its own subpath.
 * @module sock-client/core
 */
export * from '../src/core'
