// One headless Debian chromium for the whole e2e run; every test file connects to it over Playwright's protocol.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserServer } from 'playwright-core'
import { rollup } from 'rollup'
import { nodeResolve } from '@rollup/plugin-node-resolve'
import commonjs from '@rollup/plugin-commonjs'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    wsEndpoint: string
    vendorDir: string
  }
}

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

let server: BrowserServer | undefined
let vendorDir: string | undefined

export async function setup(project: TestProject) {
  // eventemitter3's ESM entry wraps its CJS file, which a browser cannot load: what a CDN such as esm.sh would
  // serve for the import map of the ESM test is an ESM build of it, made here.
  vendorDir = mkdtempSync(join(tmpdir(), 'sock-e2e-vendor-'))
  const bundle = await rollup({ input: 'eventemitter3', plugins: [nodeResolve({ browser: true }), commonjs()] })
  await bundle.write({ file: join(vendorDir, 'eventemitter3.js'), format: 'es' })
  await bundle.close()

  server = await chromium.launchServer({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  project.provide('wsEndpoint', server.wsEndpoint())
  project.provide('vendorDir', vendorDir)
}

export async function teardown() {
  await server?.close()
  if (vendorDir) rmSync(vendorDir, { recursive: true, force: true })
}
