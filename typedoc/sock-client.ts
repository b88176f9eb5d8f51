/**
 * The full client: the kernel with every feature composed in (every `setup()` form with broadcast and failover,
 * chunks, files, REST with the registration check, codecs, requests and replies, streams, presence, the debug log),
 * its errors and guards, and the public types.
 * `npm i` the package and `import { SockClient } from 'sock-client'`.
 * @module sock-client
 */
export * from '../src/index'
