/**
 * drkit: an embeddable disaster-recovery SDK. Everything a user imports comes from here; conformance suites and
 * fault injection for adapter authors come from `drkit/testkit`.
 *
 * @packageDocumentation
 */

export * from './kernel/index.js'
export { memoryStateStore, MemoryStateStore } from './kernel/memory-state-store.js'
export type * from './ports/index.js'
export * from './ports/host-codecs.js'
export { ByteRangesCodec, RangeChangesCodec, ReadRangesOptionsCodec, WriteRangesOptionsCodec, checkReadTargets } from './ports/storage.js'

export { createDrSystem } from './system.js'
export type { DrSystem, DrEvents, Site } from './system.js'
export type { TakeoverReport, TokenPresentation } from './system-takeover.js'
export { DrSystemConfigCodec, SiteConfigCodec } from './system-config.js'
export type { DrSystemConfig, SiteConfig } from './system-config.js'

export { memoryStorage, MemoryStorage } from './adapters/memory/storage.js'
export type { MemoryStorageOptions } from './adapters/memory/storage.js'
export { MemoryNetworkFabric, MemoryNamespaceServer, MemoryIdentityRegistry } from './adapters/memory/network.js'
export type { MemoryNetworkFabricOptions } from './adapters/memory/network.js'
export type { FrameWindow } from './adapters/memory/network-pipe.js'
export { memoryHost, MemoryHost } from './adapters/memory/host.js'
export type { ActorDefinition, HookHandler, MemoryHostOptions, QuiesceBehaviour } from './adapters/memory/host.js'
export { processHost, ProcessHost } from './adapters/process/process-host.js'
export type { ProcessHostOptions, GuestCommand, ProcessActorOptions, ProcessExit, GuestRequest, GuestReply, FreezeMechanism } from './adapters/process/process-host.js'
export { tcpNetwork, TcpNetworkOptionsCodec } from './adapters/tcp/index.js'
export type { TcpNetwork, TcpNetworkOptions, TcpAddress, TcpTlsMaterial, TcpWindow } from './adapters/tcp/index.js'
export { ResumableSender, ResumableReceiver, sendResumable, isLoopbackHost } from './adapters/tcp/index.js'
export type {
  ResumableSenderOptions,
  SendAttempt,
  SendOutcome,
  SendResumableOptions,
  ResumableReceiverOptions,
  ReceivedChunk,
  ReceiveOutcome,
  ResumeStore,
} from './adapters/tcp/index.js'
export { fileStateStore, openFileStateStore, FileStateStore } from './adapters/file/file-state-store.js'
export type { FileStateStoreOptions, FileStateStoreStats } from './adapters/file/file-state-store.js'
export type { FsyncMode } from './adapters/file/group-commit.js'
export { localStorage, openLocalStorage, LocalStorage } from './adapters/local/local-storage.js'
export type { LocalStorageOptions, LocalStorageStats } from './adapters/local/local-storage.js'
export type { BlockFileUsage } from './adapters/local/block-store.js'
export type { PoolCheck } from './adapters/local/pool-verify.js'

export * from './modules/snapshot/index.js'
export * from './modules/volume/index.js'
export * from './modules/mirror/index.js'
export { openNamespaceModule, NamespaceFacade, mirrorControlFrom, NAMESPACE_EVENTS_STREAM } from './modules/namespace/index.js'
export {
  AddThresholdInput,
  CreateLinkInput,
  CreatePolicyInput,
  DpStateCodec,
  HistoryInput,
  HookRecordCodec,
  NodeCodec,
  PolicyRecordCodec,
  ProtectInput,
  ProtectionCodec,
  SwitchInput,
  TargetCodec,
  ThresholdRecordCodec,
  UpdatePolicyInput,
  PolicySettingsInput,
  ResolveInput,
} from './modules/namespace/index.js'
export type {
  NamespaceModule,
  NamespaceModuleDeps,
  NamespaceEvent,
  NamespaceNotifier,
  HistoryFilter,
  MirrorControl,
  MirrorDescription,
  MirrorSide,
  MirrorFacadeLike,
  MonitorPass,
  CreateLinkOptions,
  ProtectOptions,
  SwitchOptions,
  HistoryOptions,
  CreatePolicyOptions,
  UpdatePolicyOptions,
  PolicyRecord,
  HookRecord,
  AddThresholdOptions,
  ThresholdRecord,
  NamespaceNode,
  Target,
  Protection,
  DpState,
  ResolveOptions,
} from './modules/namespace/index.js'
export type * from './modules/namespace/events.js'
export { openEvMirrorModule, EvMirrorFacade } from './modules/ev-mirror/index.js'
export type { EvMirrorModule, EvMirrorModuleDeps, EvMirrorSite, EvMirrorView, EvTransferResult, EvFailoverResult, EvRelationship, EvSide, MemberRelationship } from './modules/ev-mirror/index.js'
export { EvRelationshipCodec, EvSideCodec, MemberRelationshipCodec } from './modules/ev-mirror/index.js'
export type * from './modules/ev-mirror/events.js'
export * from './modules/ev-mirror/inputs.js'
export { openServerGroupsModule, ServerGroupFacade, prevalidate } from './modules/server-groups/index.js'
export type {
  ServerGroupsModule,
  ServerGroupsModuleDeps,
  ServerGroupSite,
  GroupFailoverResult,
  GroupMemberInfo,
  Discrepancy,
  DiscrepancyKind,
  Prevalidation,
  SiteFacts,
  SeriesSnapshot,
  ServerGroup,
  ServerGroupsState,
  GroupOperation,
  GroupMount,
  PartialFailover,
} from './modules/server-groups/index.js'
export { SeriesSnapshotCodec, ServerGroupCodec, ServerGroupsStateCodec, GroupOperationCodec, GroupMountCodec, PartialFailoverCodec } from './modules/server-groups/index.js'
export type * from './modules/server-groups/events.js'
export * from './modules/server-groups/inputs.js'
export {
  openVmModule,
  VmFacade,
  BackupMetadataCodec,
  BackupRecordCodec,
  PlacedVmCodec,
  VmOutcomeCodec,
  VmFailoverReportCodec,
  DiscoveredBackupCodec,
  SuperblockCodec,
  HostChoiceCodec,
  PlacementResultCodec,
  UnplacedVmCodec,
  sitesOf,
  mirrorKey,
  SITE_PROBE_TIMEOUT_MS,
} from './modules/vm/index.js'
export type {
  VmModule,
  VmModuleDeps,
  VmSite,
  BackupMetadata,
  BackupRecord,
  PlacedVm,
  VmFailoverReport,
  VmOutcome,
  Superblock,
  DiscoveredBackup,
  FoundBackup,
  VmNeed,
  HostChoice,
  PlacementResult,
  DrPlanReport,
} from './modules/vm/index.js'
export type * from './modules/vm/events.js'
export * from './modules/vm/inputs.js'
export { openFreezeModule, FreezeFacade, FREEZE_DEFAULTS, AUTO_RESTORE_LIMIT, VolumeHandle } from './modules/freeze/index.js'
export type { FreezeModule, FreezeModuleDeps, GateView, MountPropertyHook, ProtectionView, ReportResult, ReplicaLocation, ResolveReplica, RestoreResult, HandleCachePolicy, LockGrant, VolumeRuntime } from './modules/freeze/index.js'
export {
  MountPath,
  VolumeIdentity,
  ReplicaRef,
  RestoreSourceCodec,
  LockRetryInput,
  ProtectInput as FreezeProtectInput,
  VolumeRefInput,
  CacheInput,
  OpenInput,
  RestoreInput,
  ReportInput,
  LockInput,
  ListInput as ListProtectionsInput,
  ProtectionConfigCodec,
  RestoreSummaryCodec,
  ProtectionRecordCodec,
} from './modules/freeze/index.js'
export type {
  RestoreSource,
  ProtectOptions as FreezeProtectOptions,
  VolumeRef,
  OpenOptions,
  CacheOptions,
  RestoreOptions,
  ReportDisruptionOptions,
  LockOptions,
  ListProtectionsOptions,
  ProtectionConfig,
  RestoreSummary,
  ProtectionRecord,
} from './modules/freeze/index.js'
export type * from './modules/freeze/events.js'
