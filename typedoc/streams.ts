/**
 * The streams feature: streams with credit-based flow control: `stream()` and `handleStream()`. `new SockClient({ features: [replies, streams] })`.
 * @module sock-client/streams
 */
export * from '../src/entries/streams'
