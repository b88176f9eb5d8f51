// The demo page (`npm start`) in real chromium: two users chat, see each other listed, send a file with progress;
// the screenshot goes to e2e/artifacts/demo.png on every run, and to docs/demo.png (shown in the README) when
// that file is missing or SCREENSHOT=update.
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
// @ts-expect-error: plain .mjs without types
import { startDemo } from '../demo/server.mjs'
import { SockClient } from '../src'
import type { SockServer } from '../src/server'
import { connectBrowser, root } from './helpers'

let browser: Browser
let context: BrowserContext
let server: SockServer

beforeAll(async () => {
  browser = await connectBrowser()
  context = await browser.newContext({ viewport: { width: 1200, height: 720 }, deviceScaleFactor: 1 })
  server = await startDemo({ port: 0 })
})
afterAll(async () => {
  await context?.close()
  await browser?.close()
  await server?.close({ abrupt: true })
})

async function open(name: string): Promise<Page> {
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(`${server.httpUrl}/?name=${name}`)
  await expect.poll(() => page.locator('#state').textContent()).toBe(`open · ${server.address}`)
  expect(errors).toEqual([])
  return page
}

async function send(page: Page, text: string) {
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
}

const bubbles = (page: Page) => page.locator('#messages .bubble').allTextContents()

it('lets two users chat, lists them, sends a file with progress, and is screenshotted', async () => {
  const alice = await open('alice')
  const bob = await open('bob')
  // each channel shows its state and address
  expect(await alice.locator('#channels li').allTextContents()).toEqual([`# generalopen · ${server.address}`, `# randomopen · ${server.address}`, `# devopen · ${server.address}`])

  await send(alice, 'Hi Bob! Sock is up, can you see me?')
  await expect.poll(() => bubbles(bob)).toEqual(['Hi Bob! Sock is up, can you see me?'])
  await send(bob, 'Loud and clear. Sending you the notes now.')
  await expect.poll(() => bubbles(alice)).toEqual(['Hi Bob! Sock is up, can you see me?', 'Loud and clear. Sending you the notes now.'])

  // a file big enough to be chunked (the server's frame limit is 1024 bytes): progress, then a download link
  const notes = Buffer.from('Sock demo notes\n'.repeat(400))
  // a progress bar shows up on the receiving side while the chunks arrive
  await alice.evaluate(() => {
    const w = window as any
    w.sawProgress = false
    new MutationObserver(() => (w.sawProgress ||= !!document.querySelector('#messages progress'))).observe(document.getElementById('messages')!, { childList: true, subtree: true })
  })
  await bob.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: notes })
  const link = alice.locator('#messages a[download="notes.txt"]')
  await expect.poll(() => link.count(), { timeout: 10_000 }).toBe(1)
  const got = await link.evaluate(async (a: HTMLAnchorElement) => (await fetch(a.href).then((r) => r.text())).length)
  expect(got).toBe(notes.length)
  expect(await alice.evaluate(() => (window as any).sawProgress)).toBe(true)
  await expect.poll(() => bob.locator('#messages a[download="notes.txt"]').count()).toBe(1)
  await send(alice, 'Got notes.txt, thanks!')
  await expect.poll(async () => (await bubbles(bob)).at(-1)).toBe('Got notes.txt, thanks!')

  // the live instance list (REST) shows both users
  await expect.poll(() => alice.locator('#people li').allTextContents(), { timeout: 5000 }).toEqual([expect.stringMatching(/^ALalice\(you\)since /), expect.stringMatching(/^BObobsince /)])

  // a request: alice pings bob (addressed), bob's page answers with its name
  await alice.click('#people li:nth-child(2) button.ping')
  await expect.poll(async () => (await alice.locator('#messages .system').allTextContents()).at(-1), { timeout: 5000 }).toMatch(/^bob answered a ping in \d+ ms/)

  // a second channel: the unread badge
  await bob.click('#channels li[data-channel="random"]')
  await send(bob, 'psst, over here')
  await expect.poll(() => alice.locator('#channels li[data-channel="random"] .unread').textContent()).toBe('1')

  await alice.bringToFront()
  mkdirSync(join(root, 'e2e/artifacts'), { recursive: true })
  const shot = join(root, 'e2e/artifacts/demo.png')
  await alice.screenshot({ path: shot })
  const docs = join(root, 'docs/demo.png')
  if (!existsSync(docs) || process.env.SCREENSHOT === 'update') {
    mkdirSync(join(root, 'docs'), { recursive: true })
    copyFileSync(shot, docs)
  }

  // the list is presence: a sock-client peer shows up and goes at once, well inside the 5 s between REST polls
  const carol = new SockClient({ id: 'carol' })
  carol.setup(server.address)
  try {
    await carol.join('general')
    const people = () => alice.locator('#people li').allTextContents()
    await expect.poll(people, { timeout: 2000 }).toEqual([expect.stringMatching(/^ALalice\(you\)since /), expect.stringMatching(/^BObobsince /), expect.stringMatching(/^CAcarolsince /)])
    carol.leave('general')
    await expect.poll(people, { timeout: 2000 }).toHaveLength(2)
  } finally {
    carol.close()
  }
})
