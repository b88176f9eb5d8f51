/**
 * `sock-client/node`: Node stream adapters for sock-client's streams (Node only, never in a browser bundle).
 * `await pipeline(createReadStream(path), toNodeWritable(writer))` and
 * `await pipeline(toNodeReadable(reader), createWriteStream(path))` keep the credit-based backpressure end to end.
 */
import { Readable, Writable } from 'node:stream'
import type { SockReader, SockWriter } from './streams'

/** A Readable of a stream's pieces (Buffers; text pieces as UTF-8); each `_read` takes one piece, which grants credit. */
export function toNodeReadable(reader: SockReader, options: { highWaterMark?: number } = {}): Readable {
  return new Readable({
    highWaterMark: options.highWaterMark,
    read() {
      reader.read().then(
        (r) => this.push(r.done ? null : typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength)),
        (e) => this.destroy(e),
      )
    },
    destroy(error, callback) {
      if (error) reader.cancel(error)
      callback(error)
    },
  })
}

/** A Writable into a stream: each write waits for the reader's credit; `end()` closes the stream and waits for `delivered`. */
export function toNodeWritable(writer: SockWriter, options: { highWaterMark?: number } = {}): Writable {
  return new Writable({
    highWaterMark: options.highWaterMark,
    write(chunk: Buffer | string, _encoding, callback) {
      writer.write(chunk).then(() => callback(), callback)
    },
    final(callback) {
      writer
        .close()
        .then(() => writer.delivered)
        .then(() => callback(), callback)
    },
    destroy(error, callback) {
      if (error) writer.abort(error)
      callback(error)
    },
  })
}
