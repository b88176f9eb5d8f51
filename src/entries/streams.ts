// `sock-client/streams`: stream() and handleStream() with credit-based flow control.
export { handleStream, isStreamError, stream, StreamError, streams } from '../streams'
export type { HandleStreamOptions, Piece, SockReader, SockWriter, StreamOptions } from '../streams'
