// Bundle size of each client's browser entry: esbuild (platform 'browser', so the `browser` condition and field
// apply), minified, then gzip -9. sock-client is imported by name through its exports map from a project that has it
// installed (a link to this checkout), as an application's production build resolves it: the browser build, with
// short messages, whose `#websocket` import is the browser's WebSocket. The same figure as test/size.test.ts's full client.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))

/** client id -> the module a browser app imports (`null`: the browser's own WebSocket, nothing to ship). */
export const ENTRIES = {
  ws: null,
  'sock-message': { contents: "export * from 'sock-client'", linked: true },
  rws: { contents: "export { default } from 'reconnecting-websocket'" },
  partysocket: { contents: "export * from 'partysocket'; export { default } from 'partysocket'" },
  'socket.io': { contents: "export * from 'socket.io-client'; export { default } from 'socket.io-client'" },
}

export async function bundleSize(id) {
  const entry = ENTRIES[id]
  if (entry === null) return { min: 0, gzip: 0, note: 'native WebSocket' }
  if (!entry) return undefined
  let dir = root
  if (entry.linked) {
    dir = mkdtempSync(join(tmpdir(), 'sock-bundle-'))
    mkdirSync(join(dir, 'node_modules'))
    symlinkSync(root, join(dir, 'node_modules', 'sock-client'), 'dir')
  }
  try {
    return await measure(id, entry, dir)
  } finally {
    if (dir !== root) rmSync(dir, { recursive: true, force: true })
  }
}

async function measure(id, entry, dir) {
  const r = await build({
    stdin: { contents: entry.contents, resolveDir: dir, loader: 'js' },
    absWorkingDir: dir,
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
