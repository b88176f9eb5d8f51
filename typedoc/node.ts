/**
 * Node stream adapters for sock-client streams: `toNodeReadable()` and `toNodeWritable()` (Node only).
 * @module sock-client/node
 */
export * from '../src/node'
