// `sock-client/files`: sendFile() and event `file` (type 2 as sockc sends it; larger files chunked, checked by CRC-32).
export { files, sendFile } from '../files'
export type { FileInput, SendFileOptions } from '../files'
export type { SockFile } from '../client'
