// Bundle size of each client's browser entry: esbuild (platform 'browser', so the `browser` condition and field
// apply; sock-client's built `dist/index.js`, whose `#websocket` import resolves to the browser's WebSocket), minified, then gzip -9.
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))

/** client id -> the module a browser app imports (`null`: the browser's own WebSocket, nothing to ship). */
export const ENTRIES = {
  ws: null,
  'sock-message': { path: 'dist/index.js' },
  rws: { contents: "export { default } from 'reconnecting-websocket'" },
  partysocket: { contents: "export * from 'partysocket'; export { default } from 'partysocket'" },
  'socket.io': { contents: "export * from 'socket.io-client'; export { default } from 'socket.io-client'" },
}

export async function bundleSize(id) {
  const entry = ENTRIES[id]
  if (entry === null) return { min: 0, gzip: 0, note: 'native WebSocket' }
  if (!entry) return undefined
  const r = await build({
    ...(entry.path ? { entryPoints: [entry.path] } : { stdin: { contents: entry.contents, resolveDir: root, loader: 'js' } }),
    absWorkingDir: root,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    write: false,
    logLevel: 'silent',
    metafile: true,
  })
  const code = r.outputFiles[0].contents
  const inputs = Object.keys(r.metafile.inputs)
  const nodeOnly = inputs.filter((f) => /node_modules\/ws\/|^node:/.test(f))
  if (nodeOnly.length) throw new Error(`${id}: the browser bundle pulled in Node-only code: ${nodeOnly.join(', ')}`)
  return { min: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength, modules: inputs.length }
}
