/**
 * The replies feature: requests and replies between instances: `request()`, `requestAll()`, `handle()`, fast replies, typed request maps. `new SockClient({ features: [replies] })`.
 * @module sock-client/replies
 */
export * from '../src/entries/replies'
