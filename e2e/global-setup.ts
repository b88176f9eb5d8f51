// One headless Debian chromium for the whole e2e run; every test file connects to it over Playwright's protocol.
import { chromium, type BrowserServer } from 'playwright-core'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    wsEndpoint: string
  }
}

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

let server: BrowserServer | undefined

export async function setup(project: TestProject) {
  server = await chromium.launchServer({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  project.provide('wsEndpoint', server.wsEndpoint())
}

export async function teardown() {
  await server?.close()
}
