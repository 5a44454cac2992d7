/**
 * Restoring one VM at the DR site on a host of your choice. A VM (a child process, whose built-in guest answers
 * quiesce requests) runs on hypervisor hv-east-1 with one disk volume. A DR plan protects it and places it at west
 * by free capacity; a second plan shows a VM no west host can take — reported before any disaster. An
 * application-consistent backup is replicated to west, and then only that VM — no site failover — is restored
 * from the replicated backup on hv-west-1. It runs there, its disk equals the backup byte for byte, and the
 * backup metadata still names the host it was taken on.
 *
 * Run: npx tsx examples/vm-restore-alternate-host.ts
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDrSystem, fileStateStore, localStorage, processHost, tcpNetwork } from '../src/index.js'

const VM = 'erp-app'
const DISK = 'erp-app-disk0'
const DISK_BYTES = 4 * 2 ** 20
const root = await mkdtemp(join(tmpdir(), 'drkit-vm-'))
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16)

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; waited < 60_000; waited += 25) {
    if (await check()) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function check(what: string, ok: boolean): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) throw new Error(`verification failed: ${what}`)
}

try {
  const eastNet = tcpNetwork({ site: 'east', listen: { port: 0 }, peers: {}, plaintext: true })
  const westNet = tcpNetwork({ site: 'west', listen: { port: 0 }, peers: {}, plaintext: true })
  eastNet.setPeer('west', await westNet.address())
  westNet.setPeer('east', await eastNet.address())
  // Each site's hypervisors; a VM is a child process running drkit's built-in guest.
  const eastHosts = processHost({ workDir: join(root, 'east-hosts'), hosts: [{ name: 'hv-east-1', cpus: 32, memoryMb: 131072 }] })
  const westHosts = processHost({
    workDir: join(root, 'west-hosts'),
    hosts: [
      { name: 'hv-west-1', cpus: 8, memoryMb: 16384 },
      { name: 'hv-west-2', cpus: 16, memoryMb: 32768 },
    ],
  })
  await using dr = await createDrSystem({
    state: fileStateStore({ dir: join(root, 'state') }),
    sites: {
      east: { storage: localStorage({ dir: join(root, 'east') }), network: eastNet, host: eastHosts },
      west: { storage: localStorage({ dir: join(root, 'west') }), network: westNet, host: westHosts },
    },
  })
  const east = dr.site('east')
  dr.events.on('vm.planUnplaceable', (e) => console.log(`vm.planUnplaceable  plan ${e.payload.planId}: ${e.payload.vms.map((vm) => `${vm.vmId} (${vm.reason})`).join(', ')}`))

  // The VM and its disk at east.
  await east.storage.createVolume({ name: DISK, sizeBytes: DISK_BYTES, blockSize: 4096 }, dr.token())
  const disk = randomBytes(DISK_BYTES)
  await east.storage.write(DISK, 0, disk, dr.token())
  const vm = { name: 'ERP application server', cpus: 4, memoryMb: 8192, networks: ['prod'], config: { role: 'app' } }
  await east.host().registerVm('hv-east-1', { ...vm, id: VM, disks: [{ volume: DISK, mountPath: '/data' }], tags: ['erp'] }, dr.token())
  await east.host().powerOn(VM, dr.token())

  // Plans are checked when saved, and again whenever you ask: an unplaceable VM is known before any disaster.
  await east.host().registerVm('hv-east-1', { ...vm, id: 'warehouse', memoryMb: 65536, disks: [], tags: ['analytics'] }, dr.token())
  const analytics = { id: 'analytics', source: 'east', destination: 'west', protect: { tags: ['analytics'] }, backupEvery: '1h', replicateEvery: '1h' }
  const saved = await dr.vms.savePlan({ ...analytics, placement: { rule: 'capacity', hosts: ['hv-west-1', 'hv-west-2'] } })
  check(`savePlan reports warehouse (64 GiB) as unplaceable at west: ${saved.unplaced[0]?.reason ?? 'no reason'}`, saved.unplaced.some((u) => u.vmId === 'warehouse'))
  const validated = await dr.vms.validatePlan('analytics')
  check('validatePlan says the same, without any failover', validated.unplaced.length === 1 && validated.placed.length === 0)

  const plan = await dr.vms.savePlan({ id: 'erp', source: 'east', destination: 'west', protect: { tags: ['erp'] }, backupEvery: '1h', replicateEvery: '1h', placement: { rule: 'capacity', hosts: ['hv-west-1', 'hv-west-2'] } })
  check(`the erp plan places ${VM} on ${plan.placed[0]?.host ?? 'nothing'} (most free capacity)`, plan.placed.length === 1 && plan.unplaced.length === 0)

  // An application-consistent backup, replicated to west.
  const backup = await dr.vms.backupNow({ plan: 'erp', vm: VM })
  check(`backup ${backup.backupId} is ${backup.consistency}`, backup.consistency === 'application-consistent')
  const cuts = await dr.vms.replicateNow('erp')
  const [mirror] = await dr.mirrors.list()
  if (mirror === undefined) throw new Error('no mirror carries the VM backups')
  await until('the backup to reach west', async () => ((await dr.mirrors.status(mirror.id)).lastPlayedBack ?? 0) >= (cuts[VM] ?? Infinity))
  // A write after the backup: the restore must not show it.
  await east.storage.write(DISK, 0, randomBytes(4096), dr.token())

  // Restore just this VM from the backup west holds, on a host we choose (not the plan's choice).
  const restored = await dr.vms.restore({ vm: VM, site: 'west', mode: 'alternate-host', host: 'hv-west-1', backup: backup.backupId })
  check(`${VM} was restored from ${restored.backupId ?? 'nothing'} on ${restored.host ?? 'no host'}`, restored.outcome === 'restored' && restored.host === 'hv-west-1')
  const info = await dr.site('west').host().getVm(VM)
  check(`${VM} is ${info?.power ?? 'missing'} on ${info?.host ?? 'no host'} at west`, info?.power === 'running' && info.host === 'hv-west-1')
  const restoredDisk = await dr.site('west').storage.read(info?.disks[0]?.volume ?? DISK, 0, DISK_BYTES)
  check(`its disk equals the backup byte for byte (sha ${sha(restoredDisk)} = ${sha(disk)})`, sha(restoredDisk) === sha(disk))
  const metadata = (await dr.vms.listBackups({ vm: VM, site: 'west' })).find((b) => b.metadata.backupId === backup.backupId)?.metadata
  check(`the backup metadata still names the original host (${metadata?.hostName ?? 'none'})`, metadata?.hostName === 'hv-east-1')
  const original = await east.host().getVm(VM)
  check(`the original VM still runs on hv-east-1 (this was a restore, not a failover)`, original?.power === 'running')
  console.log('VM restore on an alternate host: every verification passed')
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await rm(root, { recursive: true, force: true })
}
