/**
 * Non-disruptive restore: a volume is restored underneath an application that keeps reading and writing it. The
 * application reaches the volume through drkit volume handles; during a restore drkit holds its calls (instead of
 * failing them), journals the writes it had acknowledged, swaps or rolls back the volume, remounts it at the same
 * path with the same identity, replays the journal and releases the held calls. Two restores run while the
 * application loops: one from a standby volume (swapped in, no data copy at all) and one from a snapshot, which
 * also repairs damage done directly on the storage. The application checks every read against its own writes.
 *
 * Run: npx tsx examples/non-disruptive-restore.ts
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDrSystem, fileStateStore, localStorage, processHost } from '../src/index.js'

const BLOCK = 4096
const MOUNT = '/mnt/ledger'
const IDENTITY = 'ledger-fs-1'
const root = await mkdtemp(join(tmpdir(), 'drkit-freeze-'))
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function check(what: string, ok: boolean): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) throw new Error(`verification failed: ${what}`)
}

try {
  await using dr = await createDrSystem({
    state: fileStateStore({ dir: join(root, 'state') }),
    sites: { east: { storage: localStorage({ dir: join(root, 'east') }), host: processHost({ workDir: join(root, 'hosts'), hosts: [{ name: 'hv-1', cpus: 4, memoryMb: 4096 }] }) } },
  })
  const storage = dr.site('east').storage
  dr.events.on('freeze.thawed', (e) => console.log(`freeze.thawed  now on ${e.payload.activeVolume}, ${e.payload.replayedWrites} journaled writes replayed, froze I/O for ${e.payload.freezeWindowMs ?? 0} ms`))

  // The ledger volume, a standby kept identical to it, and a snapshot: the two sources a restore may use.
  const base = randomBytes(64 * BLOCK)
  for (const name of ['ledger', 'ledger-standby']) {
    await storage.createVolume({ name, sizeBytes: 8 * 2 ** 20, blockSize: BLOCK }, dr.token())
    await storage.write(name, 0, base, dr.token())
  }
  await dr.snapshots.create({ site: 'east', volume: 'ledger', name: 'base' })
  await dr.freeze.protect({
    site: 'east', volume: 'ledger', mountPath: MOUNT, identity: IDENTITY, freezeTimeoutMs: '30s',
    sources: [{ kind: 'standby', volume: 'ledger-standby' }, { kind: 'snapshot', snapshot: 'base' }],
  })

  // The application: write a record, read it straight back, remember what was acknowledged. Its write-back cache
  // keeps acknowledged writes until a restore journals them (or it closes the handle).
  const app = await dr.freeze.open({ site: 'east', mountPath: MOUNT, actor: 'ledger-app', cache: { flushEveryMs: null, maxDirtyBytes: '16MiB' } })
  const acknowledged = new Map<number, Buffer>()
  const errors: unknown[] = []
  let mismatches = 0
  let operations = 0
  let running = true
  const loop = (async () => {
    for (let n = 0; running; n++) {
      const offset = (100 + (n % 200)) * BLOCK
      const record = randomBytes(BLOCK)
      try {
        await app.write(offset, record)
        acknowledged.set(offset, record)
        if (!Buffer.from(await app.read(offset, BLOCK)).equals(record)) mismatches++
        operations += 2
      } catch (error) {
        errors.push(error)
      }
      await pause(1)
    }
  })()

  const restores: Array<{ source: string; windowMs: number | null; calls: number; mountPath: string | undefined; identity: string | undefined }> = []
  async function restoreFrom(source: { kind: 'standby'; volume: string } | { kind: 'snapshot'; snapshot: string }): Promise<void> {
    const thawed = new Promise<number | null>((resolve) => {
      const stop = dr.events.on('freeze.thawed', (e) => (stop(), resolve(e.payload.freezeWindowMs)))
    })
    const before = operations
    await dr.freeze.restore({ site: 'east', volume: 'ledger', source })
    const calls = operations - before
    const mount = await dr.site('east').host().getMount(MOUNT)
    restores.push({ source: source.kind, windowMs: await thawed, calls, mountPath: mount?.path, identity: mount?.identity })
  }

  await pause(300)
  await restoreFrom({ kind: 'standby', volume: 'ledger-standby' })
  await pause(300)
  // Take a checkpoint of the volume as it is now, then damage it behind the application's back.
  const active = (await dr.freeze.get({ site: 'east', volume: 'ledger' })).activeVolume
  await dr.snapshots.create({ site: 'east', volume: active, name: 'checkpoint' })
  await storage.write(active, 0, randomBytes(16 * BLOCK), dr.token())
  await restoreFrom({ kind: 'snapshot', snapshot: 'checkpoint' })
  await pause(300)
  running = false
  await loop
  await app.close()

  for (const r of restores) {
    check(`restore from the ${r.source} (${r.calls} application calls completed meanwhile): I/O held ${r.windowMs ?? 0} ms, mounted again at ${r.mountPath ?? 'nowhere'} as ${r.identity ?? 'nothing'}`, r.mountPath === MOUNT && r.identity === IDENTITY)
  }
  check(`the application made ${operations} calls and saw ${errors.length} errors`, operations > 0 && errors.length === 0)
  check(`every read returned what the application had just written (${mismatches} mismatches)`, mismatches === 0)
  const volume = (await dr.freeze.get({ site: 'east', volume: 'ledger' })).activeVolume
  let intact = 0
  for (const [offset, record] of acknowledged) if (Buffer.from(await storage.read(volume, offset, BLOCK)).equals(record)) intact++
  check(`all ${acknowledged.size} acknowledged records are on ${volume}, the volume now mounted at ${MOUNT}`, intact === acknowledged.size)
  check('the damaged blocks were repaired from the snapshot', Buffer.from(await storage.read(volume, 0, 16 * BLOCK)).equals(base.subarray(0, 16 * BLOCK)))
  console.log('non-disruptive restore: every verification passed')
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await rm(root, { recursive: true, force: true })
}
