// The runtimes of the smoke test (test/runtimes.test.ts), each installed from its npm package into a prefix of its
// own under .runtimes/ (git-ignored): not devDependencies, since `node@22` would put its `node` first on the PATH
// of every npm script, and the four weigh about 600 MB that a contributor's `npm ci` need not fetch.
//
//   node scripts/runtimes.mjs            installs what is missing, and updates node-latest to the newest Node
//   node scripts/runtimes.mjs --missing  installs only what is missing (what the test does)
//
// Node 20 is the Node running the tests. bun and deno are pinned to the versions tested; node@22 is the newest 22.x.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

export const RUNTIMES = {
  'node-22': { spec: 'node@22', bin: 'node' },
  'node-latest': { spec: 'node@latest', bin: 'node' },
  bun: { spec: 'bun@1.4.5', bin: 'bun' },
  deno: { spec: 'deno@2.9.6', bin: 'deno' },
}

/** The executable of runtime `name`. */
export const binOf = (name) => join(root, '.runtimes', name, 'node_modules', '.bin', RUNTIMES[name].bin)

/** Installs the runtimes that are missing (all of them again with `update`; npm keeps what is current). */
export function install({ update = false, log = console.log } = {}) {
  for (const [name, { spec }] of Object.entries(RUNTIMES)) {
    if (!update && existsSync(binOf(name))) continue
    const prefix = join(root, '.runtimes', name)
    mkdirSync(prefix, { recursive: true })
    log(`runtimes: npm i --prefix .runtimes/${name} ${spec}`)
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)))
    const r = spawnSync('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', spec], { cwd: prefix, env, encoding: 'utf8', timeout: 300_000 })
    if (r.status !== 0 || !existsSync(binOf(name))) throw new Error(`could not install ${spec} into .runtimes/${name}:\n${r.stdout}${r.stderr}${r.error ?? ''}`)
    const v = spawnSync(binOf(name), ['--version'], { encoding: 'utf8' })
    log(`runtimes: ${name} ${v.stdout.trim().split('\n')[0]}`)
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) install({ update: !process.argv.includes('--missing') })
