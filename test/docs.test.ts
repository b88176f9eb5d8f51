// The documents say what the code does: the API reference covers every public entry, docs/errors.md every error
// code, class and guard, docs/protocol.md the frames and bounds as the encoders and decoders have them (and links the
// documents of the frames it does not describe), docs/design.md every source file, feature and hook, and the README
// keeps the two commands that CI and the project rules read.
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPLY, TYPE_CONTROL } from '../src/envelope'
import * as errors from '../src/errors'
import { ALL_FEATURES } from '../src/full'
import { PRESENCE_EVENT } from '../src/presence'
import * as replies from '../src/replies'
import * as streams from '../src/streams'
import { chunkData, encodeEnvelope, encodeFrame, MAX_EVENT, MAX_ID, splitChunks, TYPE_CHUNK, TYPE_EVENT, utf8Length } from '../src/protocol-entry'

const root = resolve(__dirname, '..')
const read = (f: string) => readFileSync(join(root, f), 'utf8')
const pkg = JSON.parse(read('package.json'))

describe('the API reference (typedoc)', () => {
  it('has one entry per package.json export, named as users import it', () => {
    const config = JSON.parse(read('typedoc.json')) as { entryPoints: string[] }
    const modules = config.entryPoints.map((f) => /@module (\S+)/.exec(read(f))?.[1])
    const subpaths = Object.keys(pkg.exports)
      .filter((k) => k !== './package.json')
      .map((k) => (k === '.' ? pkg.name : `${pkg.name}/${k.slice(2)}`))
    expect([...modules].sort()).toEqual([...subpaths].sort())
    // and no entry file that typedoc.json leaves out
    expect(
      readdirSync(join(root, 'typedoc'))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => `typedoc/${f}`)
        .sort(),
    ).toEqual([...config.entryPoints].sort())
  })
})

describe('docs/errors.md', () => {
  const doc = read('docs/errors.md')
  it('names every SockErrorCode', () => {
    const codes = [...read('src/errors.ts').matchAll(/\| '(ERR_[A-Z_]+)'/g)].map((m) => m[1]!)
    expect(codes.length).toBeGreaterThan(10)
    expect(codes.filter((c) => !doc.includes(`\`${c}\``))).toEqual([])
  })

  it('names every error class and guard, each with its literal name', () => {
    const exported = Object.keys(errors)
    const classes = exported.filter((k) => /^[A-Z]\w*Error$/.test(k))
    const guards = exported.filter((k) => /^is[A-Z]/.test(k))
    expect(classes.length).toBe(guards.length)
    for (const c of classes) expect(doc, c).toMatch(new RegExp(`\\| \`${c}\` \\| \`'${c}'\``))
    for (const g of guards) expect(doc, g).toContain(`\`${g}(e)\``)
  })

  it('names the error classes of the replies and streams features, and their guards', () => {
    for (const [c, g] of [
      ['RequestError', 'isRequestError'],
      ['ReplyError', 'isReplyError'],
      ['StreamError', 'isStreamError'],
    ] as const) {
      expect(c in replies || c in streams, c).toBe(true)
      expect(g in replies || g in streams, g).toBe(true)
      expect(doc, c).toMatch(new RegExp(`\\| \`${c}\` \\| \`'${c}'\``))
      expect(doc, g).toContain(`\`${g}(e)\``)
    }
  })
})

describe('docs/design.md', () => {
  const doc = read('docs/design.md')

  it('names every source file, so that a reader finds what each owns', () => {
    const files = [...readdirSync(join(root, 'src')).filter((f) => f.endsWith('.ts')), ...['server', 'cli', 'entries'].flatMap((d) => readdirSync(join(root, 'src', d)).map((f) => `${d}/${f}`))]
    expect(files.length).toBeGreaterThan(40)
    expect(files.filter((f) => !doc.includes(f))).toEqual([])
  })

  it('lists every feature of the full client, in the order their hooks merge', () => {
    const names = ALL_FEATURES.map((f) => f.name)
    for (const n of names) expect(doc, n).toContain(`| \`${n}\` | \`sock-client/${n}\` |`)
    expect(doc).toContain(names.map((n) => `\`${n}\``).join(', '))
  })

  it('has a row for every hook a Feature has', () => {
    const feature = /export interface Feature \{\n([\s\S]*?)\n\}/.exec(read('src/feature.ts'))![1]!
    const hooks = [...feature.matchAll(/^ {2}readonly (\w+)\??:/gm)].map((m) => m[1]!)
    expect(hooks.length).toBeGreaterThan(10)
    expect(hooks.filter((h) => !doc.includes(`| \`${h}\` |`))).toEqual([])
  })
})

describe('docs/protocol.md', () => {
  const doc = read('docs/protocol.md')

  it("states the connection's own frames byte for byte", () => {
    expect(doc).toContain(`\`${encodeFrame(-1, '')}\` (${utf8Length(encodeFrame(-1, ''))} bytes)`)
    expect(doc).toContain(`\`${encodeFrame(0, '')}\` (${utf8Length(encodeFrame(0, ''))} bytes)`)
  })

  it('states the envelope layout the encoder writes, and the bounds the decoder keeps', () => {
    expect(encodeEnvelope('abc1', 'move', { x: 1 })).toBe('{"i":"abc1","e":"move","d":{"x":1}}')
    expect(doc).toContain('{"i":"<id>","e":<event>,"d":<payload>}')
    expect(encodeEnvelope('abc1', 'move', 1, { name: 'x', encode: () => 'AQ==', decode: () => 1 })).toBe('{"i":"abc1","e":"move","c":"x","d":"AQ=="}')
    expect(doc).toContain('{"i":"<id>","e":<event>,"c":<codec name>,"d":<codec output>}')
    expect(doc).toContain(`reserves \`${TYPE_EVENT}\` (event envelope, section 8) and \`${TYPE_CHUNK}\` (chunk, section 9)`)
    expect(doc).toContain(`| envelope id \`i\` | ${MAX_ID} units |`)
    expect(doc).toContain(`| event name \`e\` | 1 to ${MAX_EVENT} units |`)
  })

  it('names the types, events and keys it leaves to the other documents, with a link to each', () => {
    expect(doc).toContain(`\`${TYPE_CONTROL}\` (control frames`)
    expect(doc).toContain('(protocol-replies.md')
    expect(doc).toContain('(protocol-presence.md')
    for (const name of [REPLY, PRESENCE_EVENT]) expect(doc, name).toContain(`\`${name}\``)
    for (const key of ['t', 'q', 'r', 'k', 'm', 's']) expect(doc, key).toContain(`\`${key}\``)
  })

  it("gives the chunk header's pattern as the receiver has it", () => {
    const source = /const CHUNK_RE = \/(.+)\/\n/.exec(read('src/chunks.ts'))![1]!
    expect(doc).toContain(`\`${source}\``)
  })

  it('gives the splitting budget the sender uses: maxFrameBytes - 20 - 31 - length(id)', () => {
    for (const [max, id] of [
      [1024, 'k2j4h5g6a'],
      [200, 'x'],
      [5000, 'a'.repeat(64)],
    ] as const) {
      const pieces = splitChunks(id, 'z'.repeat(20_000), max)
      expect(pieces[0]!.length, `${max} ${id}`).toBe(max - 20 - 31 - id.length)
      for (const [i, p] of pieces.entries()) expect(utf8Length(encodeFrame(8, chunkData(id, i, pieces.length, 20_000, p), max))).toBeLessThanOrEqual(max)
    }
  })
})

describe('README.md', () => {
  const readme = read('README.md')
  it('keeps the two commands, exactly', () => {
    expect(readme).toContain('npm install && npm start   # an embedded Sock server, two clients talking in the terminal, then the demo page\n')
    expect(readme).toContain('npm test                   # every test (typecheck, build, unit, integration, size, package lint, e2e in chromium)\n')
  })

  it('names no path outside the repository', () => {
    expect(readme).not.toMatch(/\.\.\/shared|\]\(\.\.\//)
  })
})
