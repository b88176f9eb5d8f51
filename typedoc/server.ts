/**
 * The embedded Sock server (Node only): `createSockServer(options)`, with scale-out through Redis (`redis`, which
 * needs the optional peer dependency ioredis: `npm i ioredis`).
 * @module sock-client/server
 */
export * from '../src/server/index'
