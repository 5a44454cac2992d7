import { randomBytes } from 'node:crypto'
import { sha, until } from './checks.js'
import { TransferProgress } from './progress.js'
import type { DrillReport } from './report.js'
import type { DrillWorld } from './sites.js'
import { MIRROR } from './storage-phases.js'

const VM = 'erp-app'
const DISK = 'erp-app-disk0'
const PLAN = 'erp'

/** What the VM's disk held at its replicated backup, to compare with the restored disk at west. */
export interface VmBackupState {
  readonly diskDigest: string
  readonly diskBytes: number
}

/**
 * A VM (a child process on hypervisor hv-east-1) with one disk, a DR plan placing it at west by free capacity,
 * an application-consistent backup (the guest quiesces) and its replication to west through a mirror.
 */
export async function vmBackupPhase(world: DrillWorld, report: DrillReport): Promise<VmBackupState> {
  const { dr } = world
  const east = dr.site('east')
  const diskBytes = 4 * 2 ** 20
  await east.storage.createVolume({ name: DISK, sizeBytes: diskBytes, blockSize: 4096 }, dr.token())
  const disk = randomBytes(diskBytes)
  await east.storage.write(DISK, 0, disk, dr.token())
  await east.host().registerVm(
    'hv-east-1',
    { id: VM, name: 'ERP application server', cpus: 4, memoryMb: 8192, disks: [{ volume: DISK, mountPath: '/data' }], networks: ['prod'], tags: ['erp'], config: { role: 'app' } },
    dr.token(),
  )
  await east.host().powerOn(VM, dr.token())

  const plan = await dr.vms.savePlan({
    id: PLAN,
    source: 'east',
    destination: 'west',
    protect: { tags: ['erp'] },
    backupEvery: '1h',
    replicateEvery: '1h',
    placement: { rule: 'capacity', hosts: ['hv-west-1', 'hv-west-2'] },
  })
  report.state('vm', `the DR plan places ${VM} on ${plan.placed[0]?.host ?? 'nothing'} before any disaster`, plan.placed.length === 1 && plan.unplaced.length === 0)
  const backup = await dr.vms.backupNow({ plan: PLAN, vm: VM })
  report.state('vm', `backup ${backup.backupId} is application-consistent (the guest quiesced)`, backup.consistency === 'application-consistent')
  await new TransferProgress(world, `${VM} backup → west`).around(async () => {
    const cuts = await dr.vms.replicateNow(PLAN)
    const mirror = (await dr.mirrors.list()).find((m) => m.id !== MIRROR)
    if (mirror === undefined) throw new Error('no mirror carries the VM backups')
    await until('the VM backup to reach west', async () => ((await dr.mirrors.status(mirror.id)).lastPlayedBack ?? 0) >= (cuts[VM] ?? Infinity))
  })
  report.state('vm', 'the backup and its metadata are at west', (await dr.vms.listBackups({ vm: VM, site: 'west' })).some((b) => b.metadata.backupId === backup.backupId))
  // Writes after the replicated backup: a disaster loses them, and the restore must not show them.
  await east.storage.write(DISK, 0, randomBytes(4096), dr.token())
  return { diskDigest: sha(disk), diskBytes }
}

/** East is lost: every protected VM is restored from its newest replicated backup on an alternate host at west. */
export async function vmFailoverPhase(world: DrillWorld, report: DrillReport, backup: VmBackupState): Promise<void> {
  const { dr } = world
  const result = await dr.vms.failover({ plan: PLAN })
  const restored = result.vms.find((vm) => vm.vmId === VM)
  report.state('failover', `${VM} was restored on ${restored?.host ?? 'no host'} at west`, result.outcome === 'succeeded' && restored?.outcome === 'restored')
  const info = await dr.site('west').host().getVm(VM)
  const metadata = (await dr.vms.listBackups({ vm: VM, site: 'west' })).map((b) => b.metadata.hostName)
  report.state(
    'failover',
    `${VM} is running at west on an alternate host; its backup metadata still names hv-east-1`,
    info?.power === 'running' && info.host !== 'hv-east-1' && metadata.length > 0 && metadata.every((host) => host === 'hv-east-1'),
  )
  const west = dr.site('west').storage
  const volume = info?.disks[0]?.volume ?? DISK
  const restoredDisk = await west.read(volume, 0, backup.diskBytes)
  report.bytes('failover', `the restored disk equals the replicated backup byte for byte`, sha(restoredDisk) === backup.diskDigest)
}
