/**
 * The Sock frame codec and sock-client's own frame formats, for other implementers and tools (docs/protocol.md
 * describes them): connection URLs, frames, envelopes, chunks, base64 and CRC-32 as files use them, and the retry
 * policy's pure functions. Not needed to use the client.
 * @module sock-client/protocol
 */
export * from '../src/protocol-entry'
