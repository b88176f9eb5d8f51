// Addresses as JSON: every setup() form's list serializes as the strings String() gives (issue 16: it threw, since an
// address refers to itself through the one-address list it shares).
import { describe, expect, it } from 'vitest'
import { SockClient } from '../src'
import { parseAddress } from '../src/addresses'

describe('JSON.stringify of addresses', () => {
  it.each([
    [['127.0.0.1:3000'], ['127.0.0.1:3000']],
    [['127.0.0.1', 3000], ['127.0.0.1:3000']],
    [['[::1]:3000'], ['[::1]:3000']],
    [['wss://example.com/sock'], ['wss://example.com:443/sock']],
    [
      [['a.example', 'b.example'], [1, 2], 'mix'],
      ['a.example:1', 'a.example:2', 'b.example:1', 'b.example:2'],
    ],
    [
      [['a.example:1', 'ws://b.example:2/base'], 'failover'],
      ['a.example:1', 'ws://b.example:2/base'],
    ],
    [[{ one: ['127.0.0.1', 3001], two: { ip: '127.0.0.1', port: 3002 }, three: 'ws://127.0.0.1:3003' }], ['127.0.0.1:3001', '127.0.0.1:3002', '127.0.0.1:3003']],
  ])('setup(%j): connection.list() serializes as its ip:port strings', (args, want) => {
    const client = new SockClient()
    const list = client.setup(...(args as Parameters<SockClient['setup']>)).list()
    expect(JSON.parse(JSON.stringify(list))).toEqual(want)
    expect(JSON.stringify(client.connection.list())).toBe(JSON.stringify(list.toArray()))
    client.close()
  })

  it('serializes an address on its own, in an object and in the flat enumeration', () => {
    const a = parseAddress('127.0.0.1:3000', 'home')
    expect(JSON.stringify(a)).toBe('"127.0.0.1:3000"')
    expect(JSON.stringify({ a })).toBe('{"a":"127.0.0.1:3000"}')
    const client = new SockClient()
    client.setup(['h1', 'h2'], [1, 2], 'flat')
    expect(JSON.parse(JSON.stringify(client.connection.list('flat')))).toEqual(['h1:1', 'h2:2'])
    expect(JSON.parse(JSON.stringify(client.connection.list('mix')))).toEqual(['h1:1', 'h1:2', 'h2:1', 'h2:2'])
    client.close()
  })
})
