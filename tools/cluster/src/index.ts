export {
  APP_OF_ROLE,
  AppNotBuiltError,
  LocalCluster,
  MALLOC_ENV,
  ProcessExitedError,
  REPO_ROOT,
  ReadyTimeoutError,
  STATUS_FRESH_MS,
  STOP_GRACE_MS,
  SUPERVISION_DEFAULTS,
  logTail,
  natsPort,
  restartBackoffMs,
  type LocalClusterOptions,
  type ProcessExit,
  type ProcessRole,
  type RestartInfo,
  type SupervisionOptions,
} from './cluster';
export { BusTlsFilesError, ensureBusCredentials, ensureBusTls, LOCAL_BUS_CERT_DAYS } from './bus-credentials';
export { LauncherArgsError, parseLauncherArgs, type LauncherArgs } from './args';
