// Builds dist/:
// - dist/*.js / *.cjs: every entry for Node (and Deno and Bun), with long error messages; the two modules that differ
//   by runtime (the default WebSocket, the msgpackr loader) are entries of their own, imported as `#websocket` and
//   `#msgpackr`, which package.json's `imports` map resolves per runtime;
// - dist/browser/: the client entries for bundlers' production builds (package.json's `import` condition), with short
//   error messages (`./dev-production`), the browser timer, no write batching and the browser WebSocket swapped in;
// - UMD bundles for a <script> tag (global `Sock`): the full client, the kernel alone, and the full client with msgpack;
// - types for every entry, with `@internal` members left out;
// - the `sock` command line (dist/cli.js, Node only), in the Node ESM build so that it shares the client's and server's chunks.
import typescript from '@rollup/plugin-typescript'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import commonjs from '@rollup/plugin-commonjs'
import terser from '@rollup/plugin-terser'
import { dts } from 'rollup-plugin-dts'
import { chmodSync, readFileSync, rmSync } from 'node:fs'

// dist/ from scratch: npm pack ships whatever is in it, and chunk names change with their content.
rmSync(new URL('./dist', import.meta.url), { recursive: true, force: true })

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'))
const packages = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies)]
const external = (id) => packages.some((d) => id === d || id.startsWith(`${d}/`)) || id.startsWith('node:') || id.startsWith('#')

/** The client's entries: the full client, the kernel, each feature (src/entries/: only its public names), the protocol codec and msgpack. */
export const CLIENT_ENTRIES = {
  index: 'src/index.ts',
  core: 'src/core.ts',
  addresses: 'src/entries/addresses.ts',
  chunks: 'src/entries/chunks.ts',
  files: 'src/entries/files.ts',
  rest: 'src/entries/rest.ts',
  messages: 'src/entries/messages.ts',
  codecs: 'src/entries/codecs.ts',
  protocol: 'src/protocol-entry.ts',
  msgpack: 'src/msgpack.ts',
  replies: 'src/entries/replies.ts',
  streams: 'src/entries/streams.ts',
  presence: 'src/entries/presence.ts',
  debug: 'src/entries/debug.ts',
  react: 'src/react.ts',
}
const entries = { ...CLIENT_ENTRIES, server: 'src/server/index.ts', node: 'src/node.ts' }
// Imported as `#<name>` by the Node ESM and CJS builds, resolved by package.json's `imports` (node: the first file, else the second).
const RUNTIME_MODULES = { websocket: ['src/websocket.ts', 'src/websocket-browser.ts'], msgpackr: ['src/msgpackr.ts', 'src/msgpackr-browser.ts'] }
const runtimeEntries = Object.fromEntries(Object.values(RUNTIME_MODULES).flatMap((files) => files.map((f) => [f.slice(4, -3), f])))
const runtimeImports = {
  name: 'runtime-imports',
  resolveId: (id, importer) => (id.startsWith('./') && RUNTIME_MODULES[id.slice(2)] && importer?.includes('/src/') ? { id: `#${id.slice(2)}`, external: true } : null),
}
const ts = () => typescript({ tsconfig: './tsconfig.json', include: ['src/**/*.ts'], noEmit: false, declaration: false, outDir: undefined, noEmitOnError: true })

const banner = (extra = '') => `/*! sock-client v${pkg.version} | MIT${extra} */`

// `sock-client/server` without the `node` condition (every bundler's browser build): instead of a bundle full of Node
// code, a build error that says what to do. Bundlers resolve every import before they tree-shake, and each reports the
// specifier it cannot resolve, so that specifier is the message; loaded anyway, the file throws the same words.
// No colon in it, which a Windows path cannot hold.
const SERVER_IN_BROWSER = "sock-client/server is the embedded Sock server and runs in Node only; in browser code, import { SockClient } from 'sock-client'"
const NODE_IN_BROWSER = "sock-client/node holds the Node stream adapters and runs in Node only; in browser code, use a stream's writable and readable"
const serverBrowserStub = {
  name: 'server-browser-stub',
  generateBundle() {
    for (const [fileName, text] of [
      ['server.browser.js', SERVER_IN_BROWSER],
      ['node.browser.js', NODE_IN_BROWSER],
    ]) {
      this.emitFile({ type: 'asset', fileName, source: `// ${text}\nimport ${JSON.stringify(`./ERROR ${text}`)}\nthrow new Error(${JSON.stringify(text)})\n` })
    }
  },
}

// Browser builds take stand-ins for the Node-minded modules: no TCP socket to cork, a timer per connection instead of
// the shared timer heap (which pays off with hundreds of clients in one process), the browser's WebSocket, msgpackr
// as a plain import; and, in production, short error messages.
const BROWSER_SWAPS = { './cork': 'src/cork-browser.ts', './timers': 'src/timers-browser.ts', './websocket': 'src/websocket-browser.ts', './msgpackr': 'src/msgpackr-browser.ts' }
const browserSwaps = (production) => {
  const swaps = production ? { ...BROWSER_SWAPS, './dev': 'src/dev-production.ts' } : BROWSER_SWAPS
  return {
    name: 'browser-swaps',
    resolveId: (id, importer) => (swaps[id] && importer?.includes('/src/') ? new URL(swaps[id], import.meta.url).pathname : null),
  }
}

/**
 * Terser for production browser code: private members (`private` in TypeScript, which are no API) take short names,
 * with one name cache across every chunk and entry of a build, so a member keeps its name wherever it is used.
 * The list is what the classes declare private; `npm test` checks that no public name is in it.
 */
export const MANGLED =
  /^(raw|retries|openedAt|lastReason|failure|queue|queuedBytes|waiting|nextPingAt|probeSentAt|lostAt|draining|refusedInbound|setState|stalled|schedule|probe|onWhoami|detach|lost|flush|awaitDrain|write|rejectQueue|stopTimers|emitter|channels|prefix|seq|wake|checkSetup|lifecycle|listen|joinedCheck|waiters|keys|any|settle|index|seen|hosts|ports|entries|forms|createdAt|failed|every|partial|finished|pending|timer|drop|finish|sweep|stop|clear|limits|onTimeout|str|client)$/
const mangle = (nameCache) => terser({ ecma: 2020, compress: { passes: 2 }, nameCache, format: { comments: /^!/ } })

/** A minified UMD bundle for a script tag: `window.Sock`. */
const umd = (input, file, extra) => ({
  input,
  // A browser bundle must never pull in Node code: fail the build instead of shipping it.
  external: (id) => {
    if (id === 'ws' || id.startsWith('node:') || id.startsWith('./server') || id.includes('/server/')) throw new Error(`browser bundle ${file} would include Node code: ${id}`)
    return false
  },
  plugins: [browserSwaps(true), ts(), nodeResolve({ browser: true, exportConditions: ['browser', 'import', 'default'], preferBuiltins: false }), commonjs(), mangle({})],
  // The maps stay in dist/ for `npm run size` and the tests, unnamed in the bundle and left out of the package.
  output: { file, format: 'umd', name: 'Sock', exports: 'named', sourcemap: 'hidden', banner: banner(extra) },
})

/**
 * The client entries for bundlers' production builds, as ESM with short messages. A development build (the
 * `development` condition) and a bundler that `require()`s the package get the Node build, which works in a page
 * too: it feature-detects what is Node's, and `#websocket` resolves to the browser's WebSocket there.
 */
const browser = {
  input: CLIENT_ENTRIES,
  external: (id) => packages.some((d) => id === d || id.startsWith(`${d}/`)),
  // Not minified: the application's bundler minifies, and needs the /* @__PURE__ */ annotations terser would drop.
  plugins: [browserSwaps(true), ts()],
  // The errors in a chunk of their own: `import { isSockError }` then brings only them.
  output: {
    dir: 'dist/browser',
    format: 'es',
    entryFileNames: '[name].js',
    chunkFileNames: 'chunks/[name]-[hash].js',
    sourcemap: 'hidden',
    manualChunks: (id) => (/\/src\/(errors|secrets|dev-production)\.ts$/.test(id) ? 'errors' : undefined),
  },
}

const executable = { name: 'executable', writeBundle: () => chmodSync('dist/cli.js', 0o755) }

export default [
  {
    input: { ...entries, ...runtimeEntries, cli: 'src/cli/index.ts' },
    external,
    plugins: [runtimeImports, ts(), serverBrowserStub, executable],
    output: { dir: 'dist', format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js', sourcemap: 'hidden', banner: (c) => (c.name === 'cli' ? '#!/usr/bin/env node' : '') },
  },
  {
    input: { ...entries, ...runtimeEntries },
    external,
    plugins: [runtimeImports, ts()],
    output: { dir: 'dist', format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs', sourcemap: 'hidden', exports: 'named', interop: 'auto' },
  },
  browser,
  {
    input: entries,
    external,
    plugins: [dts({ tsconfig: './tsconfig.json', compilerOptions: { noEmit: false, stripInternal: true } })],
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: 'chunks/[name]-[hash].d.ts' },
      { dir: 'dist', format: 'es', entryFileNames: '[name].d.cts', chunkFileNames: 'chunks/[name]-[hash].d.cts' },
    ],
  },
  umd('src/index.ts', 'dist/sock-client.umd.min.js'),
  umd('src/core.ts', 'dist/sock-client.core.umd.min.js'),
  umd('src/umd-msgpack.ts', 'dist/sock-client.msgpack.umd.min.js', ', msgpackr (MIT)'),
]
