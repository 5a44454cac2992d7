import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const drill = join(import.meta.dirname, '..', '..', 'examples', 'dr-drill.ts')

interface DrillJson {
  passed: boolean
  metrics: Record<string, number | null>
  measurement: Record<string, string>
  verifications: Array<{ phase: string; kind: 'bytes' | 'state'; what: string; ok: boolean }>
  phases: Array<{ name: string; ms: number }>
}

/** Runs the drill with `args` (and `env` added); resolves with its exit code and output, whatever the exit code. */
async function runDrill(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', drill, ...args], { timeout: 240_000, env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? -1, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
  )
}

describe('the DR drill (npm run demo)', () => {
  it('in --json mode reports every verification passed, data compared byte for byte in every phase that moves it, with the metrics measured', async () => {
    const { code, stdout, stderr } = await runDrill(['--json'])
    expect(stderr).not.toMatch(/\[.*\] \d+%/) // no progress bars in --json mode
    const report = JSON.parse(stdout) as DrillJson
    expect(report.verifications.filter((v) => !v.ok)).toEqual([])
    expect(report.passed).toBe(true)
    expect(code).toBe(0)
    expect(new Set(report.verifications.map((v) => v.phase))).toEqual(
      new Set(['consistency group', 'ev replication', 'replication', 'namespace', 'vm', 'failover', 'frozen restore', 'failback']),
    )
    expect(new Set(report.verifications.filter((v) => v.kind === 'bytes').map((v) => v.phase))).toEqual(
      new Set(['consistency group', 'ev replication', 'replication', 'failover', 'frozen restore', 'failback']),
    )
    const { rpoSeconds, rtoSeconds, detectionSeconds, bytesSent, fenceWindowMs, freezeWindowMs } = report.metrics
    expect(rpoSeconds).toBeGreaterThan(0)
    expect(detectionSeconds).toBeGreaterThan(0)
    expect(rtoSeconds).toBeGreaterThan(detectionSeconds ?? Infinity)
    expect(bytesSent).toBeGreaterThan(16 * 2 ** 20)
    expect(fenceWindowMs).not.toBeNull()
    expect(freezeWindowMs).not.toBeNull()
    expect(Object.keys(report.measurement).sort()).toEqual(['bytesSent', 'rpo', 'rto'])
  }, 300_000)

  it('reports passed: false and exits 1 when a check fails (east changed behind the mirror before the replication check)', async () => {
    const { code, stdout } = await runDrill(['--json'], { DRKIT_DRILL_TAMPER: 'replication' })
    const report = JSON.parse(stdout) as DrillJson
    expect(report.passed).toBe(false)
    expect(report.verifications.filter((v) => !v.ok).map((v) => [v.phase, v.kind])).toEqual([['replication', 'bytes']])
    expect(code).toBe(1)
  }, 300_000)

  it('refuses a --dir that is not empty, before touching it, and exits 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drkit-drill-dir-'))
    try {
      await writeFile(join(dir, 'precious.txt'), 'keep me')
      const { code, stdout, stderr } = await runDrill(['--dir', dir])
      expect(code).toBe(2)
      expect(stderr).toMatch(/--dir .* is not empty/)
      expect(stdout).toBe('')
      expect(await readdir(dir)).toEqual(['precious.txt'])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 120_000)
})
