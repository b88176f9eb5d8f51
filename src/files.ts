/**
 * The files feature (`sock-client/files`): `sendFile`, and event `file` for what arrives. A file that fits one frame
 * goes out as sockc's type 2 (`<name>:<base64>`), so any Sock peer reads it; a larger one as a `file` envelope with
 * its size and CRC-32, which needs the chunks feature, and which the receiver checks before it delivers.
 */
import { crc32, fromBase64, toBase64 } from './bytes'
import { tryFrame, type Channel, type SendReport } from './channel'
import type { SockClient, SockFile } from './client'
import type { Connection } from './connection'
import { DEV } from './dev'
import { encodeEnvelope } from './envelope'
import { ProtocolError, ValidationError } from './errors'
import type { Feature } from './feature'
import { TYPE_FILE, type Frame } from './protocol'

/** What `sendFile` accepts. */
export type FileInput = Uint8Array | ArrayBuffer | ArrayBufferView | Blob

export interface SendFileOptions {
  /** Called as chunks are written: bytes done of total (of the transfer, base64 included). */
  onProgress?: (done: number, total: number) => void
}

/** The payload of a file envelope (event `file`): name, size, CRC-32 and the bytes in base64. */
interface FilePayload {
  name: string
  size: number
  crc32: string
  base64: string
}

function isFilePayload(v: unknown): v is FilePayload {
  const o = v as FilePayload | null
  return !!o && typeof o === 'object' && typeof o.name === 'string' && typeof o.size === 'number' && typeof o.crc32 === 'string' && typeof o.base64 === 'string'
}

function checkFileName(name: unknown): string {
  if (typeof name !== 'string' || name === '' || /[:/\\\u0000]/.test(name) || name === '.' || name === '..') {
    throw new ValidationError('name', DEV ? `invalid file name ${JSON.stringify(name) ?? String(name)}: give a base name without ':' or a path separator, as in 'photo.png'` : 'invalid file name')
  }
  return name
}

async function toBytes(input: FileInput): Promise<Uint8Array> {
  if (input instanceof Uint8Array) return input
  if (input instanceof ArrayBuffer) return new Uint8Array(input)
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
  return new Uint8Array(await (input as Blob).arrayBuffer())
}

function isFileInput(v: unknown): v is FileInput {
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v) || (typeof Blob !== 'undefined' && v instanceof Blob)
}

/**
 * Sends a file on `channel` (joining it). Small ones go out as sockc's type 2 (`name:base64`); larger ones as a
 * chunked `file` envelope with length and CRC-32, checked by the receiver. Receivers get event `file` with
 * `{ name, bytes, size }`.
 */
export function sendFile(client: SockClient<any>, channel: string, name: string, bytes: FileInput, options: SendFileOptions = {}): Promise<SendReport> {
  client.checkWire(channel)
  checkFileName(name)
  if (!isFileInput(bytes)) throw new ValidationError('bytes', DEV ? 'sendFile() takes a Uint8Array, ArrayBuffer, Buffer or Blob' : 'invalid bytes')
  const ch = client.joined(channel)
  return toBytes(bytes).then((b) => {
    const base64 = toBase64(b)
    const small = tryFrame(TYPE_FILE, `${name}:${base64}`, client.k.maxFrameBytes)
    if (small !== undefined) {
      return ch.send(small).then((r) => {
        client.callback(options.onProgress, 'onProgress', channel, b.length, b.length)
        return r
      })
    }
    const id = client.nextId()
    return ch.envelope(id, encodeEnvelope(id, 'file', { name, size: b.length, crc32: crc32(b), base64 } satisfies FilePayload), options.onProgress)
  })
}

/** A type-2 frame, `<name>:<base64>`, as event `file`. */
function read(ch: Channel, conn: Connection, f: Frame): void {
  const i = f.data.indexOf(':')
  const bytes = i > 0 ? fromBase64(f.data.slice(i + 1)) : undefined
  if (!bytes) return ch.fail(conn, new ProtocolError('ERR_PROTOCOL', DEV ? `received a type-2 file frame from '${f.from}' that is not <name>:<base64>` : 'bad file frame'))
  ch.deliver(conn, f.from, f.type, 'file', { name: f.data.slice(0, i), bytes, size: bytes.length } satisfies SockFile, f.data.length)
}

/** A `file` envelope's payload, checked, as a `SockFile`; any other payload of event `file` is left as it is. */
function readEnvelope(data: unknown, from: string): unknown {
  if (!isFilePayload(data)) return data
  const bytes = fromBase64(data.base64)
  if (!bytes || bytes.length !== data.size || crc32(bytes) !== data.crc32) {
    return new ProtocolError(
      'ERR_PROTOCOL',
      DEV ? `dropped file '${data.name}' from '${from}': ${!bytes ? 'bad base64' : bytes.length !== data.size ? `${bytes.length} bytes instead of ${data.size}` : 'CRC-32 mismatch'}` : 'bad file',
    )
  }
  return { name: data.name, bytes, size: bytes.length } satisfies SockFile
}

/** The files feature: `new SockClient({ features: [files, chunks] })` (`sock-client` has it). */
export const files: Feature = {
  name: 'files',
  read: { [TYPE_FILE]: read },
  events: { file: readEnvelope },
}
