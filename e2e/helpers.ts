import { createReadStream, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { extname, join, normalize, resolve, sep } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { inject } from 'vitest'

export const root = resolve(__dirname, '..')

/** The shared browser (see global-setup.ts). */
export function connectBrowser(): Promise<Browser> {
  return chromium.connect(inject('wsEndpoint'))
}

const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.map': 'application/json', '.css': 'text/css' }

export interface PageServer {
  origin: string
  close(): Promise<void>
}

/**
 * The page origin: a plain HTTP server on its own loopback port (so the Sock server is cross-origin),
 * serving /pages/* from e2e/pages and /dist/* from the build. `csp` is sent as a Content-Security-Policy header on HTML pages.
 */
export async function startPageServer(options: { csp?: string } = {}): Promise<PageServer> {
  const mounts: Record<string, string> = {
    '/pages/': join(root, 'e2e/pages'),
    '/dist/': join(root, 'dist'),
  }
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    const mount = Object.keys(mounts).find((m) => path.startsWith(m))
    const base = mount && mounts[mount]!
    const file = base && normalize(join(base, decodeURIComponent(path.slice(mount.length))))
    if (!base || !file?.startsWith(base + sep) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404)
      return void res.end()
    }
    const type = MIME[extname(file)] ?? 'application/octet-stream'
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store', ...(options.csp && type.startsWith('text/html') ? { 'content-security-policy': options.csp } : {}) })
    createReadStream(file).pipe(res)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      }),
  }
}

/** A page with `window.Sock` loaded, and every console error and page error collected. */
export async function openPage(context: BrowserContext, url: string): Promise<Page & { errors: string[] }> {
  const page = (await context.newPage()) as Page & { errors: string[] }
  page.errors = []
  page.on('pageerror', (e) => page.errors.push(String(e)))
  page.on('console', (m) => {
    if (m.type() === 'error') page.errors.push(m.text())
  })
  await page.goto(url)
  await page.waitForFunction(() => (window as any).Sock?.SockClient)
  return page
}
