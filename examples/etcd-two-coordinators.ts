/**
 * Two coordinators on etcd: a leader runs a durable workflow and is killed (SIGKILL) in the middle of it; a
 * standby that was waiting for the lease takes over with a higher fence token, resumes the workflow from the
 * shared journal and finishes it — every step's side effect happens exactly once.
 *
 * Needs an etcd: DRKIT_ETCD_ENDPOINTS (comma-separated URLs; default http://127.0.0.1:2379). Start one with
 * `etcd --data-dir /tmp/etcd-demo` (Debian: apt-get install etcd-server).
 *
 * Run: npx tsx examples/etcd-two-coordinators.ts
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import * as t from 'io-ts'
import { createDrSystem, memoryStorage, type DrSystem, type LeaseManager } from '../src/index.js'
import { etcdCoordination } from '../src/adapters/etcd/index.js'

const hosts = (process.env['DRKIT_ETCD_ENDPOINTS'] ?? 'http://127.0.0.1:2379').split(',')
const WORKFLOW = 'example.rollout'
const STEPS = 6
const [, , role = 'main', prefix = `drkit-example-${randomUUID()}`, leaderEffects = ''] = process.argv

/** Opens a coordinator; a standby waits for the system lease instead of failing while the leader holds it. */
async function coordinator(name: string, wait: boolean, effectsFile: string): Promise<DrSystem> {
  const { state, leases } = etcdCoordination({ hosts, prefix, ttlMs: 2_000 })
  const waiting: LeaseManager = { acquire: (scope, holder, options) => leases.acquire(scope, holder, { ...options, waitMs: 60_000 }) }
  const dr = await createDrSystem({ state, leases: wait ? waiting : leases, coordinator: name, leaseTtlMs: 2_000, sites: { east: { storage: memoryStorage() } } })
  // The side effect of each step: one line in a file, keyed by the step's idempotency key, so a repeat is harmless.
  dr.workflows.register(WORKFLOW, {
    input: t.type({ steps: t.number }),
    run: async (context, input) => {
      for (let index = 0; index < input.steps; index++) {
        await context.step(`step-${index}`, async (step) => {
          const token = dr.token() // E_FENCED once this coordinator lost the lease: a deposed leader stops here
          const done = await readFile(effectsFile, 'utf8').catch(() => '')
          if (!done.split('\n').some((line) => line.startsWith(`${step.idempotencyKey} `))) {
            await appendFile(effectsFile, `${step.idempotencyKey} ${name} token=${token.value}\n`)
          }
          if (name === 'leader' && index === 3) {
            console.log('IN-STEP-3') // the parent kills us here: effect done, step not journaled yet
            await new Promise(() => undefined)
          }
          return index
        })
      }
      return input.steps
    },
  })
  return dr
}

if (role === 'leader') {
  const dr = await coordinator('leader', false, leaderEffects)
  console.log(`TOKEN ${dr.token().value}`)
  await dr.workflows.run(WORKFLOW, 'rollout-1', { steps: STEPS })
} else {
  const dir = await mkdtemp(join(tmpdir(), 'drkit-etcd-example-'))
  const effects = join(dir, 'effects.log')
  try {
    const leader = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'leader', prefix, effects], { stdio: ['ignore', 'pipe', 'inherit'] })
    let leaderToken = 0
    const lines = createInterface({ input: leader.stdout })
    await new Promise<void>((resolve, reject) => {
      leader.once('exit', (code) => reject(new Error(`the leader exited early (${code}); is etcd running at ${hosts.join(',')}?`)))
      lines.on('line', (line) => {
        if (line.startsWith('TOKEN ')) leaderToken = Number(line.slice(6))
        if (line === 'IN-STEP-3') resolve()
      })
    })
    console.log(`leader (token ${leaderToken}) is inside step 3; starting the standby and killing the leader`)
    const standbyOpening = coordinator('standby', true, effects)
    leader.kill('SIGKILL')
    const standby = await standbyOpening
    const standbyToken = standby.token().value
    console.log(`standby took the lease with token ${standbyToken}`)
    const { resumed } = await standby.recover() // resumes the workflow now that its type is registered
    const history = await standby.workflows.history('rollout-1')
    await standby.close()

    const log = (await readFile(effects, 'utf8')).trim().split('\n')
    for (const line of log) console.log(`  effect: ${line}`)
    const keys = log.map((line) => line.split(' ')[0])
    const once = keys.length === STEPS && new Set(keys).size === STEPS
    const ok = resumed === 1 && history?.status === 'completed' && once && standbyToken > leaderToken
    console.log(`workflow ${history?.status}; ${keys.length} effects for ${STEPS} steps`)
    if (!ok) throw new Error('verification failed: the takeover did not complete every step exactly once')
    console.log('two coordinators on etcd: every verification passed')
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
