/**
 * The files feature: `sendFile(client, channel, name, bytes)` and event `file` (sockc's type 2, or a checked file
 * envelope in chunks). `new SockClient({ features: [files, chunks] })`.
 * @module sock-client/files
 */
export * from '../src/files'
