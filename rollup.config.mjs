// Builds dist/:
// - ESM + CJS + types for '.' and './server' (dependencies stay external: npm installs them);
// - UMD bundles for a <script> tag (global `Sock`; the core, and core + msgpack), with every dependency inlined and resolved for the
//   browser: isomorphic-ws becomes the native WebSocket, so no `ws` or `node:*` code gets in.
// - the `sock` command line (dist/cli.js, Node only), a bundle of its own with a shebang.
import typescript from '@rollup/plugin-typescript'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import commonjs from '@rollup/plugin-commonjs'
import terser from '@rollup/plugin-terser'
import { dts } from 'rollup-plugin-dts'
import { chmodSync, readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'))
const external = (id) => Object.keys(pkg.dependencies).some((d) => id === d || id.startsWith(`${d}/`)) || id.startsWith('node:')
const entries = { index: 'src/index.ts', server: 'src/server/index.ts', msgpack: 'src/msgpack.ts' }
const ts = () => typescript({ tsconfig: './tsconfig.json', include: ['src/**/*.ts'], noEmit: false, declaration: false, outDir: undefined, noEmitOnError: true })

const banner = (extra = '') => `/*! sock-client v${pkg.version} | MIT | bundles eventemitter3 (MIT)${extra} */`

// `sock-client/server` under the `browser` condition: a clear error instead of a bundle full of Node code.
const serverBrowserStub = {
  name: 'server-browser-stub',
  generateBundle() {
    this.emitFile({
      type: 'asset',
      fileName: 'server.browser.js',
      source: "throw new Error('sock-client/server is the embedded Sock server and runs in Node only: import SockClient from \\'sock-client\\' in the browser')\n",
    })
  },
}

// The script-tag bundles take browser stand-ins for two Node-minded modules: no TCP socket to cork, and a timer
// per connection instead of the shared timer heap (which pays off with hundreds of clients in one process).
const BROWSER_SWAPS = { './cork': 'src/cork-browser.ts', './timers': 'src/timers-browser.ts' }
const browserSwaps = {
  name: 'browser-swaps',
  resolveId: (id, importer) => (BROWSER_SWAPS[id] && importer?.includes('/src/') ? new URL(BROWSER_SWAPS[id], import.meta.url).pathname : null),
}

/** A minified UMD bundle for a script tag: `window.Sock`. */
const umd = (input, file, extra) => ({
  input,
  // A browser bundle must never pull in Node code: fail the build instead of shipping it.
  external: (id) => {
    if (id === 'ws' || id.startsWith('node:') || id.startsWith('./server') || id.includes('/server/')) throw new Error(`browser bundle ${file} would include Node code: ${id}`)
    return false
  },
  plugins: [
    browserSwaps,
    ts(),
    nodeResolve({ browser: true, exportConditions: ['browser', 'import', 'default'], preferBuiltins: false }),
    commonjs(),
    terser({ ecma: 2020, compress: { passes: 2 }, format: { comments: /^!/ } }),
  ],
  output: { file, format: 'umd', name: 'Sock', exports: 'named', sourcemap: true, banner: banner(extra) },
})

export default [
  {
    input: entries,
    external,
    plugins: [ts(), serverBrowserStub],
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js', sourcemap: true },
      { dir: 'dist', format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: 'chunks/[name]-[hash].cjs', sourcemap: true, exports: 'named', interop: 'auto' },
    ],
  },
  {
    input: entries,
    external,
    plugins: [dts({ tsconfig: './tsconfig.json', compilerOptions: { noEmit: false } })],
    output: [
      { dir: 'dist', format: 'es', entryFileNames: '[name].d.ts', chunkFileNames: 'chunks/[name]-[hash].d.ts' },
      { dir: 'dist', format: 'es', entryFileNames: '[name].d.cts', chunkFileNames: 'chunks/[name]-[hash].d.cts' },
    ],
  },
  umd('src/index.ts', 'dist/sock-client.umd.min.js'),
  umd('src/umd-msgpack.ts', 'dist/sock-client.msgpack.umd.min.js', ', msgpackr (MIT)'),
  {
    // The command line: its own bundle, so nothing of it reaches the browser/core entries.
    input: 'src/cli/index.ts',
    external,
    plugins: [ts(), { name: 'executable', writeBundle: () => chmodSync('dist/cli.js', 0o755) }],
    // A directory output: the server loads its Redis bridge lazily (a chunk of its own), as in dist/server.js.
    output: { dir: 'dist', format: 'es', entryFileNames: 'cli.js', chunkFileNames: 'chunks/cli-[name]-[hash].js', banner: (c) => (c.isEntry ? '#!/usr/bin/env node' : ''), sourcemap: true },
  },
]
