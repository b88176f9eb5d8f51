// `sock-client/protocol`: the Sock frame codec and sock-client's own frame formats, for other implementers and
// tools (docs/protocol.md describes them): connection URLs, frames, envelopes, chunks, base64 and CRC-32 as files
// use them, type-9 control frames (replies and streams), and the retry policy's pure functions. Not needed to use the client.
export { channelUrl, encodeFrame, decodeFrame, redact, utf8Length, isName, TYPE_PING, TYPE_WHOAMI, TYPE_TEXT, TYPE_FILE, DEFAULT_MAX_FRAME_BYTES } from './protocol'
export type { Frame, Decoded } from './protocol'
export { TYPE_EVENT, TYPE_CHUNK, MAX_ID, MAX_EVENT, encodeEnvelope, decodeEnvelope } from './envelope'
export type { Envelope } from './envelope'
export { chunkData, splitChunks } from './chunks'
export { TYPE_CONTROL, parseControl, control } from './control'
export type { Control } from './control'
export { toBase64, fromBase64, crc32 } from './bytes'
export { backoffDelay, backoffCap, DEFAULT_RECONNECT } from './backoff'
export { parseAddress, makeAddress } from './address'
