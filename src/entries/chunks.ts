// `sock-client/chunks`: envelopes larger than the server's frame limit, split and reassembled with bounded memory.
export { chunks } from '../chunks'
export type { ChunksOptions } from '../chunks'
