// The demo server: the embedded Sock server, also serving the demo page (demo/public) and the UMD bundle.
import { copyFileSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createSockServer } from '../dist/server.js'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))

/** Starts the demo on `port` (0: any free one); resolves with the SockServer (`server.httpUrl` is the page). */
export async function startDemo({ port = 0, host = '127.0.0.1' } = {}) {
  // The page loads sock-client the way a plain website would: <script src="lib/sock-client.umd.min.js">.
  mkdirSync(here('./public/lib'), { recursive: true })
  for (const f of ['sock-client.umd.min.js', 'sock-client.umd.min.js.map']) copyFileSync(here(`../dist/${f}`), here(`./public/lib/${f}`))
  return createSockServer({ port, host, static: here('./public') })
}
