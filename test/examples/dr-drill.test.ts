import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const drill = join(import.meta.dirname, '..', '..', 'examples', 'dr-drill.ts')

describe('the DR drill (npm run demo)', () => {
  it('in --json mode reports every verification passed, with RPO, RTO, bytes sent, fence and freeze windows measured', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', drill, '--json'], { timeout: 240_000 })
    const report = JSON.parse(stdout) as {
      passed: boolean
      metrics: Record<string, number | null>
      verifications: Array<{ phase: string; what: string; ok: boolean }>
      phases: Array<{ name: string; ms: number }>
    }
    expect(report.verifications.filter((v) => !v.ok)).toEqual([])
    expect(report.passed).toBe(true)
    expect(new Set(report.verifications.map((v) => v.phase))).toEqual(new Set(['consistency group', 'replication', 'namespace', 'vm', 'failover', 'frozen restore', 'failback']))
    expect(report.metrics['rpoSeconds']).toBeGreaterThan(0)
    expect(report.metrics['rtoSeconds']).toBeGreaterThan(0)
    expect(report.metrics['bytesSent']).toBeGreaterThan(16 * 2 ** 20)
    expect(report.metrics['fenceWindowMs']).not.toBeNull()
    expect(report.metrics['freezeWindowMs']).not.toBeNull()
  }, 300_000)
})
