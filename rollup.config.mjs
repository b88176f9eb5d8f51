// Builds dist/: ESM + CJS + types for '.' and './server'. Dependencies stay external (npm installs them).
import typescript from '@rollup/plugin-typescript'
import { dts } from 'rollup-plugin-dts'
import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'))
const external = (id) => Object.keys(pkg.dependencies).some((d) => id === d || id.startsWith(`${d}/`)) || id.startsWith('node:')
const entries = { index: 'src/index.ts', server: 'src/server/index.ts', msgpack: 'src/msgpack.ts' }
const ts = () => typescript({ tsconfig: './tsconfig.json', include: ['src/**/*.ts'], noEmit: false, declaration: false, outDir: undefined, noEmitOnError: true })

export default [
  {
    input: entries,
    external,
    plugins: [ts()],
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
]
