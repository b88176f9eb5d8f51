import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FrameTooLargeError, isValidationError, ProtocolError, ValidationError } from '../src'
import { channelUrl, control, decodeFrame, encodeFrame, parseControl, redact, TYPE_CONTROL, utf8Length } from '../src/protocol-entry'
import { decodeEnvelope, encodeEnvelope } from '../src/envelope'

describe('channelUrl', () => {
  it('builds the route with encoded parts, id and token only when set', () => {
    expect(channelUrl('ws://127.0.0.1:3000', 'chat')).toBe('ws://127.0.0.1:3000/channel/chat')
    expect(channelUrl('ws://h:1', 'chat', 'bob')).toBe('ws://h:1/channel/chat?id=bob')
    expect(channelUrl('wss://h:443/sock', 'room42', 'bob', 's3cr&t =x')).toBe('wss://h:443/sock/channel/room42?id=bob&token=s3cr%26t%20%3Dx')
    expect(channelUrl('ws://h:1', 'chat', undefined, 'tok')).toBe('ws://h:1/channel/chat?token=tok')
  })

  it.each([
    ['chat room', 'channel'],
    ['chat/../x', 'channel'],
    ['', 'channel'],
    ['café', 'channel'],
  ])('rejects channel %j with a typed error naming it', (ch, arg) => {
    let err: unknown
    try {
      channelUrl('ws://h:1', ch)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ValidationError)
    expect(isValidationError(err)).toBe(true)
    expect((err as ValidationError).argument).toBe(arg)
    expect((err as Error).message).toContain(JSON.stringify(ch))
    expect((err as Error).message).toContain('[A-Za-z0-9]+')
  })

  it('rejects bad ids and an empty token', () => {
    expect(() => channelUrl('ws://h:1', 'chat', 'a-b')).toThrow(/invalid id "a-b"/)
    expect(() => channelUrl('ws://h:1', 'chat', '')).toThrow(/invalid id ""/)
    expect(() => channelUrl('ws://h:1', 'chat', 'a', '')).toThrow(/non-empty string/)
  })

  it('redacts tokens', () => {
    expect(redact('ws://h:1/channel/c?id=a&token=secret')).toBe('ws://h:1/channel/c?id=a&token=***')
    expect(redact('ws://h:1/channel/c?token=secret&id=a')).toBe('ws://h:1/channel/c?token=***&id=a')
  })
})

describe('encodeFrame', () => {
  it('always writes type and data, never from', () => {
    expect(encodeFrame(1, 'hi')).toBe('{"type":1,"data":"hi"}')
    expect(encodeFrame(-1, '')).toBe('{"type":-1,"data":""}')
    expect(JSON.parse(encodeFrame(5, 'a"b\\c\n'))).toEqual({ type: 5, data: 'a"b\\c\n' })
  })

  it('rejects non-integer types and non-string data', () => {
    expect(() => encodeFrame(1.5, 'x')).toThrow(ValidationError)
    expect(() => encodeFrame(NaN, 'x')).toThrow(/integer/)
    expect(() => encodeFrame(1, null as unknown as string)).toThrow(/null/)
    expect(() => encodeFrame(1, { a: 1 } as unknown as string)).toThrow(/signal\(\)/)
  })

  it('measures the whole UTF-8 frame against maxFrameBytes', () => {
    const overhead = '{"type":1,"data":""}'.length // 20
    expect(encodeFrame(1, 'x'.repeat(1024 - overhead))).toHaveLength(1024)
    expect(() => encodeFrame(1, 'x'.repeat(1024 - overhead + 1))).toThrow(FrameTooLargeError)
    // 3-byte characters: 334 * 3 + 20 = 1022 fits, 335 * 3 + 20 = 1025 does not
    expect(() => encodeFrame(1, '€'.repeat(334))).not.toThrow()
    let err: FrameTooLargeError | undefined
    try {
      encodeFrame(1, '€'.repeat(335))
    } catch (e) {
      err = e as FrameTooLargeError
    }
    expect(err?.code).toBe('ERR_FRAME_TOO_LARGE')
    expect(err?.bytes).toBe(1025)
    expect(err?.limit).toBe(1024)
    expect(err?.message).toMatch(/1025 bytes exceeds maxFrameBytes \(1024\)/)
    // emoji (surrogate pairs, 4 bytes) and a custom limit
    expect(() => encodeFrame(1, '😀'.repeat(20), 100)).not.toThrow() // 20 * 4 + 20 = 100
    expect(() => encodeFrame(1, '😀'.repeat(21), 103)).toThrow(/104 bytes exceeds maxFrameBytes \(103\)/)
    expect(() => encodeFrame(1, '😀'.repeat(21), 104)).not.toThrow()
  })

  it('utf8Length agrees with Buffer.byteLength', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a😀b€c', '\ud800', 'x\udc00y', '\ud800\ud800']) {
      expect(utf8Length(s), JSON.stringify(s)).toBe(Buffer.byteLength(s, 'utf8'))
    }
  })
})

describe('type-9 control frames (sock-client/protocol)', () => {
  it('control() and parseControl() follow the grammar of docs/protocol-replies.md, and refuse what does not', () => {
    expect(TYPE_CONTROL).toBe(9)
    expect(control('a', 'Q1', 0, 'R1')).toBe('a:Q1:0:R1')
    expect(parseControl('x:S9:6:closed: by me')).toEqual({ op: 'x', id: 'S9', n: 6, rest: 'closed: by me' })
    expect(parseControl(control('c', 'abc', 2 ** 53 - 1, '12'))).toEqual({ op: 'c', id: 'abc', n: 2 ** 53 - 1, rest: '12' })
    for (const bad of ['a:Q:01:R', 'A:Q:0:', 'a::0:', 'a:Q-1:0:', 'a:Q:0', `a:${'q'.repeat(65)}:0:`, `b:S:${2 ** 53}:`, 'a:Q:-1:']) expect(parseControl(bad), bad).toBeUndefined()
  })
})

describe('decodeFrame', () => {
  it('decodes text and binary frames, defaulting missing fields', () => {
    expect(decodeFrame('{"type":1,"data":"hi","from":"a"}').frame).toEqual({ type: 1, data: 'hi', from: 'a' })
    expect(decodeFrame(Buffer.from('{"type":2,"data":"x"}')).frame).toEqual({ type: 2, data: 'x', from: '' })
    expect(decodeFrame(new TextEncoder().encode('{"data":"me"}').buffer).frame).toEqual({ type: 0, data: 'me', from: '' })
  })

  it('decodes Go-escaped HTML characters', () => {
    expect(decodeFrame('{"type":1,"data":"\\u003cb\\u003e \\u0026","from":"a"}').frame?.data).toBe('<b> &')
  })

  it('turns {"error"} into a server error and garbage into protocol errors, never throwing', () => {
    const e = decodeFrame('{"error":"Invalid json format"}').error
    expect(e).toBeInstanceOf(ProtocolError)
    expect(e?.code).toBe('ERR_SERVER')
    expect(e?.message).toContain('Invalid json format')
    for (const g of ['', 'null', '[]', '42', '"x"', '{', '{"type":"1"}', '{"type":1.5}', '{"data":5}', '{"from":[]}', new Uint8Array([0xff, 0xfe]), 42, null, undefined, {}]) {
      const d = decodeFrame(g)
      expect(d.frame, String(g)).toBeUndefined()
      expect(d.error?.code, String(g)).toBe('ERR_PROTOCOL')
    }
  })
})

describe('decodeEnvelope', () => {
  // The reference reading: the whole envelope through JSON.parse, as another implementation would read it.
  const reference = (text: string) => {
    let o: { i?: unknown; e?: unknown; c?: unknown; d?: unknown }
    try {
      o = JSON.parse(text)
    } catch {
      return 'malformed'
    }
    if (!o || typeof o !== 'object' || typeof o.i !== 'string' || typeof o.e !== 'string' || o.e === '') return 'malformed'
    if (o.c !== undefined && o.c !== 'json') return 'codec'
    return { id: o.i, event: o.e, data: o.d }
  }
  const read = (text: string) => {
    const r = decodeEnvelope(text)
    if (r instanceof ProtocolError) return /codec/.test(r.message) ? 'codec' : 'malformed'
    return r
  }

  it('reads what encodeEnvelope writes, including escapes, unicode and a missing payload', () => {
    for (const [id, event, data] of [
      ['a1', 'evt', { t: 'x' }],
      ['', 'e', [1, 'two', null]],
      ['id', 'quote " and \\ backslash', 'line\nbreak'],
      ['id', 'tab\tin name', { 'k"ey': '\u2028' }],
      ['id', 'ünïcødé 🎉', '🎉'],
      ['id', 'e', undefined],
    ] as const) {
      expect(decodeEnvelope(encodeEnvelope(id, event, data))).toEqual({ id, event, data })
    }
  })

  it('agrees with a plain JSON.parse reading on envelopes written by any hand (5,000 cases)', () => {
    // Pieces that stress the sliced fast path: other key orders, whitespace, duplicate keys, a codec, escapes,
    // raw control characters, a trailing key after the payload, truncation.
    const piece = fc.constantFrom(
      '{',
      '}',
      '"i":',
      '"e":',
      '"d":',
      '"c":',
      '"json"',
      '"msgpack"',
      ',',
      ' ',
      '"a"',
      '"ev"',
      '""',
      '"\\""',
      '"\\\\"',
      '"\n"',
      '"\u0001"',
      '1',
      '{"t":"x"}',
      '[1,2]',
      'null',
      '"d',
      ':',
    )
    const handWritten = fc.array(piece, { maxLength: 14 }).map((a) => a.join(''))
    const mutated = fc
      .tuple(fc.string({ maxLength: 6 }), fc.string({ minLength: 0, maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), fc.nat(40), fc.string({ maxLength: 4 }))
      .map(([id, event, data, cut, junk]) => {
        const text = encodeEnvelope(id, event, data)
        const how = cut % 4
        return how === 0 ? text : how === 1 ? text.slice(0, cut) + junk + text.slice(cut) : how === 2 ? text.slice(0, -1) + junk + '}' : text.slice(0, cut)
      })
    fc.assert(
      fc.property(fc.oneof(handWritten, mutated), (text) => {
        expect(read(text)).toEqual(reference(text))
      }),
      { numRuns: 5000 },
    )
  })
})
