// Two msgpack clients in one page under a strict CSP exchange a payload JSON cannot carry; the outcome lands
// in window.result for the test to read.
;(async () => {
  const violations = []
  document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective}: ${e.blockedURI}`))
  let evalBlocked = false
  try {
    new Function('return 1')
  } catch {
    evalBlocked = true // the policy is really in force
  }
  const address = new URLSearchParams(location.search).get('sock')
  const opts = { codec: Sock.msgpack(), reconnect: { minDelay: 50, maxDelay: 300 } }
  const alice = new Sock.SockClient({ id: 'alice', ...opts })
  const bob = new Sock.SockClient({ id: 'bob', ...opts })
  alice.setup(address)
  bob.setup(address)
  try {
    const got = new Promise((resolve) => bob.on('data', 'sample', (d, m) => resolve({ d, from: m.from })))
    await Promise.all([alice.join('data'), bob.join('data')])
    await alice.signal('data', 'sample', { at: new Date(86400000), tags: new Set(['a', 'b']), big: 2n ** 70n, bytes: new Uint8Array([0, 1, 255]), map: new Map([[1, 'one']]) })
    const { d, from } = await got
    window.result = {
      evalBlocked,
      from,
      at: d.at instanceof Date ? d.at.toISOString() : null,
      tags: d.tags instanceof Set ? [...d.tags] : null,
      big: typeof d.big === 'bigint' ? d.big.toString() : null,
      bytes: d.bytes instanceof Uint8Array ? [...d.bytes] : null,
      map: d.map instanceof Map ? [...d.map] : null,
      violations,
    }
  } catch (e) {
    window.result = { error: String(e?.stack || e), violations }
  } finally {
    alice.close()
    bob.close()
  }
})()
