import { describe, expect, it } from 'vitest'
import { AddressError, isAddressError, SockClient } from '../src'
import { AddressBook, flat, mix, parseAddress } from '../src/addresses'

describe('parseAddress and setup() forms', () => {
  it.each([
    ['127.0.0.1:8001', { ip: '127.0.0.1', port: 8001, url: 'ws://127.0.0.1:8001', httpUrl: 'http://127.0.0.1:8001', str: '127.0.0.1:8001' }],
    ['localhost:3000', { ip: 'localhost', port: 3000, url: 'ws://localhost:3000', str: 'localhost:3000' }],
    ['[::1]:3000', { ip: '::1', port: 3000, url: 'ws://[::1]:3000', str: '[::1]:3000' }],
    ['ws://example.com', { ip: 'example.com', port: 80, url: 'ws://example.com:80', str: 'example.com:80' }],
    ['wss://example.com', { ip: 'example.com', port: 443, url: 'wss://example.com:443', httpUrl: 'https://example.com:443', str: 'wss://example.com:443' }],
    ['wss://example.com:8443/sock/', { port: 8443, path: '/sock', url: 'wss://example.com:8443/sock', httpUrl: 'https://example.com:8443/sock' }],
    ['ws://[::1]:9000/a/b', { ip: '::1', port: 9000, path: '/a/b', url: 'ws://[::1]:9000/a/b' }],
    ['http://10.0.0.5:8009', { ip: '10.0.0.5', port: 8009, url: 'ws://10.0.0.5:8009', secure: false }],
    ['https://h.example', { port: 443, secure: true, url: 'wss://h.example:443' }],
  ])('parses %s', (input, want) => {
    const a = parseAddress(input)
    const { str, ...fields } = want as Record<string, unknown>
    expect(a).toMatchObject(fields)
    if (str) expect(String(a)).toBe(str)
  })

  it.each([
    ['localhost', /missing port in 'localhost'/],
    ['localhost:', /missing port/],
    [':3000', /missing host/],
    ['host:0', /invalid port "0"/],
    ['host:70000', /invalid port "70000"/],
    ['bad host:1', /invalid host "bad host"/],
    ['::1:3000', /brackets/],
    ['example.com/sock', /needs a scheme/],
    ['ftp://x:1', /unsupported scheme 'ftp:'/],
    ['ws://h:1/?token=x', /query/],
    ['ws://user:pw@h:1', /credentials/],
    ['', /invalid address/],
  ])('rejects %j with an AddressError naming it', (input, msg) => {
    let err: unknown
    try {
      parseAddress(input)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(AddressError)
    expect(isAddressError(err)).toBe(true)
    // A credential in the input (userinfo, query) is hidden in both the value and the message.
    expect((err as AddressError).value).toBe(input.replace('user:pw@', '***@').replace('?token=x', '?***'))
    expect((err as Error).message).not.toMatch(/pw@|token=x/)
    expect((err as Error).message).toMatch(msg)
  })

  const book = () => new AddressBook()
  it.each<[string, unknown[], string[], string]>([
    ['host:port', ['127.0.0.1:8001'], ['127.0.0.1:8001'], 'broadcast'],
    ['(host, port)', ['127.0.0.1', 8001], ['127.0.0.1:8001'], 'broadcast'],
    ['(host, "port")', ['127.0.0.1', '8001'], ['127.0.0.1:8001'], 'broadcast'],
    ['(host, port, mode)', ['127.0.0.1', 8001, 'failover'], ['127.0.0.1:8001'], 'failover'],
    ["pocketsocket's 'overflow' is failover", [['a:1', 'b:2'], 'overflow'], ['a:1', 'b:2'], 'failover'],
    ['arrays, mix', [['192.168.0.55', '127.0.0.1'], [8001, 8009], 'mix', 'broadcast'], ['192.168.0.55:8001', '192.168.0.55:8009', '127.0.0.1:8001', '127.0.0.1:8009'], 'broadcast'],
    ['arrays, flat', [['192.168.0.55', '127.0.0.1'], [8001, 8009], 'flat', 'failover'], ['192.168.0.55:8001', '127.0.0.1:8009'], 'failover'],
    ['arrays, default mix', [['a', 'b'], [1]], ['a:1', 'b:1'], 'broadcast'],
    [
      'object of named addresses',
      [{ local: ['127.0.0.1', 8001], dev: { ip: '10.0.0.5', port: 8009 }, edge: 'wss://edge.example/sock' }],
      ['127.0.0.1:8001', '10.0.0.5:8009', 'wss://edge.example:443/sock'],
      'broadcast',
    ],
    ['list of URLs', [['ws://a:1', 'wss://b/x', '[::1]:3'], 'failover'], ['a:1', 'wss://b:443/x', '[::1]:3'], 'failover'],
  ])('setup(%s)', (_name, args, want, mode) => {
    const b = book().set(...args)
    expect(b.list().toArray()).toEqual(want)
    expect(b.mode).toBe(mode)
    expect(b.isSetup()).toBe(true)
  })

  it('names the entries of an object form', () => {
    const b = book().set({ local: ['127.0.0.1', 8001], dev: { ip: '10.0.0.5', port: 8009 } })
    expect(b.list().map((a) => a.name)).toEqual(['local', 'dev'])
    expect(b.list().map((a) => [a.ip, a.port])).toEqual([
      ['127.0.0.1', 8001],
      ['10.0.0.5', 8009],
    ])
  })

  it.each<[string, unknown[], RegExp]>([
    ['nothing', [], /cannot use undefined/],
    ['a number', [42], /cannot use 42/],
    ['an empty list', [[]], /empty list/],
    ['an empty object', [{}], /empty object/],
    ['a bad list type', [['a'], [1], 'zip'], /'mix' or 'flat'/],
    ['a bad mode', ['a:1', 'roundrobin'], /'broadcast' or 'failover'/],
    ['a bad mode after (host, port)', ['a', 1, 'roundrobin'], /'broadcast' or 'failover'/],
    ['a bad named entry', [{ x: 5 }], /for 'x'/],
    ['a duplicate', [['a:1', 'a:1']], /listed twice/],
    ['a missing port in the object form', [{ x: ['h'] }], /invalid port/],
  ])('rejects %s with an AddressError', (_name, args, msg) => {
    expect(() => book().set(...args)).toThrow(AddressError)
    expect(() => book().set(...args)).toThrow(msg)
  })
})

describe('list(mix | flat)', () => {
  const hosts = ['a', 'b', 'c']
  const ports = [1, 2, 3, 4]

  it('mix is the address-major product: 3 addresses x 4 ports = 12 entries', () => {
    const l = mix(hosts, ports)
    expect(l).toHaveLength(12)
    expect(l.toArray()).toEqual(['a:1', 'a:2', 'a:3', 'a:4', 'b:1', 'b:2', 'b:3', 'b:4', 'c:1', 'c:2', 'c:3', 'c:4'])
    expect(String(l)).toBe(l.toArray().join(','))
    expect(l[5]).toMatchObject({ ip: 'b', port: 2, name: 'b:2' })
    expect(String(l[5])).toBe('b:2')
  })

  it('flat pairs by index', () => {
    expect(flat(hosts, [1, 2, 3]).toArray()).toEqual(['a:1', 'b:2', 'c:3'])
  })

  it('flat throws an AddressError carrying both arrays when lengths differ', () => {
    let err: AddressError | undefined
    try {
      flat(hosts, ports)
    } catch (e) {
      err = e as AddressError
    }
    expect(err).toBeInstanceOf(Error)
    expect(err).toBeInstanceOf(AddressError)
    expect(err?.ips).toEqual(hosts)
    expect(err?.ports).toEqual(ports)
    expect(err?.message).toMatch(/3 hosts and 4 ports/)
  })

  it('client.connection exposes list(), toArray(), String(), isSetup() and empty(); setup() chains', () => {
    const c = new SockClient()
    expect(c.connection.isSetup()).toBe(false)
    const conn = c.setup(hosts, [1, 2, 3], 'flat')
    expect(conn).toBe(c.connection)
    expect(conn.list().toArray()).toEqual(['a:1', 'b:2', 'c:3'])
    expect(conn.list('mix')).toHaveLength(9)
    expect(conn.list('flat').toArray()).toEqual(['a:1', 'b:2', 'c:3'])
    expect(String(conn)).toBe('a:1,b:2,c:3')
    expect(typeof conn.on('socket', () => {})).toBe('function')
    expect(() => c.setup(hosts, ports, 'flat')).toThrow(AddressError)
    expect(conn.list().toArray()).toEqual(['a:1', 'b:2', 'c:3']) // a failed setup() changes nothing
    conn.empty()
    expect(conn.isSetup()).toBe(false)
    expect(conn.list()).toHaveLength(0)
  })
})
