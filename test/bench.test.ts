// The benchmark harness works end to end: its smallest scenario in quick mode, four clients, one repetition.
// Nothing here is timed or compared: the figures belong to `npm run bench`, never to a unit test.
import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'

describe('bench harness', () => {
  it('runs the throughput and unpaced scenarios in quick mode and loses nothing', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['bench/run.mjs', '--quick', '--reps', '1', '--only', 'throughput,unpaced', '--clients', 'ws,ws-event,sock-message,sock-event', '--no-write'],
        { timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      )
    })
    expect(code, stderr).toBe(0)
    for (const metric of ['| throughput 1→1', '| unpaced burst 1→1']) {
      const row = stdout.split('\n').find((l) => l.startsWith(metric))
      expect(row, metric).toBeDefined()
      expect(row).not.toMatch(/⚠|failed/)
      expect(row!.split('|').length).toBe(7) // metric, ws, ws by hand, sock-client message and event
      expect(row).toMatch(/× by hand/) // sock-client's events against the same envelopes on raw ws
    }
  }, 90_000)

  it('runs the request and stream rows (bench/replies.mjs) in quick mode: every gate holds', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['bench/replies.mjs', '--quick', '--reps', '1'], { timeout: 120_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      )
    })
    expect(code, stderr).toBe(0)
    for (const metric of [
      '| round trip p50',
      '| throughput, 256 in flight',
      '| CPU per request, server',
      '| 2 MiB writer → reader, 1 KiB-limit',
      '| 2 MiB writer → reader, 64 KiB-limit',
      '| peak retained heap + external above start, server',
    ]) {
      const row = stdout.split('\n').find((l) => l.startsWith(metric))
      expect(row, metric).toBeDefined()
      expect(row).not.toMatch(/⚠|failed|—/)
    }
  }, 150_000)
})
